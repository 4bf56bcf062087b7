"""Link-level figures of merit at one SNR: feature NMSE, post-equalisation SNR, QPSK BER,
and for the digital scheme block and coded bit error rates.

Each comes with a Monte-Carlo 95 % interval whose unit is the slot (one
independent channel realisation per slot, see :mod:`phy.confidence`).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import sionna.phy
import tensorflow as tf
from sionna.phy.utils import sim_ber

from phy.confidence import proportion_interval, ratio_interval
from phy.config import LinkConfig
from phy.digital import DigitalLink
from phy.link import Link

# Bounds the memory of one call; a measurement is split into equal calls.
MAX_SLOTS_PER_CALL = 2048


def measure(
    link: Link,
    snr_db: float,
    num_samples: int,
    *,
    target_bit_errors: int = 1000,
    max_ber_batches: int = 16,
) -> dict[str, float]:
    """Measure one link at one SNR with one user.

    Sends ``num_samples`` (rounded up to equal calls) standard Gaussian feature
    vectors through ``link``; then runs Sionna's ``sim_ber`` on random QPSK
    symbols carried the same way (samples of d/2 symbols, batches of the same
    size), until ``target_bit_errors`` bit errors or ``max_ber_batches``
    batches. Random draws come from ``sionna.phy.config`` (seed it with
    :func:`phy.seeding.set_seed` for reproducibility).

    Input
    -----
    link : Link
    snr_db : float
        Es/N0 per data RE [dB].
    num_samples : int
        Feature vectors to send; also the size of one BER batch (split like the
        features when large).
    target_bit_errors : int
        BER stops early after this many bit errors.
    max_ber_batches : int
        BER stops after this many batches (at least as many as the features used).

    Output
    ------
    : dict
        ``feature_nmse``: sum ||f_hat - f||^2 / sum ||f||^2 over the
        power-normalised features f; ``post_eq_snr_db``: 10 log10 of the power
        of the equalised data symbols' reference over their squared error
        (= ``-10 log10(feature_nmse)``, the measured MER of the feature symbols);
        ``ber_qpsk``: bit error rate of hard QPSK decisions;
        ``feature_nmse_low``, ``feature_nmse_high``, ``ber_qpsk_low``,
        ``ber_qpsk_high``: their 95 % intervals (:mod:`phy.confidence`);
        ``slots``, ``ber_slots``: the independent slots (channel realisations)
        each rests on.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    calls = math.ceil(link.num_slots(num_samples) / MAX_SLOTS_PER_CALL)
    batch = math.ceil(num_samples / calls)
    rdtype = link.resource_grid.rdtype
    packing = link.packing
    err_slots, power_slots = [], []
    for _ in range(calls):
        features = sionna.phy.config.tf_rng.normal([1, batch, link.feature_dim], dtype=rdtype)
        out = link(features, snr_db, measure=True)
        err = tf.reduce_sum(tf.square(out.received - out.sent), axis=-1)[0]
        power = tf.reduce_sum(tf.square(out.sent), axis=-1)[0]
        err_slots.append(packing.slot_sums(err.numpy().astype(np.float64)))
        power_slots.append(packing.slot_sums(power.numpy().astype(np.float64)))
    err_slots, power_slots = np.concatenate(err_slots), np.concatenate(power_slots)
    nmse, nmse_low, nmse_high = ratio_interval(err_slots, power_slots)

    # sim_ber keeps only totals; the slots' error counts are kept here on the way
    # (mc_fun runs eagerly, once per batch that sim_ber counts).
    bit_errors, bits = [], []

    def qpsk_batch(batch_size: tf.Tensor, ebno_db: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # sim_ber names the SNR ebno_db; here it is Es/N0 per RE.
        out = link.transmit_qpsk(1, int(batch_size), ebno_db)
        wrong = tf.reduce_sum(tf.cast(tf.not_equal(out.bits, out.bits_hat), tf.int64), axis=-1)
        bit_errors.append(packing.slot_sums(wrong[0].numpy()))
        bits.append(packing.slot_sums(np.full(int(batch_size), link.feature_dim, np.int64)))
        return out.bits, out.bits_hat

    ber, _ = sim_ber(
        qpsk_batch,
        [snr_db],
        batch_size=batch,
        max_mc_iter=max(calls, max_ber_batches),
        num_target_bit_errors=target_bit_errors,
        early_stop=False,
        verbose=False,
        precision=link.config.precision,
    )
    _, ber_low, ber_high = proportion_interval(np.concatenate(bit_errors), np.concatenate(bits))
    total_err, total_power = float(err_slots.sum()), float(power_slots.sum())
    return {
        "feature_nmse": nmse,
        "post_eq_snr_db": (
            10.0 * math.log10(total_power / total_err) if total_err > 0 else math.inf
        ),
        "ber_qpsk": float(ber[0]),
        "feature_nmse_low": nmse_low,
        "feature_nmse_high": nmse_high,
        "ber_qpsk_low": ber_low,
        "ber_qpsk_high": ber_high,
        "slots": int(err_slots.size),
        "ber_slots": int(sum(b.size for b in bits)),
    }


def measure_link(
    config: LinkConfig,
    snr_db: float,
    num_samples: int = 4096,
    *,
    feature_dim: int = 64,
    direction: Literal["uplink", "downlink"] = "uplink",
) -> dict[str, float]:
    """Build a :class:`Link` for ``config`` and :func:`measure` it at one SNR.

    Input
    -----
    config : LinkConfig
    snr_db : float
    num_samples : int
    feature_dim : int
        d (even).
    direction : "uplink" | "downlink"

    Output
    ------
    : dict, see :func:`measure`
    """
    return measure(Link(config, feature_dim, direction), snr_db, num_samples)


def measure_blocks(
    link: DigitalLink,
    snr_db: float,
    slots_per_batch: int = 64,
    *,
    target_block_errors: int = 200,
    max_batches: int = 16,
) -> dict[str, float]:
    """Block error rate and coded bit error rate of a digital link at one SNR (one user).

    Runs Sionna's ``sim_ber`` on random payload in full slots
    (:meth:`~phy.digital.DigitalLink.transmit_blocks`), ``slots_per_batch``
    slots a batch, until ``target_block_errors`` block errors or
    ``max_batches`` batches. A block is wrong when any of its payload bits is
    (the CRC flags the same blocks but for its rare misses).

    Input
    -----
    link : DigitalLink
    snr_db : float
        Es/N0 per data RE [dB].
    slots_per_batch, target_block_errors, max_batches : int

    Output
    ------
    : dict
        ``bler``, ``ber_coded`` and their 95 % intervals ``bler_low``,
        ``bler_high``, ``ber_coded_low``, ``ber_coded_high`` (Wilson, the slot
        as the independent unit, :mod:`phy.confidence`); ``blocks``: blocks sent.
    """
    block_errors, blocks, bit_errors, bits = [], [], [], []
    per_slot = link.blocks.codewords_per_slot

    def coded_batch(batch_size: tf.Tensor, ebno_db: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # sim_ber names the SNR ebno_db; here it is Es/N0 per RE.
        out = link.transmit_blocks(1, int(batch_size), ebno_db)
        wrong = tf.not_equal(out.bits, out.bits_hat)[0]  # [slots * C, info_bits]
        block_errors.append(
            tf.reduce_any(wrong, axis=-1).numpy().reshape(-1, per_slot).sum(axis=-1)
        )
        blocks.append(np.full(int(batch_size), per_slot))
        bit_errors.append(tf.reduce_sum(tf.cast(wrong, tf.int64), axis=-1).numpy())
        bits.append(np.full(wrong.shape[0], wrong.shape[1]))
        return out.bits, out.bits_hat

    ber, bler = sim_ber(
        coded_batch,
        [snr_db],
        batch_size=slots_per_batch,
        max_mc_iter=max_batches,
        num_target_block_errors=target_block_errors,
        early_stop=False,
        verbose=False,
        precision=link.config.precision,
    )
    # A slot's C blocks share one channel draw: the slot is the independent unit.
    slot_bit_errors = np.concatenate(bit_errors).reshape(-1, per_slot).sum(axis=-1)
    slot_bits = np.concatenate(bits).reshape(-1, per_slot).sum(axis=-1)
    _, bler_low, bler_high = proportion_interval(
        np.concatenate(block_errors), np.concatenate(blocks)
    )
    _, ber_low, ber_high = proportion_interval(slot_bit_errors, slot_bits)
    return {
        "bler": float(bler[0]),
        "ber_coded": float(ber[0]),
        "bler_low": bler_low,
        "bler_high": bler_high,
        "ber_coded_low": ber_low,
        "ber_coded_high": ber_high,
        "blocks": int(sum(b.sum() for b in blocks)),
    }
