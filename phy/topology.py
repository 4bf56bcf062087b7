"""Users dropped in one 38.901 sector, and the SNR each one's link budget gives.

What this module may touch: Sionna's 38.901 scenarios (``UMiScenario``,
``UMaScenario``, ``RMaScenario``), its single-sector drop
(``gen_single_sector_topology``) and its large-scale-parameter generator
(``LSPGenerator``: path loss with outdoor-to-indoor penetration, shadow
fading); numbers. It runs no link and knows nothing of learning.

* :func:`drop_users` drops K users in one sector (BS at the origin, Sionna's
  scenario defaults for heights, indoor share and LoS probability) from a seed,
  and returns each user's distance, LoS and indoor state, path loss and shadow
  fading.
* :func:`path_loss_db` is the path loss of one user placed at a given distance,
  LoS or NLoS (the formula check).
* :func:`link_snr_db`: SNR = transmit power - loss - (kTB + noise figure), with
  kT = -174 dBm/Hz (290 K) and B the user's sub-band (its subcarriers x spacing).
  The transmit power is spread over the sub-band, so this is also the mean
  Es/N0 per RE the link takes.
* :func:`cell_drop` is what a run and ``semfed link`` use: the drop of a
  :class:`~phy.config.LinkConfig` with ``topology`` set and each user's uplink
  and downlink SNR from its link budget (:mod:`phy.link_budget`). semfed draws
  it from ``partition.seed`` (:mod:`semfed.cell`); the links themselves keep
  their small-scale channel (``link.channel``) at unit mean gain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from sionna.phy.channel import gen_single_sector_topology
from sionna.phy.channel.tr38901 import LSPGenerator, RMaScenario, UMaScenario, UMiScenario

from phy.channels import single_element_array
from phy.config import LinkConfig, LinkConfigError
from phy.link_budget import LinkBudget, Scenario
from phy.seeding import set_seed

SCENARIOS: tuple[str, ...] = ("umi", "uma", "rma")
# Thermal noise density kT at 290 K.
THERMAL_NOISE_DBM_PER_HZ = -174.0
# Sionna's BS heights per scenario (gen_single_sector_topology's defaults), 38.901 Table 7.2-1.
BS_HEIGHT_M = {"umi": 10.0, "uma": 25.0, "rma": 35.0}


@dataclass(frozen=True)
class UserDrop:
    """K users in one sector (numpy arrays, one entry per user).

    Attributes
    ----------
    positions_m : [K, 3] float
        User positions; the BS is at (0, 0, BS height).
    distance_2d_m, distance_3d_m : [K] float
    los, indoor : [K] bool
    path_loss_db : [K] float
        Basic path loss of the user's LoS state plus outdoor-to-indoor penetration.
    shadow_fading_db : [K] float
        Shadow fading as a loss (positive: weaker).
    """

    positions_m: np.ndarray
    distance_2d_m: np.ndarray
    distance_3d_m: np.ndarray
    los: np.ndarray
    indoor: np.ndarray
    path_loss_db: np.ndarray
    shadow_fading_db: np.ndarray

    @property
    def loss_db(self) -> np.ndarray:
        """Path loss plus shadow fading [dB], [K]."""
        return self.path_loss_db + self.shadow_fading_db


class _TrueDistance3d:
    """Sionna 1.2's scenarios return the 2D distance as ``distance_3d`` (NVlabs/sionna
    issue 1100, confirmed a bug by its maintainers), so the path loss uses d_2D
    where 38.901 says d_3D: 0.7 dB too little for a UMa user 60 m from a 25 m mast.
    This puts back the 3D distance the scenario already computes."""

    @property
    def distance_3d(self):
        return self._distance_3d


class _UMi(_TrueDistance3d, UMiScenario):
    pass


class _UMa(_TrueDistance3d, UMaScenario):
    pass


class _RMa(_TrueDistance3d, RMaScenario):
    pass


def _scenario(name: str, carrier_frequency_hz: float, precision: str):
    if name not in SCENARIOS:
        raise LinkConfigError("topology", name, "one of " + ", ".join(SCENARIOS))
    arrays = {
        "ut_array": single_element_array(carrier_frequency_hz, precision),
        "bs_array": single_element_array(carrier_frequency_hz, precision),
    }
    common = {"direction": "uplink", "enable_pathloss": True, "enable_shadow_fading": True}
    if name == "rma":
        return _RMa(carrier_frequency_hz, precision=precision, **arrays, **common)
    cls = _UMi if name == "umi" else _UMa
    return cls(carrier_frequency_hz, "low", precision=precision, **arrays, **common)


def path_loss_db(
    scenario: Scenario,
    carrier_frequency_ghz: float,
    distance_2d_m: float,
    los: bool,
    ut_height_m: float = 1.5,
    precision: str = "double",
) -> float:
    """38.901 basic path loss of one outdoor user at a known distance from the BS.

    Input
    -----
    scenario : "umi" | "uma" | "rma"
    carrier_frequency_ghz : float
    distance_2d_m : float
        Ground distance to the BS (at ``BS_HEIGHT_M[scenario]``).
    los : bool
        Line of sight or not (forced, not drawn).
    ut_height_m : float

    Output
    ------
    : float, path loss [dB] as Sionna's scenario computes it
    """
    model = _scenario(scenario, carrier_frequency_ghz * 1e9, precision)
    dtype = tf.float64 if precision == "double" else tf.float32
    ut_loc = tf.constant([[[distance_2d_m, 0.0, ut_height_m]]], dtype)
    bs_loc = tf.constant([[[0.0, 0.0, BS_HEIGHT_M[scenario]]]], dtype)
    zeros = tf.zeros([1, 1, 3], dtype)
    model.set_topology(ut_loc, bs_loc, zeros, zeros, zeros, tf.constant([[False]]), los=los)
    return float(model.basic_pathloss[0, 0, 0])


def drop_users(
    scenario: Scenario,
    num_users: int,
    carrier_frequency_ghz: float,
    seed: int,
    *,
    min_distance_m: float | None = None,
    max_distance_m: float | None = None,
    indoor_probability: float | None = None,
    precision: str = "double",
) -> UserDrop:
    """Drop ``num_users`` users in one sector with Sionna's generator, from ``seed``.

    Input
    -----
    scenario : "umi" | "uma" | "rma"
    num_users : int
    carrier_frequency_ghz : float
    seed : int
        Seeds Sionna's generators (:func:`phy.seeding.set_seed`): the same seed gives
        the same drop, LoS states and shadow fading.
    min_distance_m : float or None
        Closest user to the BS (None: the scenario's default).
    max_distance_m : float or None
        The sector's farthest point from the BS on the ground, i.e. Sionna's sector
        of an inter-site distance ``sqrt(3) * max_distance_m`` (None: the scenario's
        default inter-site distance).
    indoor_probability : float or None
        None: the scenario's default (0.8 in UMi and UMa, 0.5 in RMa).

    Output
    ------
    : UserDrop
    """
    if num_users < 1:
        raise LinkConfigError("num_users", num_users, "an integer >= 1")
    both = min_distance_m is not None and max_distance_m is not None
    if both and not 0 <= min_distance_m < max_distance_m:
        raise LinkConfigError(
            "max_distance_m", max_distance_m, f"a distance > min_distance_m ({min_distance_m})"
        )
    set_seed(seed)
    model = _scenario(scenario, carrier_frequency_ghz * 1e9, precision)
    isd = None if max_distance_m is None else math.sqrt(3.0) * max_distance_m
    ut_loc, bs_loc, ut_orient, bs_orient, ut_vel, in_state = gen_single_sector_topology(
        1,
        num_users,
        scenario,
        min_bs_ut_dist=min_distance_m,
        isd=isd,
        indoor_probability=indoor_probability,
        precision=precision,
    )
    model.set_topology(ut_loc, bs_loc, ut_orient, bs_orient, ut_vel, in_state)
    lsp = LSPGenerator(model)
    lsp.topology_updated_callback()
    path_loss = lsp.sample_pathloss()[0, 0].numpy()
    shadow = -10.0 * np.log10(lsp().sf[0, 0].numpy())
    return UserDrop(
        positions_m=ut_loc[0].numpy(),
        distance_2d_m=model.distance_2d[0, 0].numpy(),
        distance_3d_m=model.distance_3d[0, 0].numpy(),
        los=model.los[0, 0].numpy(),
        indoor=in_state[0].numpy(),
        path_loss_db=path_loss,
        shadow_fading_db=shadow,
    )


def sub_band_hz(config: LinkConfig) -> float:
    """Bandwidth of one user's sub-band: its subcarriers x the spacing [Hz]."""
    return config.num_subcarriers * config.subcarrier_spacing_khz * 1e3


def noise_power_dbm(bandwidth_hz: float, noise_figure_db: float) -> float:
    """Receiver noise power kTB x NF [dBm], kT = -174 dBm/Hz."""
    return THERMAL_NOISE_DBM_PER_HZ + 10.0 * math.log10(bandwidth_hz) + noise_figure_db


def link_snr_db(
    tx_power_dbm: float | np.ndarray,
    loss_db: float | np.ndarray,
    bandwidth_hz: float,
    noise_figure_db: float,
) -> float | np.ndarray:
    """Mean SNR of a link budget [dB]: transmit power - loss - noise power.

    Input
    -----
    tx_power_dbm : float or array
    loss_db : float or array [K]
        Path loss (and shadow fading) per user.
    bandwidth_hz : float
        The sub-band the power is spread over (:func:`sub_band_hz`).
    noise_figure_db : float
        Of the receiver.

    Output
    ------
    : float or array [K]
    """
    return tx_power_dbm - loss_db - noise_power_dbm(bandwidth_hz, noise_figure_db)


@dataclass(frozen=True)
class CellDrop:
    """A drop with each user's link budget (numpy arrays, one entry per user).

    Attributes
    ----------
    users : UserDrop
    budget : LinkBudget
        The settings it was drawn with, defaults filled in.
    bandwidth_hz : float
        One user's sub-band (:func:`sub_band_hz`).
    uplink_snr_db : [K] float
        UE power - loss - (kTB + BS noise figure).
    downlink_snr_db : [K] float
        The BS power's share of one sub-band (total - 10 log10 K) - loss - (kTB +
        UE noise figure).
    """

    users: UserDrop
    budget: LinkBudget
    bandwidth_hz: float
    uplink_snr_db: np.ndarray
    downlink_snr_db: np.ndarray


def cell_drop(config: LinkConfig, num_users: int, seed: int) -> CellDrop:
    """Drop ``num_users`` users as ``config``'s topology keys say, with their SNRs.

    Input
    -----
    config : LinkConfig
        ``topology`` "umi" | "uma" | "rma"; the carrier frequency, the sub-band
        (``rb_per_user`` / ``fft_size``, ``subcarrier_spacing_khz``) and the
        link-budget keys (:attr:`LinkConfig.link_budget`).
    num_users : int
        K.
    seed : int
        The drop's seed (:func:`drop_users`).

    Output
    ------
    : CellDrop
    """
    budget = config.link_budget
    users = drop_users(
        budget.scenario,
        num_users,
        config.carrier_frequency_ghz,
        seed,
        min_distance_m=budget.min_distance_m,
        max_distance_m=budget.max_distance_m,
        indoor_probability=budget.indoor_probability,
    )
    band = sub_band_hz(config)
    uplink = link_snr_db(budget.ue_tx_power_dbm, users.loss_db, band, budget.bs_noise_figure_db)
    downlink = link_snr_db(
        budget.bs_power_per_user_dbm(num_users), users.loss_db, band, budget.ue_noise_figure_db
    )
    return CellDrop(users, budget, band, np.asarray(uplink), np.asarray(downlink))


DROP_COLUMNS: tuple[str, ...] = (
    "user",
    "x_m",
    "y_m",
    "distance_2d_m",
    "distance_3d_m",
    "los",
    "indoor",
    "path_loss_db",
    "shadow_fading_db",
    "uplink_snr_db",
    "downlink_snr_db",
)


def drop_rows(drop: CellDrop) -> list[dict[str, float | int | bool]]:
    """One row per user of ``drop`` with :data:`DROP_COLUMNS` (for a CSV)."""
    u = drop.users
    return [
        {
            "user": k,
            "x_m": float(u.positions_m[k, 0]),
            "y_m": float(u.positions_m[k, 1]),
            "distance_2d_m": float(u.distance_2d_m[k]),
            "distance_3d_m": float(u.distance_3d_m[k]),
            "los": bool(u.los[k]),
            "indoor": bool(u.indoor[k]),
            "path_loss_db": float(u.path_loss_db[k]),
            "shadow_fading_db": float(u.shadow_fading_db[k]),
            "uplink_snr_db": float(drop.uplink_snr_db[k]),
            "downlink_snr_db": float(drop.downlink_snr_db[k]),
        }
        for k in range(len(u.distance_2d_m))
    ]
