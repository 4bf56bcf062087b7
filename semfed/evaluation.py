"""Evaluation: each client's test classes through its encoder, the uplink, the global decoder."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from semfed.federation import Client
from semfed.radio import RadioLinks, normalize_power


class Evaluator:
    """Accuracy per client at one or several uplink SNRs.

    Test sets are padded (by repetition) to a multiple of ``batch_size`` so each
    client's compiled function keeps one input shape.
    """

    def __init__(
        self, clients: list[Client], decoder: keras.Model, radio: RadioLinks, batch_size: int
    ) -> None:
        self.clients = clients
        self.decoder = decoder
        self.radio = radio
        self.batch_size = batch_size
        self._fns = {c.id: self._make_fn(c) for c in clients}

    def _make_fn(self, client: Client):
        encoder, decoder, radio = client.encoder, self.decoder, self.radio

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

    def accuracy(self, snr_db: list[float]) -> list[float]:
        """Accuracy of every client (in order), client k's uplink at ``snr_db[k]``."""
        accs = []
        for c, snr in zip(self.clients, snr_db, strict=True):
            if c.y_test.size == 0:
                accs.append(float("nan"))
                continue
            f_hat = self.received_features(c, snr)
            _, predict = self._fns[c.id]
            pred = predict(tf.constant(f_hat)).numpy()
            accs.append(float(np.mean(pred == c.y_test)))
        return accs
