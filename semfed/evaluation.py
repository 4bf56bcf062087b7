"""Evaluation: every scheme scored under the same three protocols.

Each client's test samples (of its own classes) go through the client's
encoder and its uplink at the evaluation SNR, once: one encoder pass and one
channel draw per test sample serve every protocol, so protocols differ only in
the decoder that reads the received features.

* ``global``: the shared model. FedCL and its ablations: the aggregated
  decoder phi. FedAvg: the global model. FedProto: the nearest global prototype
  (Euclidean).
* ``personal``: the client's own decoder. FedCL: the BS's instance phi_k after
  the client's local pass of the round. FedProto: the client's decoder. FedAvg:
  the global model (with ``algorithm.fedavg_norm = "local"``, the shared weights
  with the client's own normalization layers: FedBN has no global statistics).
* ``masked``: ``personal`` with the logits restricted to the classes the client
  owns, so a wrong class it never trained on cannot win.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from semfed.federation import Client
from semfed.radio import RadioLinks, normalize_power
from semfed.workspace import Workspaces

PROTOCOLS = ("global", "personal", "masked")


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


def masked_argmax(logits: np.ndarray, classes: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """Argmax over the columns ``classes`` only: logits float [N, C] -> int64 [N]."""
    classes = np.asarray(sorted(classes), np.int64)
    return classes[np.argmax(np.asarray(logits)[:, classes], axis=1)]


class Evaluator:
    """Accuracy of every client under the three protocols, at one or several SNRs.

    ``global_decoder``: the shared decoder (FedCL, FedAvg); or ``prototypes``: a
    function returning (prototypes float32 [C, d], mask float32 [C]) for the
    nearest-prototype ``global`` protocol (FedProto). Exactly one is given. The
    ``personal`` and ``masked`` protocols read each client's own ``decoder``.

    The functions are compiled once per workspace (architecture), not per
    client, and test sets are padded (by repetition) to a multiple of
    ``batch_size`` so they keep one input shape.
    """

    def __init__(
        self,
        clients: list[Client],
        workspaces: Workspaces,
        radio: RadioLinks,
        batch_size: int,
        *,
        global_decoder: keras.Model | None = None,
        prototypes: Callable[[], tuple[tf.Tensor, tf.Tensor]] | None = None,
    ) -> None:
        if (global_decoder is None) == (prototypes is None):
            raise ValueError("give exactly one of global_decoder and prototypes")
        self.clients = clients
        self.workspaces = workspaces
        self.radio = radio
        self.batch_size = batch_size
        self.global_decoder = global_decoder
        self.prototypes = prototypes
        # One compiled function per architecture and radio group (clients on the
        # same links, RadioLinks.group), on the first such client's links.
        self._index = {c.id: k for k, c in enumerate(clients)}
        self._scores: dict[tuple, Callable] = {}
        for k, c in enumerate(clients):
            key = self._score_key(c)
            if key not in self._scores:
                self._scores[key] = self._make_scores(workspaces.of(c), k)

    def _score_key(self, client: Client) -> tuple:
        return id(self.workspaces.of(client)), self.radio.group(self._index[client.id])

    def _make_scores(self, ws, client_index: int):
        radio, encoder, own = self.radio, ws.encoder, ws.decoder
        shared = self.global_decoder

        @tf.function
        def scores(x, snr_db):
            f = normalize_power(encoder(x, training=False))
            # shared by the clients of a link: no per-client block count (training's only)
            f_hat = radio.uplink(f[None], snr_db[None], client_index)[0]
            personal = own(f_hat, training=False)
            glob = personal if shared is None else shared(f_hat, training=False)
            return f_hat, personal, glob

        return scores

    def _batches(self, client: Client, snr_db: float) -> tuple[np.ndarray, ...]:
        """(received features [n, d], own-decoder logits [n, C], global logits [n, C])."""
        self.workspaces.view(client)  # loads the client's models
        scores = self._scores[self._score_key(client)]
        n = client.y_test.size
        b = min(self.batch_size, n)
        idx = np.resize(np.arange(n), math.ceil(n / b) * b)
        snr = tf.constant(snr_db, tf.float32)
        out = [scores(tf.constant(client.x_test[i]), snr) for i in idx.reshape(-1, b)]
        return tuple(tf.concat(t, 0).numpy()[:n] for t in zip(*out, strict=True))

    def received_features(self, client: Client, snr_db: float) -> np.ndarray:
        """Received test features float32 [n_k, d] of one client at ``snr_db``."""
        return self._batches(client, snr_db)[0]

    def evaluate(self, snr_db: list[float]) -> dict[str, list[float]]:
        """Accuracies of every client (in order), client k's uplink at ``snr_db[k]``.

        Returns ``test_acc_global``, ``test_acc_personal`` and ``test_acc_masked``,
        each a list over clients; NaN for a client without test samples, and for
        ``global`` while FedProto has no prototype yet.
        """
        out: dict[str, list[float]] = {f"test_acc_{p}": [] for p in PROTOCOLS}
        protos = None if self.prototypes is None else [t.numpy() for t in self.prototypes()]
        for c, snr in zip(self.clients, snr_db, strict=True):
            if c.y_test.size == 0:
                for accs in out.values():
                    accs.append(float("nan"))
                continue
            f_hat, personal, glob = self._batches(c, snr)
            if protos is None:
                global_pred = np.argmax(glob, axis=1)
            else:
                global_pred = nearest_prototype(f_hat, *protos)
            out["test_acc_global"].append(
                float("nan") if global_pred is None else float(np.mean(global_pred == c.y_test))
            )
            out["test_acc_personal"].append(float(np.mean(np.argmax(personal, 1) == c.y_test)))
            own_classes = c.classes or tuple(np.unique(c.y_train))
            masked = masked_argmax(personal, own_classes)
            out["test_acc_masked"].append(float(np.mean(masked == c.y_test)))
        return out


__all__ = ["PROTOCOLS", "Evaluator", "masked_argmax", "nearest_prototype"]
