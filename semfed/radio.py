"""The radio as semfed sees it: the uplink for features, the downlink for gradients.

This is the only module of semfed that talks to ``phy``. Every tensor crossing
the boundary is float32 [U, B, d]: U users (clients), B samples, d real values.
Each direction is analog or digital (``link.uplink_scheme`` /
``link.downlink_scheme``, :func:`phy.digital.build_link`); a digital direction
counts its code blocks, which :meth:`RadioLinks.block_record` reports per round.
"""

from __future__ import annotations

from typing import Literal

import tensorflow as tf

from phy.airtime import Airtime, feature_slots, payload_slots, round_airtime
from phy.config import LinkConfig
from phy.features import normalize_power

__all__ = [
    "Airtime",
    "RadioLinks",
    "feature_slots",
    "normalize_power",
    "payload_slots",
    "round_airtime",
]

Direction = Literal["uplink", "downlink"]


class RadioLinks:
    """Uplink and downlink of every client, with per-client SNRs.

    ``ideal=True`` replaces both links by the identity (a reference point for
    benchmarks and the split-learning gradient test).
    """

    def __init__(
        self,
        config: LinkConfig,
        feature_dim: int,
        uplink_snr_db: tuple[float, ...],
        downlink_snr_db: tuple[float, ...],
        ideal: bool = False,
    ) -> None:
        self.config = config
        self.ideal = ideal
        self.feature_dim = feature_dim
        self.uplink_snr_db = tf.constant(uplink_snr_db, tf.float32)
        self.downlink_snr_db = tf.constant(downlink_snr_db, tf.float32)
        self._links = {}
        if not ideal:
            from phy.digital import build_link

            self._uplink = build_link(config, feature_dim, "uplink")
            self._downlink = build_link(config, feature_dim, "downlink")
            self._links = {"uplink": self._uplink, "downlink": self._downlink}

    def uplink(self, features: tf.Tensor, snr_db: tf.Tensor) -> tf.Tensor:
        """Power-normalised features float32 [U, B, d], SNRs float32 [U] -> received [U, B, d]."""
        if self.ideal:
            return features
        return self._uplink(features, snr_db)

    def downlink(self, gradients: tf.Tensor, snr_db: tf.Tensor) -> tf.Tensor:
        """Gradients float32 [U, B, d], SNRs float32 [U] -> received gradients [U, B, d]."""
        if self.ideal:
            return gradients
        return self._downlink.send_gradients(gradients, snr_db)

    def channel_uses(self, direction: Direction, num_samples: int) -> int:
        """Complex symbols one client sends in ``direction`` for a batch of B samples:
        B * d / 2 analog, whole slots of codewords digital."""
        if self.ideal:
            return num_samples * self.feature_dim // 2
        return self._links[direction].channel_uses(num_samples)

    def reset_counts(self) -> None:
        """Zero the code-block counters of the digital directions."""
        for link in self._links.values():
            if hasattr(link, "reset_counts"):
                link.reset_counts()

    def block_record(self) -> dict[str, float | int | None]:
        """Per digital direction since the last reset: ``{dir}_blocks``,
        ``{dir}_block_errors`` (failed CRC) and ``{dir}_bler``; empty when both
        directions are analog."""
        out: dict[str, float | int | None] = {}
        for direction, link in self._links.items():
            if hasattr(link, "block_counts"):
                sent, failed = link.block_counts()
                out[f"{direction}_blocks"] = sent
                out[f"{direction}_block_errors"] = failed
                out[f"{direction}_bler"] = failed / sent if sent else None
        return out
