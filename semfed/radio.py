"""The radio as semfed sees it: the uplink for features, the downlink for gradients.

This is the only module of semfed that talks to ``phy``. Every tensor crossing
the boundary is float32 [U, B, d]: U users (clients), B samples, d real values.
Each direction is analog or digital (``link.uplink_scheme`` /
``link.downlink_scheme``, :func:`phy.digital.build_link`); a digital direction
counts its code blocks, which :meth:`RadioLinks.block_record` reports per round,
summed and per client (calls that name their client).

With ``link.mcs = "auto"`` a digital direction has one link per MCS in use,
each client on the one its SNR chooses (:func:`phy.mcs.user_configs`, from the
table :func:`phy.mcs.cached_table` measures once per link setting); calls then
name the client (``client=k``), and clients on the same links share compiled
steps (:meth:`RadioLinks.group`). Channel uses differ between such clients: a
client on a faster MCS sends its payload in fewer slots.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import numpy as np
import tensorflow as tf

from phy.airtime import Airtime, feature_slots, payload_slots, round_airtime
from phy.config import LinkConfig
from phy.features import normalize_power
from phy.mcs import Mcs, McsTable, user_configs

__all__ = [
    "Airtime",
    "RadioLinks",
    "feature_slots",
    "normalize_power",
    "payload_slots",
    "round_airtime",
]

Direction = Literal["uplink", "downlink"]

_log = logging.getLogger(__name__)


def measured_mcs_table(
    config: LinkConfig, direction: Direction, cache_setting: str | None = None
) -> tuple[McsTable, Path]:
    """The measured MCS table of ``config``'s link in ``direction`` (``link.mcs = "auto"``)
    and its CSV, from ``<cache>/mcs`` (``cache_setting``: ``data.cache_dir``, else
    ``$SEMFED_CACHE``, else ``~/.cache/semfed``), measured there first when missing
    (a few minutes on a CPU, :func:`phy.mcs.cached_table`)."""
    from phy.mcs import cached_table
    from semfed.data.cache import cache_dir

    folder = cache_dir(cache_setting) / "mcs"
    _log.info("MCS table of the %s: from %s, measured first if missing", direction, folder)
    table, path = cached_table(config, direction, folder)
    _log.info("MCS table of the %s: %s", direction, path)
    return table, path


class RadioLinks:
    """Uplink and downlink of every client, with per-client SNRs.

    ``ideal=True`` replaces both links by the identity (a reference point for
    benchmarks and the split-learning gradient test). ``mcs_table(direction)``
    returns the measured :class:`~phy.mcs.McsTable` of a direction; it is
    called only for a digital direction with ``link.mcs = "auto"``.
    """

    def __init__(
        self,
        config: LinkConfig,
        feature_dim: int,
        uplink_snr_db: tuple[float, ...],
        downlink_snr_db: tuple[float, ...],
        ideal: bool = False,
        mcs_table: Callable[[Direction], McsTable] | None = None,
    ) -> None:
        self.config = config
        self.ideal = ideal
        self.feature_dim = feature_dim
        self.uplink_snr_db = tf.constant(uplink_snr_db, tf.float32)
        self.downlink_snr_db = tf.constant(downlink_snr_db, tf.float32)
        snrs = {"uplink": uplink_snr_db, "downlink": downlink_snr_db}
        # Each client's link config per direction (one MCS per client under auto).
        self.client_configs: dict[Direction, tuple[LinkConfig, ...]] = {
            d: (config,) * len(snrs[d])
            if ideal
            else user_configs(config, d, snrs[d], mcs_table and (lambda d=d: mcs_table(d)))
            for d in ("uplink", "downlink")
        }
        # One link per distinct config and direction, shared by its clients.
        self._links: dict[Direction, dict[LinkConfig, object]] = {"uplink": {}, "downlink": {}}
        if not ideal:
            from phy.digital import build_link

            for d, configs in self.client_configs.items():
                for c in configs:
                    if c not in self._links[d]:
                        self._links[d][c] = build_link(c, feature_dim, d)
        # Each client's link, looked up once here rather than by hashing its config on
        # every batch's call.
        self._client_links: dict[Direction, tuple[object, ...]] = {
            d: tuple(self._links[d][c] for c in configs) if not ideal else ()
            for d, configs in self.client_configs.items()
        }
        # Per client and digital direction: (code blocks sent, failed) since the last
        # reset, credited by crediting() around the client's own calls.
        self._client_blocks: dict[Direction, tuple[tf.Variable, ...]] = {
            d: tuple(
                tf.Variable([0, 0], dtype=tf.int64, trainable=False)
                for link in links
                if hasattr(link, "block_counts")
            )
            for d, links in self._client_links.items()
        }

    def link(self, direction: Direction, client: int | None = None):
        """The :class:`~phy.link.Link` (or DigitalLink) of ``direction`` that client
        ``client`` uses; None: the one every client shares (ValueError when the
        clients use several, under ``mcs = "auto"``)."""
        links = self._links[direction]
        if client is not None:
            return self._client_links[direction][client]
        if len(links) > 1:
            raise ValueError(
                f"the clients use {len(links)} different {direction} links (mcs = 'auto'): "
                "name the client"
            )
        return next(iter(links.values()))

    def uplink(
        self,
        features: tf.Tensor,
        snr_db: tf.Tensor,
        client: int | None = None,
        draws: tuple[tf.Tensor, tf.Tensor] | None = None,
    ) -> tf.Tensor:
        """Power-normalised features float32 [U, B, d], SNRs float32 [U] -> received [U, B, d].

        ``client``: the index of the one client sending (U = 1); needed when
        clients use different links (``mcs = "auto"``). Code blocks (digital) are
        counted on the link; :meth:`crediting` gives a client its own. ``draws``:
        this call's channels and noise from :meth:`draw` (None: drawn in the call).
        """
        if self.ideal:
            return features
        return self.link("uplink", client)(features, snr_db, draws=draws)

    def downlink(
        self,
        gradients: tf.Tensor,
        snr_db: tf.Tensor,
        client: int | None = None,
        draws: tuple[tf.Tensor, tf.Tensor] | None = None,
    ) -> tf.Tensor:
        """Gradients float32 [U, B, d], SNRs float32 [U] -> received gradients [U, B, d]
        (``client`` and ``draws`` as in :meth:`uplink`)."""
        if self.ideal:
            return gradients
        return self.link("downlink", client).send_gradients(gradients, snr_db, draws)

    def can_draw_ahead(self, direction: Direction, client: int | None = None) -> bool:
        """Whether the calls of ``direction`` for client ``client`` take their channels
        and noise drawn ahead, a pass at a time (:meth:`draw`): ``link.draw_ahead``
        (default true) and a link that can (:attr:`phy.link.Link.can_draw_ahead`: a
        static channel in the frequency domain, analog features)."""
        if self.ideal or not self.config.draws_ahead:
            return False
        return self.link(direction, client).can_draw_ahead

    def draw(
        self,
        direction: Direction,
        num_calls: int | tf.Tensor,
        num_samples: int,
        client: int | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """The channels and noise of ``num_calls`` calls of one client's B samples in
        ``direction``, in one go (:meth:`phy.link.Link.draw`): call i takes
        ``(h[i], noise[i])`` as ``draws``. h complex64 [num_calls, S, 1, N_r, 1, 1, 1,
        F], noise complex64 [num_calls, S, 1, N_r, T, F] (S slots a call, T OFDM
        symbols, F subcarriers)."""
        return self.link(direction, client).draw(num_calls, num_samples)

    @contextmanager
    def crediting(self, client: int) -> Iterator[None]:
        """Credit client ``client`` with the code blocks its links count inside the
        ``with`` block: the calls there are its own, even through a compiled step
        that the link's clients share."""
        before = self._link_block_totals(client)
        yield
        for d, total in self._link_block_totals(client).items():
            self._client_blocks[d][client].assign_add(total - before[d])

    def _link_block_totals(self, client: int) -> dict[Direction, np.ndarray]:
        """Per digital direction, int64 [2]: (blocks sent, failed) that client
        ``client``'s link has counted since the last reset, all clients on it together."""
        return {
            d: np.array(self._client_links[d][client].block_counts(), np.int64)
            for d, counters in self._client_blocks.items()
            if counters
        }

    def group(self, client: int) -> tuple[LinkConfig, LinkConfig]:
        """A key equal for clients on the same uplink and downlink (they may share steps)."""
        return self.client_configs["uplink"][client], self.client_configs["downlink"][client]

    def channel_uses(
        self, direction: Direction, num_samples: int, client: int | None = None
    ) -> int:
        """Complex symbols one client sends in ``direction`` for a batch of B samples:
        B * d / 2 analog, whole slots of codewords digital (at the client's MCS)."""
        if self.ideal:
            return num_samples * self.feature_dim // 2
        return self.link(direction, client).channel_uses(num_samples)

    def slots(self, direction: Direction, num_samples: int, client: int | None = None) -> int:
        """Slots one client occupies in ``direction`` for a batch of B samples."""
        if self.ideal or self.config.scheme_of(direction) == "analog":
            return feature_slots(self.config, self.feature_dim, [num_samples])
        return self.channel_uses(direction, num_samples, client) // self.config.num_data_res

    def mcs_record(self) -> dict[str, list[str]]:
        """Each client's MCS per digital direction (``uplink_mcs``, ``downlink_mcs``:
        ``"16qam r0.5"`` per client); empty for analog directions and the ideal radio."""
        out = {}
        for d, configs in self.client_configs.items():
            if not self.ideal and self.config.scheme_of(d) == "digital":
                out[f"{d}_mcs"] = [
                    Mcs(c.digital.modulation, c.digital.code_rate).label for c in configs
                ]
        return out

    def _counters(self) -> list[tf.Variable]:
        out = [c for counters in self._client_blocks.values() for c in counters]
        for links in self._links.values():
            for link in links.values():
                out += getattr(link, "counter_variables", list)()
        return out

    def counter_state(self) -> list[np.ndarray]:
        """The values of every code-block counter (empty when no direction is digital)."""
        return [v.numpy() for v in self._counters()]

    def set_counter_state(self, state: list[np.ndarray]) -> None:
        """Put back the counters of :meth:`counter_state`."""
        for v, value in zip(self._counters(), state, strict=True):
            v.assign(value)

    def reset_counts(self) -> None:
        """Zero the code-block counters of the digital directions."""
        for links in self._links.values():
            for link in links.values():
                if hasattr(link, "reset_counts"):
                    link.reset_counts()
        for counters in self._client_blocks.values():
            for counter in counters:
                counter.assign([0, 0])

    def block_record(self) -> dict[str, float | int | None]:
        """Per digital direction since the last reset, summed over its links:
        ``{dir}_blocks``, ``{dir}_block_errors`` (failed CRC) and ``{dir}_bler``;
        per client, what :meth:`crediting` credited it, ``{dir}_blocks_per_client``,
        ``{dir}_block_errors_per_client`` and ``{dir}_bler_per_client`` (None for a
        client that sent no block); empty when both directions are analog."""
        out: dict[str, float | int | None] = {}
        for direction, links in self._links.items():
            counted = [
                link.block_counts() for link in links.values() if hasattr(link, "block_counts")
            ]
            if counted:
                sent, failed = (sum(c) for c in zip(*counted, strict=True))
                out[f"{direction}_blocks"] = sent
                out[f"{direction}_block_errors"] = failed
                out[f"{direction}_bler"] = failed / sent if sent else None
            if self._client_blocks[direction]:
                per_client = [[int(v) for v in c.numpy()] for c in self._client_blocks[direction]]
                out[f"{direction}_blocks_per_client"] = [s for s, _ in per_client]
                out[f"{direction}_block_errors_per_client"] = [f for _, f in per_client]
                out[f"{direction}_bler_per_client"] = [f / s if s else None for s, f in per_client]
        return out
