"""What the compiled link costs alone, and between an encoder's kernels as in a round.

    python benchmarks/link_among_kernels.py [--config experiments/configs/paper.toml]
                                            [--precision float32] [--batches 100]
                                            [--repeats 7] [--jit-compile true|false]

Four compiled loops of ``--batches`` mini-batches (1 user x batch_size x
feature_dim, the config's link with its ``jit_compile``):

* ``no call``: the loop alone;
* ``link``: an uplink call and a downlink call (``send_gradients``) per mini-batch;
* ``encoder``: the first encoder variant's forward and backward pass per
  mini-batch (training mode, the config's width and precision), the features'
  own values as the output gradient;
* ``encoder + link``: the same, with the features sent up and the result sent
  down before the backward pass, as a FedCL step does.

The link's cost per mini-batch alone is ``link - no call``; among the kernels it
is ``encoder + link - encoder``. The four loops run in a new random order in each
repeat; medians. On the machines measured so far the second is about twice the
first (docs/performance.md, "Why the link costs more in a round than alone"):
the difference between a bench's measured and attributed link shares. Figures
only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import keras
import numpy as np
import tensorflow as tf

from phy.link import Downlink, Uplink
from semfed.config import load_config
from semfed.models import build_encoder, dtype_policy, encoder_family


def loop_of(body, batches: int):
    """A compiled loop of ``batches`` calls of ``body(i)`` (a scalar out each)."""

    @tf.function
    def run():
        def step(i, total):
            return i + 1, total + body(i)

        _, total = tf.while_loop(
            lambda i, _: i < batches, step, (tf.constant(0), tf.zeros([])), parallel_iterations=1
        )
        return total

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="experiments/configs/paper.toml")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--jit-compile",
        choices=("true", "false"),
        help="compile the link with XLA or not (default: the config's link.jit_compile)",
    )
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.jit_compile is not None:
        link_config = replace(config.link, jit_compile=args.jit_compile == "true")
        config = replace(config, link=link_config)
    b, d = config.training.batch_size, config.model.feature_dim
    uplink, downlink = Uplink(config.link, d), Downlink(config.link, d)
    snr = tf.constant(10.0)
    spec = encoder_family(config.model.encoder_width)[0]
    keras.utils.set_random_seed(0)
    encoder = build_encoder(spec, (32, 32, 3), d, "encoder", policy=dtype_policy(args.precision))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (b, 32, 32, 3)).astype(np.float32))
    f = tf.constant(rng.normal(size=(1, b, d)).astype(np.float32))

    def link(features):
        received = uplink(features, snr)
        return downlink.send_gradients(received, snr)

    def encoder_pass(i, with_link: bool):
        with tf.GradientTape() as tape:
            features = encoder(x + tf.cast(i, tf.float32) * 1e-6, training=True)
        out = tf.stop_gradient(features)
        if with_link:
            out = link(out[None])[0]
        grads = tape.gradient(features, encoder.trainable_variables, output_gradients=out)
        return tf.add_n([tf.reduce_sum(tf.cast(g, tf.float32)) for g in grads])

    bodies = {
        "no call": lambda i: tf.reduce_sum(f + tf.cast(i, tf.float32) * 1e-6),
        "link": lambda i: tf.reduce_sum(link(f + tf.cast(i, tf.float32) * 1e-6)),
        "encoder": lambda i: encoder_pass(i, False),
        "encoder + link": lambda i: encoder_pass(i, True),
    }
    loops = {name: loop_of(body, args.batches) for name, body in bodies.items()}
    for run in loops.values():
        run().numpy()
    times: dict[str, list[float]] = {name: [] for name in loops}
    order = np.random.default_rng(1)
    for _ in range(args.repeats):
        names = list(loops)
        order.shuffle(names)
        for name in names:
            start = time.perf_counter()
            loops[name]().numpy()
            times[name].append((time.perf_counter() - start) / args.batches * 1e3)
    ms = {name: float(np.median(t)) for name, t in times.items()}
    alone = ms["link"] - ms["no call"]
    among = ms["encoder + link"] - ms["encoder"]
    print(
        f"{config.link.channel}, CSI {config.link.csi}, {b} samples of d = {d}, link XLA "
        f"{config.link.jit_compile}; encoder {spec.name} width {config.model.encoder_width}, "
        f"{args.precision}; ms per mini-batch (one uplink and one downlink call), "
        f"median of {args.repeats}"
    )
    for name, value in ms.items():
        print(f"  {name:<16} {value:7.3f} ms")
    print(f"  link alone                 {alone:6.3f} ms")
    print(f"  link among the kernels     {among:6.3f} ms ({among / alone:.2f} x alone)")
    print(f"  link's share of encoder + link: {among / ms['encoder + link']:.3f}")


if __name__ == "__main__":
    main()
