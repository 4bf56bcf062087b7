"""Per-RE equalisation of the single-stream OFDM link.

- ``lmmse``: Sionna's :class:`~sionna.phy.ofdm.LMMSEEqualizer`. Sionna returns
  the *de-biased* LMMSE estimate, which for one antenna and one stream is
  ``y / h_hat`` (zero forcing), with effective noise variance
  ``no_eff = (N0 + err_var) / |h_hat|^2``; in deep fades it amplifies noise.
- ``zf``: Sionna's :class:`~sionna.phy.ofdm.ZFEqualizer`; the same estimate as
  ``lmmse`` for a single stream, ``no_eff`` from ``G S G^H``.
- ``mmse``: the *biased* MMSE estimate
  ``conj(h_hat) y / (|h_hat|^2 + N0 + err_var)``, obtained from Sionna's LMMSE
  output as ``x_hat / (1 + no_eff)`` (``x_hat = y / h_hat`` and
  ``1 + no_eff = (|h_hat|^2 + N0 + err_var) / |h_hat|^2``). It shrinks
  unreliable REs towards zero, so its mean squared error
  ``no_eff / (1 + no_eff)`` never exceeds the symbol power.
"""

from __future__ import annotations

from typing import Literal

import tensorflow as tf
from sionna.phy.ofdm import LMMSEEqualizer, ResourceGrid, ZFEqualizer

from phy.resource_grid import single_stream_management

EqualizerName = Literal["mmse", "lmmse", "zf"]
EQUALIZERS: tuple[str, ...] = ("mmse", "lmmse", "zf")

# Receiver-side floor on N0: LMMSE whitens by sqrt(N0 + err_var), which is a
# division by zero for a noiseless link with perfect CSI.
_MIN_NOISE_VARIANCE = 1e-12


class Equalizer:
    """Estimate the data symbols of each slot from the received grid.

    Parameters
    ----------
    name : "mmse" | "lmmse" | "zf"
    resource_grid : sionna.phy.ofdm.ResourceGrid
    precision : "single" | "double"

    Input
    -----
    y : [batch, 1, 1, num_ofdm_symbols, fft_size], tf.complex
        Received resource grids.
    h_hat : [batch, 1, 1, 1, 1, num_ofdm_symbols, fft_size], tf.complex
        Channel estimates.
    err_var : tf.float, broadcastable to ``h_hat``
        Channel estimation error variance.
    no : [batch], tf.float
        Noise variance.

    Output
    ------
    x_hat : [batch, num_data_res], tf.complex
        Estimated data symbols in resource-grid order (pilots removed).
    mse : [batch, num_data_res], tf.float
        The equalizer's own estimate of ``E|x_hat - x|^2`` for unit-power x.
    """

    def __init__(self, name: EqualizerName, resource_grid: ResourceGrid, precision: str) -> None:
        if name not in EQUALIZERS:
            raise ValueError(f"unknown equalizer {name!r}; valid: {', '.join(EQUALIZERS)}")
        self._biased = name == "mmse"
        block = ZFEqualizer if name == "zf" else LMMSEEqualizer
        kwargs = {"whiten_interference": False} if block is LMMSEEqualizer else {}
        self._block = block(
            resource_grid, single_stream_management(), precision=precision, **kwargs
        )

    def __call__(
        self, y: tf.Tensor, h_hat: tf.Tensor, err_var: tf.Tensor, no: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        no = tf.maximum(no, tf.cast(_MIN_NOISE_VARIANCE, no.dtype))
        x_hat, no_eff = self._block(y, h_hat, err_var, no)
        x_hat, no_eff = x_hat[:, 0, 0], no_eff[:, 0, 0]
        if self._biased:
            x_hat = x_hat / tf.cast(1.0 + no_eff, x_hat.dtype)
            no_eff = no_eff / (1.0 + no_eff)
        return x_hat, no_eff
