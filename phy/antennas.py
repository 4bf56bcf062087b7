"""The base station's antennas: how many each direction uses, its array, its correlation,
and the downlink's maximum-ratio transmission (MISO).

``LinkConfig.bs_antennas`` = N_r; every UE has one antenna. What this module may
touch: the channel models' antenna arguments (``phy.channels`` asks it), and the
downlink's propagation when the BS precodes (``phy.link`` asks
:func:`build_propagation`). The uplink's combining is :mod:`phy.combining`.

- Uplink (SIMO): the channel model has N_r receive antennas; the grid crosses
  it with :class:`phy.propagation.Propagation` unchanged (Sionna's blocks carry
  the antenna axis), CSI is estimated per receive antenna, and the equalizer
  combines the antennas (``phy.combining``, ``phy.equalization``).
- Downlink (MISO), ``precoding = "mrt"`` and N_r > 1: :class:`MrtPropagation`.
  The BS precodes the whole grid, pilots included, with Sionna's
  :class:`~sionna.phy.ofdm.RZFPrecoder` at alpha = 0: for one single-antenna
  user its unit-norm zero-forcing vector ``h^H (h h^H)^-1 / ||.||`` is
  ``conj(h) / ||h||``, maximum-ratio transmission. The precoder has unit norm
  per RE, so the total transmit power is one antenna's; the gain is array
  gain (``||h||^2``, mean N_r). The UE sees one effective channel ``h^T w`` and
  estimates it like a single-antenna channel (LS on the precoded pilots, or
  perfect CSI = the true effective channel).
- What the BS knows for MRT (``link.csi``): ``perfect``, the true downlink
  channel; ``ls``, TDD reciprocity: the UE sends the grid's pilots on the
  uplink in the same slot (same channel, transposed), the BS estimates every
  antenna with Sionna's LS estimator and the configured interpolation, at the
  same N0 as the downlink call (equal link budgets both ways: the link object
  does not know the user's uplink SNR of the moment), and precodes from that
  estimate. Frequency domain only: precoding needs the channel before it is
  applied, which the time-domain chain (``phy.propagation``) does not split.
- ``precoding = "none"`` (or N_r = 1): the BS sends from one antenna, the
  downlink is today's single-antenna link. MRT with one antenna would only turn
  the phase that the UE's equalizer turns back, so N_r = 1 is left as it was.

Arrays (CDL, UMi / UMa / RMa): ``bs_array = "ula"``, N_r vertically polarised
omnidirectional elements half a wavelength apart in a row (unit gain each,
so every antenna keeps the channel's unit mean gain); ``"panel"``, the same row
of 3GPP TR 38.901 directional elements (up to 8 dBi toward boresight, so the
mean gain is no longer one). TDL: antennas i.i.d. unless ``rx_correlation``
rho > 0, then Sionna's exponential correlation matrix ``R_ij = rho^|i - j|`` on
the BS side (receive side on the uplink, transmit side on the downlink).
Rayleigh block fading: i.i.d. across antennas.
"""

from __future__ import annotations

from typing import Literal

import tensorflow as tf
from sionna.phy.channel import (
    ApplyOFDMChannel,
    ChannelModel,
    GenerateOFDMChannel,
    exp_corr_mat,
)
from sionna.phy.channel.tr38901 import PanelArray
from sionna.phy.ofdm import LSChannelEstimator, ResourceGrid, ResourceGridMapper, RZFPrecoder

from phy.config import LinkConfig, LinkConfigError
from phy.resource_grid import single_stream_management

Direction = Literal["uplink", "downlink"]


def bs_antenna_count(config: LinkConfig, direction: Direction) -> int:
    """Antennas the BS uses in ``direction``: N_r on the uplink; on the downlink N_r with
    ``precoding = "mrt"``, else 1."""
    if direction == "downlink" and config.precoding == "none":
        return 1
    return config.bs_antennas


def bs_array(config: LinkConfig, num_antennas: int, carrier_frequency_hz: float) -> PanelArray:
    """The BS's array: one row of ``num_antennas`` vertically polarised elements at half a
    wavelength, omnidirectional (``ula``) or 3GPP 38.901 (``panel``).

    With one omni element this is ``phy.channels.single_element_array``.
    """
    return PanelArray(
        num_rows_per_panel=1,
        num_cols_per_panel=num_antennas,
        polarization="single",
        polarization_type="V",
        antenna_pattern="omni" if config.bs_array == "ula" else "38.901",
        carrier_frequency=carrier_frequency_hz,
        element_horizontal_spacing=0.5,
        precision=config.precision,
    )


def bs_correlation(config: LinkConfig, num_antennas: int) -> tf.Tensor | None:
    """Exponential correlation matrix [N, N] ``rho^|i - j|`` of the BS antennas (Sionna's
    ``exp_corr_mat``), or None when they are uncorrelated (rho = 0 or one antenna)."""
    if config.rx_correlation == 0.0 or num_antennas == 1:
        return None
    dtype = tf.complex128 if config.precision == "double" else tf.complex64
    return exp_corr_mat(
        tf.constant(config.rx_correlation, dtype), num_antennas, precision=config.precision
    )


def build_propagation(
    config: LinkConfig,
    resource_grid: ResourceGrid,
    model: ChannelModel | None,
    direction: Direction,
):
    """The link's propagation: :class:`MrtPropagation` for a precoded downlink (N_r > 1),
    else :class:`phy.propagation.Propagation` with the BS's receive antennas (uplink)."""
    from phy.propagation import Propagation

    antennas = bs_antenna_count(config, direction)
    if direction == "downlink" and antennas > 1:
        return MrtPropagation(config, resource_grid, model)
    return Propagation(
        config, resource_grid, model, num_rx_ant=antennas if direction == "uplink" else 1
    )


class MrtPropagation:
    """Downlink from an N_r-antenna BS that precodes by maximum ratio, to one UE antenna.

    Parameters
    ----------
    config : LinkConfig
        Uses ``bs_antennas``, ``csi`` (what the BS knows, see the module
        docstring), ``interpolation``, ``channel_normalization``, ``domain``
        (frequency only) and ``precision``.
    resource_grid : sionna.phy.ofdm.ResourceGrid
    model : sionna.phy.channel.ChannelModel or None
        Built with N_r transmit antennas; None for AWGN (h = 1 on every antenna).

    Input
    -----
    x : [batch, 1, 1, num_ofdm_symbols, fft_size], tf.complex
        The user's resource grids (one stream, pilots included).
    no : [batch], tf.float
        Noise variance N0 at the UE (and of the BS's uplink sounding).

    Output
    ------
    y : [batch, 1, 1, num_ofdm_symbols, fft_size], tf.complex
        Received grids at the UE.
    h_eff : [batch, 1, 1, 1, 1, num_ofdm_symbols, fft_size], tf.complex
        True effective channel ``sum_n h_n w_n`` (what perfect CSI at the UE knows).
    ici_var : [], tf.float
        0 (frequency domain: no inter-carrier interference).
    """

    def __init__(
        self, config: LinkConfig, resource_grid: ResourceGrid, model: ChannelModel | None
    ) -> None:
        if config.domain != "frequency":
            raise LinkConfigError(
                "domain",
                config.domain,
                "'frequency' for a downlink with precoding = 'mrt' and bs_antennas > 1 "
                "(or precoding = 'none')",
            )
        precision = config.precision
        self._rg = resource_grid
        self._num_antennas = config.bs_antennas
        self._num_data_res = config.num_data_res
        self._generate = (
            None
            if model is None
            else GenerateOFDMChannel(
                model,
                resource_grid,
                normalize_channel=config.channel_normalization == "slot",
                precision=precision,
            )
        )
        self._apply = ApplyOFDMChannel(precision=precision)
        self._precoder = RZFPrecoder(resource_grid, single_stream_management(), precision=precision)
        self._reciprocity = config.csi == "ls"
        if self._reciprocity:
            self._pilots = ResourceGridMapper(resource_grid, precision=precision)
            self._ls = LSChannelEstimator(
                resource_grid, interpolation_type=config.interpolation, precision=precision
            )

    def __call__(self, x: tf.Tensor, no: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        batch_size = tf.shape(x)[0]
        if self._generate is None:
            shape = [batch_size, 1, 1, 1, self._num_antennas, *x.shape[-2:]]
            h = tf.ones(shape, x.dtype)
        else:
            h = self._generate(batch_size)  # [batch, 1, 1, 1, N_r, symbols, fft]
        h_bs = self.bs_channel_estimate(h, no)
        # One stream: the precoded grid is w x, so precoding ones gives w.
        w = self._precoder(tf.ones_like(x), h_bs)  # [batch, 1, N_r, symbols, fft]
        y = self._apply(w * x, h, no)
        h_eff = tf.reduce_sum(h * w[:, tf.newaxis, tf.newaxis], axis=4, keepdims=True)
        return y, h_eff, tf.zeros([], no.dtype)

    def bs_channel_estimate(self, h: tf.Tensor, no: tf.Tensor) -> tf.Tensor:
        """The BS's knowledge of the downlink channel (perfect, or LS by reciprocity).

        Input
        -----
        h : [batch, 1, 1, 1, N_r, num_ofdm_symbols, fft_size], tf.complex
            True downlink channel.
        no : [batch], tf.float
            N0 of the uplink sounding.

        Output
        ------
        : same shape as ``h``
        """
        if not self._reciprocity:
            return h
        # Uplink in the same slot (TDD): the transposed channel, the grid's pilots.
        swap = [0, 3, 4, 1, 2, 5, 6]  # [b, rx, rx_ant, tx, tx_ant] <-> [b, tx, tx_ant, rx, rx_ant]
        h_up = tf.transpose(h, swap)
        empty = tf.zeros([tf.shape(h)[0], 1, 1, self._num_data_res], h.dtype)
        y_up = self._apply(self._pilots(empty), h_up, no)
        h_hat, _ = self._ls(y_up, no)
        return tf.transpose(h_hat, swap)
