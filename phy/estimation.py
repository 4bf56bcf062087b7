"""Channel state information at the receiver: perfect, or LS on the pilots."""

from __future__ import annotations

import tensorflow as tf
from sionna.phy.ofdm import LSChannelEstimator, ResourceGrid

from phy.config import LinkConfig


class ChannelEstimator:
    """CSI as configured by ``config.csi``.

    ``perfect``: the true frequency response with zero error variance.
    ``ls``: Sionna's :class:`~sionna.phy.ofdm.LSChannelEstimator` on the
    Kronecker pilots, interpolated over the grid (``config.interpolation``:
    nearest neighbour ``nn`` or linear ``lin``); its error variance is N0 on
    the pilots (unit-power pilots), interpolated like the estimates.

    Parameters
    ----------
    config : LinkConfig
    resource_grid : sionna.phy.ofdm.ResourceGrid

    Input
    -----
    y : [batch, 1, 1, num_ofdm_symbols, fft_size], tf.complex
        Received resource grids.
    h_freq : [batch, 1, 1, 1, 1, num_ofdm_symbols, fft_size], tf.complex
        True channel (used only for perfect CSI).
    no : [batch], tf.float
        Noise variance.

    Output
    ------
    h_hat : [batch, 1, 1, 1, 1, num_ofdm_symbols, fft_size], tf.complex
        Channel estimate.
    err_var : tf.float, broadcastable to ``h_hat``
        Estimation error variance.
    """

    def __init__(self, config: LinkConfig, resource_grid: ResourceGrid) -> None:
        self._perfect = config.csi == "perfect"
        self._rdtype = resource_grid.rdtype
        if not self._perfect:
            self._ls = LSChannelEstimator(
                resource_grid,
                interpolation_type=config.interpolation,
                precision=config.precision,
            )

    def __call__(
        self, y: tf.Tensor, h_freq: tf.Tensor, no: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        if self._perfect:
            return h_freq, tf.zeros([], self._rdtype)
        return self._ls(y, no)
