"""The clients' places in a 38.901 cell: ``link.topology`` resolved into per-client SNRs.

What this module may touch: a :class:`~semfed.config.RunConfig` and
:func:`phy.topology.cell_drop`. With ``link.topology`` = "umi", "uma" or "rma"
the K = ``partition.num_clients`` clients are users dropped in one sector; the
drop comes from stream ``drop`` of ``partition.seed`` (:mod:`semfed.streams`),
so every scheme of a paired comparison with the same seed sees the same drop.
Client k is user k of the drop. :func:`resolve_drop` fills the config's
``[drop]`` section (:class:`~semfed.config.DropRecord`), from which
``RunConfig.uplink_snrs()`` / ``downlink_snrs()`` take each client's SNR.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from semfed.config import ConfigError, DropRecord, RunConfig
from semfed.streams import stream_seed

# Recorded values are written with this many decimals; a drop drawn again must
# agree with a recorded one to within this (dB and m).
_DECIMALS = 4
_TOLERANCE = 2e-4


def drop_seed(config: RunConfig) -> int:
    """The seed of the run's cell drop: stream ``drop`` of ``partition.seed``."""
    return stream_seed(config.partition.seed, "drop")


def draw_drop(config: RunConfig) -> DropRecord:
    """Draw the drop of ``config`` (``link.topology`` set) and its link budgets.

    Output
    ------
    : DropRecord, one value per client (K = ``partition.num_clients``)
    """
    from phy.topology import cell_drop

    drop = cell_drop(config.link, config.partition.num_clients, drop_seed(config))
    users = drop.users

    def floats(values: np.ndarray) -> tuple[float, ...]:
        return tuple(round(float(v), _DECIMALS) for v in values)

    return DropRecord(
        distance_2d_m=floats(users.distance_2d_m),
        los=tuple(bool(v) for v in users.los),
        indoor=tuple(bool(v) for v in users.indoor),
        path_loss_db=floats(users.path_loss_db),
        shadow_fading_db=floats(users.shadow_fading_db),
        uplink_snr_db=floats(drop.uplink_snr_db),
        downlink_snr_db=floats(drop.downlink_snr_db),
    )


def resolve_drop(config: RunConfig) -> RunConfig:
    """``config`` with its ``[drop]`` drawn (unchanged when ``link.topology`` is unset).

    A config that already carries a drop (a run's own config.toml) is checked
    against the drop drawn again: a different one (another Sionna version, an
    edited file) is refused with :class:`ConfigError`.
    """
    if not config.link.has_topology:
        return config
    drawn = draw_drop(config)
    if not config.drop.is_empty:
        for f in dataclasses.fields(DropRecord):
            old, new = getattr(config.drop, f.name), getattr(drawn, f.name)
            if not np.allclose(np.asarray(old, float), np.asarray(new, float), atol=_TOLERANCE):
                raise ConfigError(
                    f"drop.{f.name} = {list(old)!r} is not allowed: the drop drawn from "
                    f"partition.seed = {config.partition.seed} gives {list(new)!r} (the [drop] "
                    "section is written by a run, not an input: remove it to draw the drop again)"
                )
        return config
    return dataclasses.replace(config, drop=drawn)


__all__ = ["draw_drop", "drop_seed", "resolve_drop"]
