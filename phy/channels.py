"""Catalogue of channel models by name, all built from Sionna's own models.

Every model has unit mean gain over realisations (``E|h|^2 = 1`` per RE), so
the configured SNR is the mean Es/N0 per data RE:

- ``awgn``: no model (h = 1).
- ``rayleigh``: :class:`sionna.phy.channel.RayleighBlockFading`, one complex
  Gaussian gain per slot.
- ``tdl-a`` .. ``tdl-e``: :class:`sionna.phy.channel.tr38901.TDL` (power delay
  profile normalised to one by Sionna).
- ``cdl-a`` .. ``cdl-e``: :class:`sionna.phy.channel.tr38901.CDL` with one
  vertically polarised omnidirectional element at each end.
- ``umi``, ``uma``, ``rma``: :class:`sionna.phy.channel.tr38901.UMi` / ``UMa`` /
  ``RMa`` with a fresh single-sector drop (``gen_single_sector_topology``) for
  every batch example. Path loss and shadow fading are off (the SNR is set at
  the receiver); both antennas are upright vertically polarised omni elements.
  Sionna's drop tilts and slants the UT at random, which with single-polarised
  antennas costs about 2.6 dB of mean gain to polarisation mismatch; we keep the
  drop's bearing and zero the tilt and slant so that the mean gain is one.

``LinkConfig.channel_normalization = "slot"`` instead applies Sionna's
``normalize_channel=True`` (unit energy over each slot's grid); on a narrow
sub-band this removes nearly all fading, so it is not the default.
"""

from __future__ import annotations

from typing import Literal

import tensorflow as tf
from sionna.phy.channel import ChannelModel, RayleighBlockFading, gen_single_sector_topology
from sionna.phy.channel.tr38901 import CDL, TDL, PanelArray, RMa, UMa, UMi

from phy.antennas import bs_antenna_count, bs_array, bs_correlation
from phy.config import CHANNEL_MODELS, LinkConfig, LinkConfigError

Direction = Literal["uplink", "downlink"]

# Sionna's default horizon of the discrete-time channel (time_lag_discrete_time_channel).
DEFAULT_MAX_DELAY_S = 3e-6

_KMH = 1.0 / 3.6


def single_element_array(carrier_frequency_hz: float, precision: str) -> PanelArray:
    """One vertically polarised omnidirectional antenna (unit gain in every direction)."""
    return PanelArray(
        num_rows_per_panel=1,
        num_cols_per_panel=1,
        polarization="single",
        polarization_type="V",
        antenna_pattern="omni",
        carrier_frequency=carrier_frequency_hz,
        precision=precision,
    )


class SingleSectorChannel(ChannelModel):
    """UMi / UMa / RMa with an independent single-sector drop per batch example.

    Parameters
    ----------
    scenario : "umi" | "uma" | "rma"
    carrier_frequency_hz : float
    direction : "uplink" | "downlink"
    min_speed_ms, max_speed_ms : float
        Range of the UT speed [m/s], drawn uniformly per drop.
    precision : "single" | "double"
    bs_array : PanelArray or None
        The BS's array (None: one omni element, see ``phy.antennas``).
    los : None | bool
        None (default): each drop is line-of-sight or not with the scenario's
        probability (Sionna's draw). True or False: every drop is LoS, or NLoS
        (to check one propagation state against its theory).

    Input
    -----
    batch_size : int or scalar tf.int32
    num_time_steps : int
    sampling_frequency : float [Hz]

    Output
    ------
    a : [batch_size, 1, 1, 1, 1, num_paths, num_time_steps], tf.complex
        Path coefficients (unit mean power in total).
    tau : [batch_size, 1, 1, num_paths], tf.float
        Path delays [s].
    """

    def __init__(
        self,
        scenario: Literal["umi", "uma", "rma"],
        carrier_frequency_hz: float,
        direction: Direction,
        min_speed_ms: float,
        max_speed_ms: float,
        precision: str,
        los: bool | None = None,
        bs_array: PanelArray | None = None,
    ) -> None:
        super().__init__(precision=precision)
        self._scenario = scenario
        self._los = los
        self._min_speed = min_speed_ms
        self._max_speed = max_speed_ms
        arrays = {
            "ut_array": single_element_array(carrier_frequency_hz, precision),
            "bs_array": bs_array or single_element_array(carrier_frequency_hz, precision),
        }
        common = {
            "carrier_frequency": carrier_frequency_hz,
            "direction": direction,
            "enable_pathloss": False,
            "enable_shadow_fading": False,
            "precision": precision,
            **arrays,
        }
        if scenario == "umi":
            self._model = UMi(o2i_model="low", **common)
        elif scenario == "uma":
            self._model = UMa(o2i_model="low", **common)
        else:
            self._model = RMa(**common)

    def __call__(self, batch_size, num_time_steps, sampling_frequency):
        ut_loc, bs_loc, ut_orient, bs_orient, ut_vel, in_state = gen_single_sector_topology(
            batch_size,
            1,
            self._scenario,
            min_ut_velocity=self._min_speed,
            max_ut_velocity=self._max_speed,
            precision=self.precision,
        )
        # Upright antennas: keep only the bearing (yaw), see the module docstring.
        ut_orient = ut_orient * tf.constant([1.0, 0.0, 0.0], ut_orient.dtype)
        bs_orient = bs_orient * tf.constant([1.0, 0.0, 0.0], bs_orient.dtype)
        self._model.set_topology(
            ut_loc, bs_loc, ut_orient, bs_orient, ut_vel, in_state, los=self._los
        )
        return self._model(num_time_steps, sampling_frequency)


def build_channel_model(config: LinkConfig, direction: Direction = "uplink") -> ChannelModel | None:
    """The Sionna channel model named by ``config.channel``.

    Input
    -----
    config : LinkConfig
        Uses ``channel``, ``delay_spread_ns``, ``carrier_frequency_ghz``,
        ``min_speed_kmh``, ``max_speed_kmh``, ``precision`` and the BS's antennas
        (``bs_antennas``, ``precoding``, ``rx_correlation``, ``bs_array``; see
        ``phy.antennas``).
    direction : "uplink" | "downlink"
        Which end transmits (CDL and the 38.901 scenarios are not reciprocal in
        their angles).

    Output
    ------
    : sionna.phy.channel.ChannelModel, or None for ``awgn``
    """
    name = config.channel
    if name not in CHANNEL_MODELS:
        raise LinkConfigError("channel", name, "one of " + ", ".join(CHANNEL_MODELS))
    if direction not in ("uplink", "downlink"):
        raise LinkConfigError("direction", direction, "'uplink' or 'downlink'")
    fc = config.carrier_frequency_ghz * 1e9
    delay_spread = config.delay_spread_ns * 1e-9
    min_speed = config.min_speed_kmh * _KMH
    max_speed = config.max_speed_kmh * _KMH
    precision = config.precision
    if name == "awgn":
        return None
    # The BS's antennas (phy.antennas): receive side on the uplink, transmit side on the downlink.
    num_bs = bs_antenna_count(config, direction)
    uplink = direction == "uplink"
    ants = (
        {"num_rx_ant": num_bs, "num_tx_ant": 1}
        if uplink
        else {"num_rx_ant": 1, "num_tx_ant": num_bs}
    )
    if name == "rayleigh":
        return RayleighBlockFading(num_rx=1, num_tx=1, precision=precision, **ants)
    family, letter = name.split("-") if "-" in name else (name, "")
    if family == "tdl":
        corr = bs_correlation(config, num_bs)
        return TDL(
            model=letter.upper(),
            delay_spread=delay_spread,
            carrier_frequency=fc,
            min_speed=min_speed,
            max_speed=max_speed,
            rx_corr_mat=corr if uplink else None,
            tx_corr_mat=None if uplink else corr,
            precision=precision,
            **ants,
        )
    array = _bs_array(config, num_bs, fc)
    if family == "cdl":
        return CDL(
            model=letter.upper(),
            delay_spread=delay_spread,
            carrier_frequency=fc,
            ut_array=single_element_array(fc, precision),
            bs_array=array,
            direction=direction,
            min_speed=min_speed,
            max_speed=max_speed,
            precision=precision,
        )
    return SingleSectorChannel(name, fc, direction, min_speed, max_speed, precision, bs_array=array)


def _bs_array(config: LinkConfig, num_antennas: int, fc: float) -> PanelArray:
    """One omni element as before for a single-antenna ULA, else ``phy.antennas.bs_array``."""
    if num_antennas == 1 and config.bs_array == "ula":
        return single_element_array(fc, config.precision)
    return bs_array(config, num_antennas, fc)


def maximum_delay_s(model: ChannelModel | None) -> float:
    """Largest path delay the discrete-time channel must cover [s].

    TDL and CDL have fixed (scaled) delays; for the others Sionna's default
    3 us horizon is used.

    Input
    -----
    model : ChannelModel or None

    Output
    ------
    : float
    """
    if isinstance(model, TDL | CDL):
        return max(DEFAULT_MAX_DELAY_S, float(tf.reduce_max(model.delays)))
    return DEFAULT_MAX_DELAY_S
