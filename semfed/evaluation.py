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
from semfed.workspace import Workspaces


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

    ``decoder``: one decoder for every client, or a list with one per client
    (then each must be the client's own ``client.decoder``).
    ``prototypes``: when given, a function returning (prototypes float32 [C, d],
    mask float32 [C]); :meth:`evaluate` then also reports ``test_acc_proto``.

    The functions are compiled once per workspace (architecture), not per
    client, and test sets are padded (by repetition) to a multiple of
    ``batch_size`` so they keep one input shape.
    """

    def __init__(
        self,
        clients: list[Client],
        workspaces: Workspaces,
        decoder: keras.Model | Sequence[keras.Model],
        radio: RadioLinks,
        batch_size: int,
        prototypes: Callable[[], tuple[tf.Tensor, tf.Tensor]] | None = None,
    ) -> None:
        self.clients = clients
        self.workspaces = workspaces
        self.own_decoders = isinstance(decoder, list | tuple)
        if self.own_decoders and any(
            d is not c.decoder for d, c in zip(decoder, clients, strict=True)
        ):
            raise ValueError("per-client decoders must be the clients' own decoders")
        self.radio = radio
        self.batch_size = batch_size
        self.prototypes = prototypes
        self._received = {id(ws): self._make_received(ws.encoder) for ws in workspaces}
        if self.own_decoders:
            self._predict = {id(ws): self._make_predict(ws.decoder) for ws in workspaces}
        else:
            shared = self._make_predict(decoder)
            self._predict = {id(ws): shared for ws in workspaces}

    def _make_received(self, encoder: keras.Model):
        radio = self.radio

        @tf.function
        def received(x, snr_db):
            f = normalize_power(encoder(x, training=False))
            return radio.uplink(f[None], snr_db[None])[0]

        return received

    @staticmethod
    def _make_predict(decoder: keras.Model):
        @tf.function
        def predict(f_hat):
            return tf.argmax(decoder(f_hat, training=False), axis=1, output_type=tf.int32)

        return predict

    def received_features(self, client: Client, snr_db: float) -> np.ndarray:
        """Received test features float32 [n_k, d] of one client at ``snr_db``."""
        ws = self.workspaces.view(client)
        received = self._received[id(ws)]
        n = client.y_test.size
        b = min(self.batch_size, n)
        pad = math.ceil(n / b) * b
        idx = np.resize(np.arange(n), pad)
        snr = tf.constant(snr_db, tf.float32)
        out = [received(tf.constant(client.x_test[i]), snr) for i in idx.reshape(-1, b)]
        return tf.concat(out, 0).numpy()[:n]

    def _predictions(self, client: Client, f_hat: np.ndarray) -> np.ndarray:
        ws = self.workspaces.view(client)
        return self._predict[id(ws)](tf.constant(f_hat)).numpy()

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
            pred = self._predictions(c, f_hat)
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
