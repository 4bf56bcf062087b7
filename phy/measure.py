"""Link-level figures of merit at one SNR: feature NMSE, post-equalisation SNR, QPSK BER."""

from __future__ import annotations

import math
from typing import Literal

import sionna.phy
import tensorflow as tf
from sionna.phy.utils import sim_ber

from phy.config import LinkConfig
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
        ``ber_qpsk``: bit error rate of hard QPSK decisions.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    calls = math.ceil(link.num_slots(num_samples) / MAX_SLOTS_PER_CALL)
    batch = math.ceil(num_samples / calls)
    rdtype = link.resource_grid.rdtype
    err = power = 0.0
    for _ in range(calls):
        features = sionna.phy.config.tf_rng.normal([1, batch, link.feature_dim], dtype=rdtype)
        out = link(features, snr_db, measure=True)
        err += float(tf.reduce_sum(tf.square(out.received - out.sent)))
        power += float(tf.reduce_sum(tf.square(out.sent)))

    def qpsk_batch(batch_size: tf.Tensor, ebno_db: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # sim_ber names the SNR ebno_db; here it is Es/N0 per RE.
        out = link.transmit_qpsk(1, int(batch_size), ebno_db)
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
    return {
        "feature_nmse": err / power,
        "post_eq_snr_db": 10.0 * math.log10(power / err) if err > 0 else math.inf,
        "ber_qpsk": float(ber[0]),
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
    : dict with ``feature_nmse``, ``post_eq_snr_db``, ``ber_qpsk`` (floats)
    """
    return measure(Link(config, feature_dim, direction), snr_db, num_samples)
