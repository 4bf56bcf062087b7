"""One user's OFDM resource grid, and how samples are packed into slots.

Each user (OFDMA) owns a sub-band of ``config.num_subcarriers`` subcarriers; a
slot is ``config.num_ofdm_symbols`` OFDM symbols on it. A slot carries
``floor(num_data_res / n)`` samples of n complex symbols each; the REs left
over in a slot, and the missing samples of the last slot, are zeros.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from sionna.phy.mimo import StreamManagement
from sionna.phy.ofdm import ResourceGrid

from phy.config import LinkConfig, LinkConfigError


def build_resource_grid(config: LinkConfig) -> ResourceGrid:
    """Sionna resource grid of one user: one transmitter, one stream.

    Input
    -----
    config : LinkConfig

    Output
    ------
    : sionna.phy.ofdm.ResourceGrid
        ``num_ofdm_symbols`` x ``num_subcarriers``, no guard or DC carriers,
        Kronecker pilots on ``pilot_ofdm_symbol_indices`` (all subcarriers of
        those symbols) or no pilots.
    """
    kronecker = config.pilot_pattern == "kronecker"
    return ResourceGrid(
        num_ofdm_symbols=config.num_ofdm_symbols,
        fft_size=config.num_subcarriers,
        subcarrier_spacing=config.subcarrier_spacing_khz * 1e3,
        num_tx=1,
        num_streams_per_tx=1,
        cyclic_prefix_length=config.cyclic_prefix_length,
        pilot_pattern=config.pilot_pattern,
        pilot_ofdm_symbol_indices=list(config.pilot_ofdm_symbol_indices) if kronecker else None,
        precision=config.precision,
    )


def single_stream_management() -> StreamManagement:
    """One receiver decoding the one stream of one transmitter."""
    return StreamManagement(rx_tx_association=[[1]], num_streams_per_tx=1)


@dataclass(frozen=True)
class SlotPacking:
    """How samples of ``symbols_per_sample`` complex symbols fill slots.

    Attributes
    ----------
    symbols_per_sample : int
        n = d / 2 complex symbols per sample.
    num_data_res : int
        Data REs per slot.
    samples_per_slot : int
        ``floor(num_data_res / n)``.
    """

    symbols_per_sample: int
    num_data_res: int
    samples_per_slot: int

    @classmethod
    def for_config(cls, config: LinkConfig, feature_dim: int) -> SlotPacking:
        """Packing of d-dimensional real features on ``config``'s grid.

        Raises :class:`LinkConfigError` when d is odd or a sample does not fit
        in one slot.
        """
        if feature_dim < 2 or feature_dim % 2:
            raise LinkConfigError(
                "feature_dim",
                feature_dim,
                "an even integer >= 2 (d real values become d/2 complex symbols)",
            )
        n = feature_dim // 2
        if n > config.num_data_res:
            raise LinkConfigError(
                "feature_dim",
                feature_dim,
                f"at most 2 * {config.num_data_res} (one sample must fit in the "
                f"{config.num_data_res} data REs of a slot)",
            )
        return cls(n, config.num_data_res, config.num_data_res // n)

    def num_slots(self, num_samples: int) -> int:
        """Slots needed by one user for ``num_samples`` samples."""
        return max(1, math.ceil(num_samples / self.samples_per_slot))

    def pack(self, symbols: tf.Tensor) -> tf.Tensor:
        """Place each user's samples in its slots.

        Input
        -----
        symbols : [U, B, n], tf.complex
            Static U and B.

        Output
        ------
        : [U * num_slots(B), num_data_res], tf.complex
            Row ``u * num_slots + t`` is slot t of user u, zero-padded.
        """
        num_users, num_samples = symbols.shape[0], symbols.shape[1]
        num_slots = self.num_slots(num_samples)
        used = self.samples_per_slot * self.symbols_per_sample
        padded = tf.pad(
            symbols, [[0, 0], [0, num_slots * self.samples_per_slot - num_samples], [0, 0]]
        )
        slots = tf.reshape(padded, [num_users * num_slots, used])
        return tf.pad(slots, [[0, 0], [0, self.num_data_res - used]])

    def unpack(self, slots: tf.Tensor, num_users: int, num_samples: int) -> tf.Tensor:
        """Inverse of :meth:`pack`: drop the padding.

        Input
        -----
        slots : [U * num_slots(B), num_data_res], any dtype

        Output
        ------
        : [U, B, n], same dtype
        """
        num_slots = self.num_slots(num_samples)
        used = self.samples_per_slot * self.symbols_per_sample
        samples = tf.reshape(
            slots[:, :used], [num_users, num_slots * self.samples_per_slot, self.symbols_per_sample]
        )
        return samples[:, :num_samples]

    def slot_sums(self, per_sample: np.ndarray) -> np.ndarray:
        """Sum a per-sample quantity over the samples of each slot (as :meth:`pack` fills them).

        Input
        -----
        per_sample : [..., B], numpy

        Output
        ------
        : [..., num_slots(B)], same dtype; the last slot sums only the samples it carries
        """
        per_sample = np.asarray(per_sample)
        num_samples = per_sample.shape[-1]
        num_slots = self.num_slots(num_samples)
        pad = [(0, 0)] * (per_sample.ndim - 1) + [
            (0, num_slots * self.samples_per_slot - num_samples)
        ]
        padded = np.pad(per_sample, pad)
        return padded.reshape(*per_sample.shape[:-1], num_slots, self.samples_per_slot).sum(axis=-1)
