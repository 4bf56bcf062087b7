"""The link budget of users dropped in a 38.901 cell: its settings and their defaults.

What this module may touch: numbers only (no TensorFlow, no Sionna), so that a
config can be checked without loading either. :mod:`phy.topology` draws the
drop and turns these settings into each user's SNR.

The keys are ``LinkConfig``'s ``topology``, ``min_distance_m``, ``max_distance_m``,
``indoor_probability``, ``ue_tx_power_dbm``, ``bs_tx_power_dbm``,
``ue_noise_figure_db``, ``bs_noise_figure_db`` and ``topology_snr``; unset (None)
means the default below. :class:`LinkBudget` holds them resolved.

Defaults and where they come from:

* UE transmit power 23 dBm: power class 3 of 3GPP TS 38.101-1.
* BS transmit power 44 dBm (UMi), 49 dBm (UMa): 3GPP TR 38.901 Table 7.8-1
  (large-scale calibration), its 6 GHz column (20 MHz), the nearest to our
  3.5 GHz carrier; the table's 30 and 70 GHz columns (100 MHz) give 35 dBm to
  both. These agree with TR 36.873's 41 dBm (UMi) and 46 dBm (UMa) for 10 MHz,
  3 dB more for twice the bandwidth. (Until 2026-11-27 the defaults were 35 and
  44 dBm, the mmWave value for UMi and the UMi value for UMa: recalled wrongly.)
  46 dBm (RMa): ITU-R M.2412's rural eMBB setting, quoted from memory, not
  checked. The BS splits its power equally over the K users' sub-bands (OFDMA:
  all are sent at once), so each user's sub-band gets
  ``bs_tx_power_dbm - 10 log10 K``.
* Noise figures 7 dB at the BS and 9 dB at the UE: 9 dB is TR 38.901 Table
  7.8-1's UT noise figure at 6 GHz; the table gives no BS value (its
  calibration is a downlink one), and 7 dB is a common choice of system-level
  evaluations, not checked against a document.
* Closest user and sector size: Sionna's scenario defaults
  (``set_3gpp_scenario_parameters``: 10 / 35 / 35 m to the BS in 3D, inter-site
  distance 200 / 500 / 5000 m, whose sector reaches isd / sqrt(3) on the ground);
  indoor share 0.8 / 0.8 / 0.5 (38.901 Table 7.2-1). LoS follows the
  scenario's LoS probability (38.901 Table 7.4.2-1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Scenario = Literal["umi", "uma", "rma"]
TOPOLOGIES: tuple[str, ...] = ("none", "umi", "uma", "rma")
TOPOLOGY_SNRS: tuple[str, ...] = ("per_user", "median")

UE_TX_POWER_DBM = 23.0
BS_TX_POWER_DBM: dict[str, float] = {"umi": 44.0, "uma": 49.0, "rma": 46.0}
BS_NOISE_FIGURE_DB = 7.0
UE_NOISE_FIGURE_DB = 9.0
# Sionna's scenario defaults: closest user (3D distance) and inter-site distance [m].
MIN_DISTANCE_M: dict[str, float] = {"umi": 10.0, "uma": 35.0, "rma": 35.0}
INTER_SITE_DISTANCE_M: dict[str, float] = {"umi": 200.0, "uma": 500.0, "rma": 5000.0}
INDOOR_PROBABILITY: dict[str, float] = {"umi": 0.8, "uma": 0.8, "rma": 0.5}


def default_max_distance_m(scenario: str) -> float:
    """The farthest ground distance of the scenario's default sector: isd / sqrt(3)."""
    return INTER_SITE_DISTANCE_M[scenario] / math.sqrt(3.0)


@dataclass(frozen=True)
class LinkBudget:
    """A cell drop's settings with every unset key at its default.

    scenario : "umi" | "uma" | "rma"
    min_distance_m : float
        Closest user to the BS (3D distance).
    max_distance_m : float
        Farthest ground distance of the sector.
    indoor_probability : float
    ue_tx_power_dbm, bs_tx_power_dbm : float
        The UE's power over its sub-band; the BS's over all K sub-bands.
    ue_noise_figure_db, bs_noise_figure_db : float
    topology_snr : "per_user" | "median"
        Each user at its own budget's SNR, or every user at the drop's median
        (a uniform reference with the same drop).
    """

    scenario: Scenario
    min_distance_m: float
    max_distance_m: float
    indoor_probability: float
    ue_tx_power_dbm: float
    bs_tx_power_dbm: float
    ue_noise_figure_db: float
    bs_noise_figure_db: float
    topology_snr: Literal["per_user", "median"]

    def bs_power_per_user_dbm(self, num_users: int) -> float:
        """The BS power on one user's sub-band: its total split over ``num_users``."""
        return self.bs_tx_power_dbm - 10.0 * math.log10(num_users)
