"""Adam's update of each network of the federation: Keras's kernels against FusedAdam.

    python benchmarks/optimizer_update.py [--width 64] [--repeats 7] [--calls 50]

For every encoder variant (semfed/models.py, CIFAR-10 input) and the decoder:
the median time of one compiled ``apply_gradients`` with Keras's Adam and with
:class:`semfed.optimizers.FusedAdam`, and their ratio, measured in turn in this
one run. Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
import tensorflow as tf

from semfed.models import build_decoder, build_encoder, encoder_family
from semfed.optimizers import make_optimizer


def update_fn(model: keras.Model, fused: bool):
    opt = make_optimizer("adam", 1e-3, fused)
    opt.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    grads = [
        tf.constant(rng.normal(size=v.shape).astype(np.float32) * 1e-3)
        for v in model.trainable_variables
    ]

    @tf.function
    def update():
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return opt.iterations

    return update


def median_ms(fn, repeats: int, calls: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            out = fn()
        out.numpy()
        times.append((time.perf_counter() - start) / calls)
    return float(np.median(times)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    models = [
        build_encoder(spec, (32, 32, 3), 64, spec.name) for spec in encoder_family(args.width)
    ]
    models.append(build_decoder(64, (256,), 10))
    print(f"Adam update, median ms of {args.repeats} x {args.calls} calls")
    print("network   weights   Keras  fused  fused/Keras")
    totals = np.zeros(2)
    for model in models:
        fns = [update_fn(model, False), update_fn(model, True)]
        times = np.zeros((args.repeats, 2))
        for r in range(args.repeats):  # interleaved, so a slow spell hits both
            for i, fn in enumerate(fns):
                times[r, i] = median_ms(fn, 1, args.calls)
        ms = np.median(times, axis=0)
        totals += ms
        n = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
        print(f"{model.name:8s} {n:8d} {ms[0]:7.2f} {ms[1]:6.2f} {ms[1] / ms[0]:8.3f}", flush=True)
    print(f"sum               {totals[0]:7.2f} {totals[1]:6.2f} {totals[1] / totals[0]:8.3f}")


if __name__ == "__main__":
    main()
