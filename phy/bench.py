"""Throughput of the uplink at a training batch, against one encoder training pass.

Run ``python -m phy.bench`` (``--help`` for options). For each channel (LS CSI,
frequency domain, plus TDL-A in the time domain) it sends U x B feature vectors
of d values (default 20 users x 512 samples x d = 64, i.e. 32 complex symbols
each) through a compiled :class:`~phy.link.Link` and prints complex symbols
per second and the time of one call. The reference is one training step
(forward, backward, Adam) of a DCGAN-like encoder on the same U x B 32x32x3
images, measured in the same run; the ratio link / encoder is what the link
adds to a training step. Then the uplink's time against the number of BS
antennas N_r (``--antennas``, default 1, 2, 4, 8; ``--antenna-channel``,
default TDL-A), with the ratio to N_r = 1, for the configured equalizer combining
the antennas and for maximum-ratio combining. This is a benchmark, not a test.

A cell drop follows (``--topology``, default UMi, UMa and RMa): the time of one
:func:`phy.topology.cell_drop` of the U users (Sionna's sector drop, LoS and
indoor states, path loss and shadow fading, the link budgets), which a run
with ``link.topology`` pays once, before its first round.

The digital scheme (:mod:`phy.digital`) follows on TDL-A with LS CSI for three
MCS (bits per feature, QAM, code rate): its channel uses per second, the time
of one call, and the LDPC decoder's share of the call, from the same call
with one belief-propagation iteration instead of 20 (timed in turn).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from phy.config import LinkConfig
from phy.digital import DigitalLink
from phy.link import Link
from phy.seeding import set_seed
from phy.topology import cell_drop

CHANNELS = ("awgn", "rayleigh", "tdl-a", "cdl-a")
# (quant_bits, modulation, code_rate) of the digital cases: the study's robust and
# fast MCS (experiments/studies/digital.toml) and the default.
DIGITAL_MCS = ((1, "16qam", 0.5), (2, "64qam", 0.6667), (4, "16qam", 0.5))


def dcgan_encoder(feature_dim: int) -> keras.Model:
    """4x4 stride-2 convolutions 64 -> 128 -> 256, LeakyReLU(0.2) + BatchNorm, dense to d.

    Input: [N, 32, 32, 3] float32. Output: [N, feature_dim] float32.
    """
    layers = [keras.Input((32, 32, 3))]
    for i, width in enumerate((64, 128, 256)):
        layers.append(keras.layers.Conv2D(width, 4, strides=2, padding="same", use_bias=i == 0))
        if i > 0:
            layers.append(keras.layers.BatchNormalization())
        layers.append(keras.layers.LeakyReLU(negative_slope=0.2))
    layers += [keras.layers.Flatten(), keras.layers.Dense(feature_dim)]
    return keras.Sequential(layers)


def encoder_step(num_images: int, feature_dim: int) -> Callable[[], None]:
    """One compiled training step (forward, backward, Adam) on fixed random images."""
    encoder = dcgan_encoder(feature_dim)
    optimizer = keras.optimizers.Adam(1e-3)
    images = tf.random.uniform([num_images, 32, 32, 3])
    target = tf.random.normal([num_images, feature_dim])

    @tf.function
    def step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(encoder(images, training=True) - target))
        grads = tape.gradient(loss, encoder.trainable_variables)
        optimizer.apply_gradients(zip(grads, encoder.trainable_variables, strict=True))
        return loss

    return lambda: step().numpy()


def link_step(
    config: LinkConfig, users: int, samples: int, feature_dim: int, jit_compile: bool
) -> Callable[[], None]:
    """One uplink call (its own tf.function, traced by the warm-up call)."""
    link = Link(config, feature_dim, jit_compile=jit_compile)
    features = tf.random.normal([users, samples, feature_dim])
    snr = tf.fill([users], 10.0)
    return lambda: link(features, snr).numpy()


def digital_step(
    config: LinkConfig, users: int, samples: int, feature_dim: int, jit_compile: bool
) -> tuple[Callable[[], None], int]:
    """One digital uplink call (its own tf.function) and the call's channel uses."""
    link = DigitalLink(config, feature_dim, jit_compile=jit_compile)
    features = tf.random.normal([users, samples, feature_dim])
    snr = tf.fill([users], 10.0)
    return lambda: link(features, snr).numpy(), users * link.channel_uses(samples)


def interleaved_seconds(
    first: Callable[[], None], second: Callable[[], None], repeats: int
) -> tuple[float, float]:
    """Median wall times of two functions called in turn (after one warm-up call
    each), so that drift in the machine's load hits both alike."""
    first(), second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in zip((first, second), times, strict=True):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return float(np.median(times[0])), float(np.median(times[1]))


def seconds_per_call(fn: Callable[[], None], repeats: int) -> float:
    """Median wall time of ``fn`` after one warm-up call (which traces it)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phy.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--samples", type=int, default=512, help="samples per user")
    parser.add_argument("--feature-dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="timed link calls per case")
    parser.add_argument("--encoder-repeats", type=int, default=2, help="timed encoder steps")
    parser.add_argument("--csi", default="ls", choices=("perfect", "ls"))
    parser.add_argument("--no-xla", action="store_true", help="skip the XLA-compiled links")
    parser.add_argument(
        "--schemes",
        default="analog,digital",
        help="comma list of the parts to run: analog, digital (default both)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--channels",
        default=",".join(CHANNELS),
        help="comma list of channels of the single-antenna cases (empty: none; TDL-A adds "
        "its time-domain case)",
    )
    parser.add_argument(
        "--antennas", default="1,2,4,8", help="comma list of N_r (empty: no antenna cases)"
    )
    parser.add_argument("--antenna-channel", default="tdl-a", help="channel of the antenna cases")
    parser.add_argument(
        "--topology",
        default="umi,uma,rma",
        help="comma list of the cell drops to time (empty: none)",
    )
    args = parser.parse_args(argv)
    set_seed(args.seed)
    tf.random.set_seed(args.seed)

    symbols = args.users * args.samples * args.feature_dim // 2
    encoder_s = seconds_per_call(
        encoder_step(args.users * args.samples, args.feature_dim), args.encoder_repeats
    )
    print(
        f"uplink: {args.users} users x {args.samples} samples x {args.feature_dim // 2} "
        f"symbols = {symbols} symbols per call, CSI {args.csi}"
    )
    print(f"encoder training pass ({args.users * args.samples} images): {encoder_s * 1e3:.0f} ms")
    modes = (False,) if args.no_xla else (False, True)
    schemes = {part.strip() for part in args.schemes.split(",")}
    channels = [c for c in args.channels.split(",") if c] if "analog" in schemes else []
    cases = [(name, "frequency") for name in channels]
    cases += [("tdl-a", "time")] if "tdl-a" in channels else []
    if cases:
        print(
            f"{'channel':<9} {'domain':<10} {'compile':<8} {'ms/call':>8} {'Msym/s':>7} "
            f"{'link/encoder':>13}"
        )
    for name, domain in cases:
        config = LinkConfig(channel=name, csi=args.csi, domain=domain)
        for jit in modes:
            link_s = seconds_per_call(
                link_step(config, args.users, args.samples, args.feature_dim, jit), args.repeats
            )
            print(
                f"{name:<9} {domain:<10} {'xla' if jit else 'graph':<8} {link_s * 1e3:8.1f} "
                f"{symbols / link_s / 1e6:7.2f} {link_s / encoder_s:13.4f}",
                flush=True,
            )
    antennas = [int(n) for n in args.antennas.split(",") if n] if "analog" in schemes else []
    if antennas:
        print(f"uplink vs BS antennas N_r ({args.antenna_channel}, CSI {args.csi}):")
        print(f"{'N_r':>4} {'combining':<10} {'compile':<8} {'ms/call':>8} {'x N_r=1':>8}")
    for combining in ("equalizer", "mrc") if antennas else ():
        for jit in modes:
            first = None
            for n in antennas:
                config = LinkConfig(
                    channel=args.antenna_channel, csi=args.csi, bs_antennas=n, combining=combining
                )
                link_s = seconds_per_call(
                    link_step(config, args.users, args.samples, args.feature_dim, jit),
                    args.repeats,
                )
                first = first or link_s
                print(
                    f"{n:>4} {combining:<10} {'xla' if jit else 'graph':<8} {link_s * 1e3:8.1f} "
                    f"{link_s / first:8.2f}",
                    flush=True,
                )
    scenarios = [t for t in args.topology.split(",") if t]
    if scenarios:
        print(f"cell drop of {args.users} users (once per run, before round 1):")
        print(f"{'scenario':<9} {'ms/drop':>8} {'median uplink SNR dB':>21}")
    for scenario in scenarios:
        config = LinkConfig(topology=scenario)
        drop_s = seconds_per_call(
            lambda c=config: cell_drop(c, args.users, args.seed), args.repeats
        )
        median = float(np.median(cell_drop(config, args.users, args.seed).uplink_snr_db))
        print(f"{scenario:<9} {drop_s * 1e3:8.1f} {median:21.1f}", flush=True)
    if "digital" in schemes:
        print(
            f"\ndigital uplink, tdl-a, CSI {args.csi}: bits/feature, QAM, code rate; the "
            "LDPC decoder's share of a call from the same call with 1 BP iteration instead of 20"
        )
        print(
            f"{'MCS':<18} {'compile':<8} {'ms/call':>8} {'Msym/s':>7} {'link/encoder':>13} "
            f"{'1 iter ms':>9} {'decoder share':>13}"
        )
    for bits, modulation, rate in DIGITAL_MCS if "digital" in schemes else ():
        config = LinkConfig(
            channel="tdl-a",
            csi=args.csi,
            scheme="digital",
            quant_bits=bits,
            modulation=modulation,
            code_rate=rate,
        )
        one_iteration = dataclasses.replace(config, ldpc_iterations=1)
        for jit in modes:
            call, uses = digital_step(config, args.users, args.samples, args.feature_dim, jit)
            call_1, _ = digital_step(one_iteration, args.users, args.samples, args.feature_dim, jit)
            link_s, link_1_s = interleaved_seconds(call, call_1, args.repeats)
            # 19 of the 20 iterations are the difference; the decoder is 20 of them.
            decoder_s = max(0.0, link_s - link_1_s) * 20 / 19
            print(
                f"{f'{bits} bit {modulation} {rate:.3g}':<18} {'xla' if jit else 'graph':<8} "
                f"{link_s * 1e3:8.1f} {uses / link_s / 1e6:7.2f} {link_s / encoder_s:13.4f} "
                f"{link_1_s * 1e3:9.1f} {decoder_s / link_s:13.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
