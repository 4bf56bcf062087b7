"""Uplink maximum-ratio combining (``link.combining = "mrc"``) of the BS's N_r antennas.

What this module may touch: the received grid and the channel estimate between
CSI estimation and the equalizer (``phy.link``); nothing else.

How ``combining`` and ``equalizer`` interact. ``"equalizer"`` (default): the
N_r-antenna grid goes straight to ``link.equalizer``; Sionna's LMMSE / ZF
equalizers with the single-stream ``StreamManagement`` combine the antennas
themselves (``(h^H h + N0')^-1 h^H y`` per RE, de-biased; ``mmse`` shrinks it).
``"mrc"``: the antennas are first combined here with the unit-norm weights
``w = h_hat / ||h_hat||``, giving one branch ``z = w^H y = ||h_hat|| x + n'``
with the same noise power N0, and the configured single-antenna equalizer
then runs on that branch with the channel ``||h_hat||``. For one stream with
white noise of equal power on every antenna both give the same estimate (the
LMMSE combiner of a single stream is proportional to ``h^H``); MRC costs no
matrix inversion. They would differ with interference across antennas, which
this link (OFDMA, one user per sub-band) does not have.
"""

from __future__ import annotations

import tensorflow as tf

from phy.config import LinkConfig


class MaximumRatioCombiner:
    """Combine the receive antennas with unit-norm maximum-ratio weights.

    Input
    -----
    y : [batch, 1, N_r, num_ofdm_symbols, fft_size], tf.complex
        Received grids.
    h_hat : [batch, 1, N_r, 1, 1, num_ofdm_symbols, fft_size], tf.complex
        Channel estimates per antenna.
    err_var : tf.float, broadcastable to ``h_hat``
        Estimation error (plus interference) variance per antenna.

    Output
    ------
    y : [batch, 1, 1, num_ofdm_symbols, fft_size], tf.complex
        Combined grid ``w^H y``.
    h_hat : [batch, 1, 1, 1, 1, num_ofdm_symbols, fft_size], tf.complex
        Combined channel ``||h_hat||`` (real, non-negative).
    err_var : [batch, 1, 1, 1, 1, num_ofdm_symbols, fft_size], tf.float
        ``sum_r |w_r|^2 err_var_r``: the error variance of the combined channel.
    """

    def __call__(
        self, y: tf.Tensor, h_hat: tf.Tensor, err_var: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        h = h_hat[:, :, :, 0, 0]
        norm = tf.sqrt(tf.reduce_sum(tf.abs(h) ** 2, axis=2, keepdims=True))
        w = tf.math.divide_no_nan(h, tf.cast(norm, h.dtype))
        y_c = tf.reduce_sum(tf.math.conj(w) * y, axis=2, keepdims=True)
        h_c = tf.cast(norm, h.dtype)[:, :, :, tf.newaxis, tf.newaxis]
        weight = (tf.abs(w) ** 2)[:, :, :, tf.newaxis, tf.newaxis]
        err_c = tf.reduce_sum(weight * tf.cast(err_var, weight.dtype), axis=2, keepdims=True)
        return y_c, h_c, err_c


def build_combiner(config: LinkConfig, direction: str) -> MaximumRatioCombiner | None:
    """The uplink's MRC stage for ``combining = "mrc"`` and N_r > 1, else None (the
    equalizer sees the antennas, or there is one)."""
    if direction == "uplink" and config.combining == "mrc" and config.bs_antennas > 1:
        return MaximumRatioCombiner()
    return None
