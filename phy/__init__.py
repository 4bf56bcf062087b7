"""phy: the OFDM radio link between clients and the base station, built on Sionna.

Nothing in ``phy`` knows about learning; it never imports ``semfed``.
"""

from phy.config import CHANNEL_MODELS, LinkConfig, LinkConfigError, per_user_snr_db

__all__ = ["CHANNEL_MODELS", "LinkConfig", "LinkConfigError", "per_user_snr_db"]
