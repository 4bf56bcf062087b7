"""Evaluation: each client's test classes through its encoder, the uplink, a decoder.

The decoder is the global one (FedCL, FedAvg) or the client's own (FedProto);
optionally the received features are also classified by the nearest global
prototype (FedProto).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from semfed.federation import Client
from semfed.radio import RadioLinks, normalize_power


def nearest_prototype(
    features: np.ndarray, prototypes: np.ndarray, mask: np.ndarray
) -> np.ndarray | None:
    """Class of the nearest prototype in Euclidean distance.

    features float32 [N, d], prototypes float32 [C, d], mask [C] (nonzero where
    class c has a prototype) -> int64 [N], or None when no class has one.
    """
    present = np.flatnonzero(np.asarray(mask) > 0)
    if present.size == 0:
        return None
    p = np.asarray(prototypes, np.float64)[present]
    f = np.asarray(features, np.float64)
    dist = (f**2).sum(1)[:, None] - 2.0 * f @ p.T + (p**2).sum(1)[None, :]
    return present[np.argmin(dist, axis=1)]


class Evaluator:
    """Accuracy per client at one or several uplink SNRs.

    ``decoder``: one decoder for every client, or a list with one per client.
    ``prototypes``: when given, a function returning (prototypes float32 [C, d],
    mask float32 [C]); :meth:`evaluate` then also reports ``test_acc_proto``.

    Test sets are padded (by repetition) to a multiple of ``batch_size`` so each
    client's compiled function keeps one input shape.
    """

    def __init__(
        self,
        clients: list[Client],
        decoder: keras.Model | Sequence[keras.Model],
        radio: RadioLinks,
        batch_size: int,
        prototypes: Callable[[], tuple[tf.Tensor, tf.Tensor]] | None = None,
    ) -> None:
        self.clients = clients
        decoders = list(decoder) if isinstance(decoder, list | tuple) else [decoder] * len(clients)
        self.decoders = dict(zip([c.id for c in clients], decoders, strict=True))
        self.radio = radio
        self.batch_size = batch_size
        self.prototypes = prototypes
        self._fns = {c.id: self._make_fn(c, self.decoders[c.id]) for c in clients}

    def _make_fn(self, client: Client, decoder: keras.Model):
        encoder, radio = client.encoder, self.radio

        @tf.function
        def received(x, snr_db):
            f = normalize_power(encoder(x, training=False))
            return radio.uplink(f[None], snr_db[None])[0]

        @tf.function
        def predict(f_hat):
            return tf.argmax(decoder(f_hat, training=False), axis=1, output_type=tf.int32)

        return received, predict

    def received_features(self, client: Client, snr_db: float) -> np.ndarray:
        """Received test features float32 [n_k, d] of one client at ``snr_db``."""
        received, _ = self._fns[client.id]
        n = client.y_test.size
        b = min(self.batch_size, n)
        pad = math.ceil(n / b) * b
        idx = np.resize(np.arange(n), pad)
        snr = tf.constant(snr_db, tf.float32)
        out = [received(tf.constant(client.x_test[i]), snr).numpy() for i in idx.reshape(-1, b)]
        return np.concatenate(out)[:n]

    def evaluate(self, snr_db: list[float]) -> dict[str, list[float]]:
        """Accuracies of every client (in order), client k's uplink at ``snr_db[k]``.

        ``test_acc``: through the decoder; ``test_acc_proto`` (with prototypes):
        nearest global prototype. NaN for a client without test samples.
        """
        out: dict[str, list[float]] = {"test_acc": []}
        protos = None
        if self.prototypes is not None:
            out["test_acc_proto"] = []
            protos = [t.numpy() for t in self.prototypes()]
        for c, snr in zip(self.clients, snr_db, strict=True):
            if c.y_test.size == 0:
                for accs in out.values():
                    accs.append(float("nan"))
                continue
            f_hat = self.received_features(c, snr)
            _, predict = self._fns[c.id]
            pred = predict(tf.constant(f_hat)).numpy()
            out["test_acc"].append(float(np.mean(pred == c.y_test)))
            if protos is not None:
                nearest = nearest_prototype(f_hat, *protos)
                out["test_acc_proto"].append(
                    float("nan") if nearest is None else float(np.mean(nearest == c.y_test))
                )
        return out

    def accuracy(self, snr_db: list[float]) -> list[float]:
        """Accuracy of every client (in order) through the decoder."""
        return self.evaluate(snr_db)["test_acc"]
