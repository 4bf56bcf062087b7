"""Airtime: the OFDM slots and milliseconds a round's transmissions occupy.

What this module may touch: a :class:`~phy.config.LinkConfig` and counts
(samples per link call, payload bits); it draws nothing and runs no channel.

A *slot* here is what the link simulates: one user's resource grid of
``num_ofdm_symbols`` OFDM symbols on its sub-band of ``rb_per_user`` resource
blocks (12 subcarriers each). Its duration follows the 5G NR numerology: at a
subcarrier spacing of 15 * 2^mu kHz a 14-symbol slot lasts 1 ms / 2^mu
(normal cyclic prefix, so a symbol takes 1/14 of it on average), and a grid of
N symbols lasts N / 14 of that::

    slot_ms = num_ofdm_symbols / 14 * 15 kHz / subcarrier_spacing

The simulated ``cyclic_prefix_length`` (samples of one sub-band's FFT) does not
enter: in NR the cyclic prefix is a fixed share of every symbol, which the
1 ms / 2^mu already holds.

Data REs exclude the pilot symbols, as the resource grid does
(``LinkConfig.num_data_res``). Analog features fill slots as the link packs them
(:class:`~phy.resource_grid.SlotPacking`: ``floor(num_data_res / (d / 2))``
samples per slot, every link call starting a new slot); a digital payload of
b bits at ``baseline_bits_per_symbol`` bits per RE takes
``ceil(ceil(b / bits_per_symbol) / num_data_res)`` slots.

Users are orthogonal (OFDMA): each has its own sub-band and they transmit at the
same time, so a direction's share of a round lasts as long as its busiest user
needs. The uplink and the downlink take turns (time-division duplex), so a
round's airtime is ``(uplink_slots + downlink_slots) * slot_ms``. The carrier's
total bandwidth (users x ``rb_per_user`` resource blocks) is not checked against
any band's limit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from phy.config import LinkConfig, LinkConfigError
from phy.resource_grid import SlotPacking

# OFDM symbols of an NR slot with the normal cyclic prefix; it lasts 1 ms at 15 kHz.
NR_SYMBOLS_PER_SLOT = 14
NR_BASE_SPACING_KHZ = 15.0


@dataclass(frozen=True)
class Airtime:
    """What one round (or one direction's work) occupies on the air.

    Attributes
    ----------
    uplink_slots, downlink_slots : int
        Slots of the busiest user in each direction (users run in parallel).
    airtime_ms : float
        ``(uplink_slots + downlink_slots) * slot_duration_ms``.
    """

    uplink_slots: int
    downlink_slots: int
    airtime_ms: float


def slot_duration_ms(config: LinkConfig) -> float:
    """Duration of one of the link's slots (``num_ofdm_symbols`` symbols) [ms].

    Input
    -----
    config : LinkConfig
        Uses ``subcarrier_spacing_khz`` and ``num_ofdm_symbols``.

    Output
    ------
    : float, ``num_ofdm_symbols / 14 * 15 / subcarrier_spacing_khz``
        (0.5 ms for 14 symbols at 30 kHz)
    """
    return (
        config.num_ofdm_symbols
        / NR_SYMBOLS_PER_SLOT
        * NR_BASE_SPACING_KHZ
        / config.subcarrier_spacing_khz
    )


def feature_slots(config: LinkConfig, feature_dim: int, batch_sizes: Sequence[int]) -> int:
    """Slots one user needs to send analog feature vectors in the given link calls.

    Input
    -----
    config : LinkConfig
    feature_dim : int
        d (even): d / 2 complex symbols per sample.
    batch_sizes : sequence of int
        Samples in each link call (a mini-batch); each call starts its own slots.

    Output
    ------
    : int, ``sum ceil(B_i / floor(num_data_res / (d / 2)))``
    """
    packing = SlotPacking.for_config(config, feature_dim)
    return sum(packing.num_slots(int(b)) for b in batch_sizes if b > 0)


def payload_slots(config: LinkConfig, bits: int, bits_per_symbol: float | None = None) -> int:
    """Slots one user needs to carry a digital payload.

    Input
    -----
    config : LinkConfig
    bits : int
        Payload size (0: nothing to send, 0 slots).
    bits_per_symbol : float or None
        Spectral efficiency per data RE; None takes ``config.baseline_bits_per_symbol``.

    Output
    ------
    : int, ``ceil(ceil(bits / bits_per_symbol) / num_data_res)``
    """
    if bits < 0:
        raise LinkConfigError("bits", bits, "a number of bits >= 0")
    rate = config.baseline_bits_per_symbol if bits_per_symbol is None else bits_per_symbol
    if rate <= 0:
        raise LinkConfigError("baseline_bits_per_symbol", rate, "a positive number")
    symbols = math.ceil(bits / rate)
    return math.ceil(symbols / config.num_data_res)


def round_airtime(
    config: LinkConfig,
    uplink_slots_per_user: Sequence[int],
    downlink_slots_per_user: Sequence[int],
) -> Airtime:
    """A round's airtime from each user's slots in each direction.

    Input
    -----
    config : LinkConfig
    uplink_slots_per_user, downlink_slots_per_user : sequence of int, one per user
        (empty: nothing sent in that direction)

    Output
    ------
    : Airtime
        The busiest user's slots per direction (OFDMA: users in parallel) and the
        round's duration, uplink and downlink one after the other.
    """
    up = max(uplink_slots_per_user, default=0)
    down = max(downlink_slots_per_user, default=0)
    return Airtime(int(up), int(down), (up + down) * slot_duration_ms(config))
