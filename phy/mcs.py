"""Adaptive modulation and coding: a measured block-error-rate table and each user's choice.

What this module may touch: :class:`~phy.config.LinkConfig`, the digital link
(:class:`~phy.digital.DigitalLink`, measured with :func:`phy.measure.measure_blocks`)
and files in a cache folder it is given. It knows nothing of learning.

With ``link.mcs = "auto"`` every digital direction of every user takes the
highest-rate candidate (bits per symbol times code rate) whose block error rate
at that user's SNR is below :data:`TARGET_BLER` (10 %). The block error rates
are not a formula: :func:`measure_table` sends random code blocks of every
candidate over the configured link (channel model, CSI, equalizer, grid, LDPC
iterations) at every SNR of a grid and counts the blocks lost. Between two grid
SNRs the block error rate is interpolated linearly in dB; outside the grid it is
the nearest grid point's. A user whose SNR leaves every candidate at or above
10 % gets the most robust one (lowest rate) and a :class:`McsWarning`.

A table depends only on what changes a code block's fate: the link's settings
except the SNRs, the scheme keys, the quantizer and ``failed_block`` (a block is
lost or not whatever its bits mean), plus the candidates, the SNR grid and the
measurement effort. :func:`table_key` hashes them; :func:`cached_table` reads
``mcs_table-<key>.csv`` from a cache folder or measures and writes it, so a
second run with the same link reuses it and a run with another link builds its
own. Uplink and downlink share a table unless the direction changes the
channel (several BS antennas, or CDL / UMi / UMa / RMa whose geometry depends on
which end transmits).

Table layout (CSV, one row per candidate and SNR): ``modulation``,
``code_rate``, ``snr_db``, ``bler``, ``bler_low``, ``bler_high`` (95 % Wilson
interval over slots), ``blocks``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from phy.config import MODULATIONS, LinkConfig, LinkConfigError
from phy.seeding import seeded_apart

__all__ = [
    "DEFAULT_SNRS_DB",
    "MCS_CANDIDATES",
    "TARGET_BLER",
    "Effort",
    "Mcs",
    "McsTable",
    "McsWarning",
    "cached_table",
    "measure_table",
    "table_key",
    "table_settings",
    "user_configs",
]

Direction = Literal["uplink", "downlink"]

# A user's MCS must lose fewer than this share of its code blocks.
TARGET_BLER = 0.1
# SNR grid of a measured table [dB]: Es/N0 per data RE.
DEFAULT_SNRS_DB: tuple[float, ...] = tuple(float(s) for s in range(-10, 32, 2))
# Keys of LinkConfig that do not change a code block's fate (or that the table
# itself varies): left out of a table's settings.
IGNORED_KEYS: tuple[str, ...] = (
    "uplink_snr_db",
    "downlink_snr_db",
    "scheme",
    "uplink_scheme",
    "downlink_scheme",
    "quant_bits",
    "quant_clip",
    "failed_block",
    "modulation",
    "code_rate",
    "mcs",
    "baseline_bits_per_symbol",
    "jit_compile",
)
# Seed of a table's random draws (phy.seeding.seeded_apart).
TABLE_SEED = 16
# Bump when the measurement changes in a way the settings do not show.
TABLE_VERSION = 1
COLUMNS: tuple[str, ...] = (
    "modulation",
    "code_rate",
    "snr_db",
    "bler",
    "bler_low",
    "bler_high",
    "blocks",
)


class McsWarning(UserWarning):
    """A user whose SNR is below every candidate's 10 % threshold."""


@dataclass(frozen=True, order=True)
class Mcs:
    """One modulation and code rate of the 5G LDPC / QAM chain.

    Attributes
    ----------
    modulation : "qpsk" | "16qam" | "64qam" | "256qam"
    code_rate : float
        k/n, CRC included in k.
    """

    modulation: str
    code_rate: float

    def __post_init__(self) -> None:
        if self.modulation not in MODULATIONS:
            raise LinkConfigError(
                "modulation", self.modulation, "one of " + ", ".join(map(repr, MODULATIONS))
            )

    @property
    def efficiency(self) -> float:
        """Coded bits per QAM symbol: bits per symbol times the code rate."""
        return MODULATIONS[self.modulation] * self.code_rate

    @property
    def label(self) -> str:
        """e.g. ``"16qam r0.5"``."""
        return f"{self.modulation} r{self.code_rate:g}"


# QPSK at 1/3 to 3/4, 16-QAM at 1/2 to 3/4, 64-QAM at 2/3 and 3/4: nine rungs
# of 0.67 to 4.5 bits per symbol, each a higher rate than the one before
# (16-QAM 1/3 and 64-QAM 1/2 would repeat a lower order's rate).
MCS_CANDIDATES: tuple[Mcs, ...] = (
    Mcs("qpsk", 0.3333),
    Mcs("qpsk", 0.5),
    Mcs("qpsk", 0.6667),
    Mcs("qpsk", 0.75),
    Mcs("16qam", 0.5),
    Mcs("16qam", 0.6667),
    Mcs("16qam", 0.75),
    Mcs("64qam", 0.6667),
    Mcs("64qam", 0.75),
)


@dataclass(frozen=True)
class Effort:
    """How many code blocks a table point rests on (:func:`phy.measure.measure_blocks`):
    batches of ``slots_per_batch`` slots until ``target_block_errors`` block errors
    or ``max_batches`` batches."""

    slots_per_batch: int = 50
    target_block_errors: int = 100
    max_batches: int = 4


class McsTable:
    """Measured block error rate vs SNR per candidate MCS, and the choice it implies.

    Parameters
    ----------
    rows : iterable of dict
        With the keys ``modulation``, ``code_rate``, ``snr_db``, ``bler`` (and
        optionally the other :data:`COLUMNS`); at least one row per candidate.
    """

    def __init__(self, rows: Iterable[dict[str, object]]) -> None:
        self.rows = [dict(r) for r in rows]
        curves: dict[Mcs, list[tuple[float, float]]] = {}
        for r in self.rows:
            mcs = Mcs(str(r["modulation"]), float(r["code_rate"]))
            curves.setdefault(mcs, []).append((float(r["snr_db"]), float(r["bler"])))
        if not curves:
            raise ValueError("an MCS table needs at least one row")
        self._curves = {m: sorted(points) for m, points in curves.items()}

    @property
    def candidates(self) -> tuple[Mcs, ...]:
        """The table's MCS, lowest rate first (ties: lower order first)."""
        return tuple(sorted(self._curves, key=lambda m: (m.efficiency, MODULATIONS[m.modulation])))

    def bler(self, mcs: Mcs, snr_db: float) -> float:
        """Block error rate of ``mcs`` at ``snr_db``: linear in dB between grid
        points, the end point's value outside the grid."""
        snrs, blers = zip(*self._curves[mcs], strict=True)
        return float(np.interp(snr_db, snrs, blers))

    def choose(self, snr_db: float, target: float = TARGET_BLER) -> Mcs:
        """The highest-rate MCS whose block error rate at ``snr_db`` is below ``target``.

        Among MCS of the same rate the lower order wins. Below every
        candidate's threshold: the most robust MCS, with a :class:`McsWarning`.
        """
        order = self.candidates
        fit = [m for m in order if self.bler(m, snr_db) < target]
        if fit:
            best = max(m.efficiency for m in fit)
            return next(m for m in fit if m.efficiency == best)
        robust = order[0]
        warnings.warn(
            f"SNR {snr_db:g} dB is below every MCS's {target:.0%} block-error threshold "
            f"(the most robust, {robust.label}, loses {self.bler(robust, snr_db):.0%} "
            "of its blocks there); using it anyway",
            McsWarning,
            stacklevel=2,
        )
        return robust

    def write_csv(self, path: str | Path) -> Path:
        """Write the rows with the header :data:`COLUMNS` (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.rows)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(tmp, path)
        return path

    @classmethod
    def read_csv(cls, path: str | Path) -> McsTable:
        with Path(path).open(newline="") as f:
            return cls(csv.DictReader(f))


def table_settings(
    config: LinkConfig,
    direction: Direction,
    candidates: Sequence[Mcs] = MCS_CANDIDATES,
    snrs_db: Sequence[float] = DEFAULT_SNRS_DB,
    effort: Effort = Effort(),
) -> dict[str, object]:
    """What a table measured for ``config`` depends on, as JSON-ready values.

    Output
    ------
    : dict with ``link`` (the LinkConfig's keys but :data:`IGNORED_KEYS`),
        ``direction`` (None when both directions see the same channel),
        ``candidates``, ``snrs_db``, ``effort`` and ``version``
    """
    link = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name not in IGNORED_KEYS
    }
    # The equalizer the digital link really uses (phy.digital: mmse -> lmmse).
    if link.get("equalizer") == "mmse":
        link["equalizer"] = "lmmse"
    directional = config.bs_antennas > 1 or config.channel.startswith(("cdl-", "umi", "uma", "rma"))
    return json.loads(
        json.dumps(
            {
                "link": link,
                "direction": direction if directional else None,
                "candidates": [[m.modulation, m.code_rate] for m in candidates],
                "snrs_db": [float(s) for s in snrs_db],
                "effort": dataclasses.asdict(effort),
                "version": TABLE_VERSION,
            },
            sort_keys=True,
        )
    )


def table_key(settings: dict[str, object]) -> str:
    """A 16-hex-digit hash of :func:`table_settings`' output."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def measure_table(
    config: LinkConfig,
    direction: Direction = "uplink",
    candidates: Sequence[Mcs] = MCS_CANDIDATES,
    snrs_db: Sequence[float] = DEFAULT_SNRS_DB,
    effort: Effort = Effort(),
    progress: Callable[[Iterable], Iterable] | None = None,
) -> McsTable:
    """Measure every candidate's block error rate at every SNR on ``config``'s link.

    One user, random payload in full slots (:func:`phy.measure.measure_blocks`);
    random draws from ``sionna.phy.config`` (:func:`cached_table` seeds them
    with :data:`TABLE_SEED`, apart from the caller's streams). Above the first
    SNR where a candidate loses no block, its block error rate is taken as 0
    without sending more.

    Input
    -----
    config : LinkConfig
        The link; its scheme, modulation, code rate and ``mcs`` are replaced.
    direction : "uplink" | "downlink"
    candidates : sequence of Mcs
    snrs_db : sequence of float, increasing
    effort : Effort
    progress : callable wrapping an iterable (e.g. tqdm), optional
        Receives the iterable of candidates.

    Output
    ------
    : McsTable
    """
    from phy.digital import DigitalLink
    from phy.measure import measure_blocks

    rows = []
    for mcs in progress(candidates) if progress else candidates:
        link = DigitalLink(fixed_mcs(config, mcs), 2, direction)
        clean = False
        for snr in snrs_db:
            if clean:
                point = {"bler": 0.0, "bler_low": 0.0, "bler_high": None, "blocks": 0}
            else:
                point = measure_blocks(
                    link,
                    snr,
                    effort.slots_per_batch,
                    target_block_errors=effort.target_block_errors,
                    max_batches=effort.max_batches,
                )
                clean = point["bler"] == 0.0
            rows.append(
                {
                    "modulation": mcs.modulation,
                    "code_rate": mcs.code_rate,
                    "snr_db": float(snr),
                    **{k: point[k] for k in ("bler", "bler_low", "bler_high", "blocks")},
                }
            )
    return McsTable(rows)


def cached_table(
    config: LinkConfig,
    direction: Direction,
    cache_dir: str | Path,
    *,
    candidates: Sequence[Mcs] = MCS_CANDIDATES,
    snrs_db: Sequence[float] = DEFAULT_SNRS_DB,
    effort: Effort = Effort(),
    build: Callable[..., McsTable] = measure_table,
) -> tuple[McsTable, Path]:
    """The table of ``config``'s link from ``cache_dir``, measured and written there first
    when it is missing or unreadable.

    Output
    ------
    : (McsTable, path of its CSV); ``<path>.json`` beside it holds the settings
    """
    settings = table_settings(config, direction, candidates, snrs_db, effort)
    folder = Path(cache_dir)
    path = folder / f"mcs_table-{table_key(settings)}.csv"
    meta = path.with_suffix(".json")
    try:
        if json.loads(meta.read_text()) == settings:
            return McsTable.read_csv(path), path
    except (OSError, ValueError, KeyError):
        pass  # missing or damaged: measure again
    # The table's own seed, apart from the caller's streams: a run that measures
    # the table draws the same channels as one that finds it cached.
    with seeded_apart(TABLE_SEED):
        table = build(config, direction, candidates, snrs_db, effort)
    table.write_csv(path)
    meta.write_text(json.dumps(settings, indent=1, sort_keys=True) + "\n")
    return table, path


def fixed_mcs(config: LinkConfig, mcs: Mcs) -> LinkConfig:
    """``config`` with the digital scheme both ways at one MCS (``mcs`` unset)."""
    return dataclasses.replace(
        config,
        scheme="digital",
        uplink_scheme=None,
        downlink_scheme=None,
        modulation=mcs.modulation,
        code_rate=mcs.code_rate,
        mcs=None,
    )


def user_configs(
    config: LinkConfig,
    direction: Direction,
    snrs_db: Sequence[float],
    table: Callable[[], McsTable] | McsTable | None = None,
) -> tuple[LinkConfig, ...]:
    """The link config of every user in ``direction``.

    Analog directions and fixed MCS: ``config`` for every user. Digital with
    ``mcs = "auto"``: ``config`` with ``modulation`` and ``code_rate`` of the MCS
    the table chooses at the user's SNR and ``mcs`` unset (``table`` is an
    McsTable or a function returning one, called only then).

    Input
    -----
    config : LinkConfig
    direction : "uplink" | "downlink"
    snrs_db : sequence of float, one per user
    table : McsTable, callable returning one, or None

    Output
    ------
    : tuple of LinkConfig, one per user (equal MCS give equal configs)
    """
    if not config.auto_mcs or config.scheme_of(direction) == "analog":
        return (config,) * len(snrs_db)
    if table is None:
        raise LinkConfigError("mcs", config.mcs, "a measured MCS table to choose from")
    chosen = table() if callable(table) else table
    out = []
    for snr in snrs_db:
        if not math.isfinite(snr):
            raise LinkConfigError(f"{direction}_snr_db", snr, "finite SNRs with mcs = 'auto'")
        mcs = chosen.choose(float(snr))
        out.append(
            dataclasses.replace(
                config, modulation=mcs.modulation, code_rate=mcs.code_rate, mcs=None
            )
        )
    return tuple(out)
