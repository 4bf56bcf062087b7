"""The radio as semfed sees it: the uplink for features, the downlink for gradients.

This is the only module of semfed that talks to ``phy``. Every tensor crossing
the boundary is float32 [U, B, d]: U users (clients), B samples, d real values.
"""

from __future__ import annotations

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
        self.uplink_snr_db = tf.constant(uplink_snr_db, tf.float32)
        self.downlink_snr_db = tf.constant(downlink_snr_db, tf.float32)
        if not ideal:
            from phy.link import Link

            self._uplink = Link(config, feature_dim, direction="uplink")
            self._downlink = Link(config, feature_dim, direction="downlink")

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
