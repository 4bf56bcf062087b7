"""One link call inside a compiled loop, as a training pass makes it: the blocks'
fixed tensors as graph constants (``phy.inline``, what the link does) against the
same chain with them captured as inputs of the compiled function (before).

    python benchmarks/link_call.py [--config experiments/configs/paper.toml]
                                   [--calls 200] [--repeats 9]

Per direction of the config's link: the median time of a ``tf.while_loop`` of
``--calls`` calls at the training batch (1 user x batch_size x feature_dim),
less the same loop with no call, per call; the two variants in a new random
order in each repeat; the ratio of the medians, and how many inputs each compiled
function takes. Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import tensorflow as tf

from phy.link import Downlink, Uplink
from semfed.config import load_config


def loop_of(call, calls: int):
    @tf.function
    def run(f):
        def body(i, total):
            return i + 1, total + tf.reduce_sum(call(f + tf.cast(i, f.dtype) * 1e-6))

        start = (tf.constant(0), tf.zeros([], f.dtype))
        _, total = tf.while_loop(lambda i, _: i < calls, body, start)
        return total

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="experiments/configs/paper.toml")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    b, d = config.training.batch_size, config.model.feature_dim
    f = tf.constant(np.random.default_rng(0).normal(size=(1, b, d)).astype(np.float32))
    order = np.random.default_rng(1)
    print(
        f"{config.link.channel}, CSI {config.link.csi}, {b} samples of d = {d}, "
        f"XLA {config.link.jit_compile}; ms per call, median of {args.repeats}"
    )
    for cls in (Uplink, Downlink):
        link = cls(config.link, d)
        no = link.noise_variance(None, 1)
        captured = tf.function(link._features_graph, jit_compile=config.link.jit_compile)
        variants = {
            "constants": lambda x, link=link, no=no: link._features_fn(x, no)[0],
            "captured inputs": lambda x, fn=captured, no=no: fn(x, no)[0],
            "no call": lambda x: x,
        }
        inputs = {
            "constants": len(link._features_fn.get_concrete_function(f, no).captured_inputs),
            "captured inputs": len(captured.get_concrete_function(f, no).captured_inputs),
        }
        loops = {name: loop_of(call, args.calls) for name, call in variants.items()}
        for run in loops.values():
            run(f).numpy()
        times: dict[str, list[float]] = {name: [] for name in loops}
        for _ in range(args.repeats):
            names = list(loops)
            order.shuffle(names)
            for name in names:
                start = time.perf_counter()
                loops[name](f).numpy()
                times[name].append((time.perf_counter() - start) / args.calls * 1e3)
        base = float(np.median(times["no call"]))
        per_call = {name: float(np.median(times[name])) - base for name in inputs}
        print(f"{link.direction}:")
        for name, value in per_call.items():
            print(f"  {name:<16} {value:6.3f} ms a call, {inputs[name]:2d} captured input(s)")
        ratio = per_call["constants"] / per_call["captured inputs"]
        print(f"  constants / captured inputs: {ratio:.3f}")


if __name__ == "__main__":
    main()
