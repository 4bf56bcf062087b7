"""Kernel gradient of each encoder convolution: TensorFlow's kernel against the matrix product.

    python benchmarks/weight_gradient.py [--width 64] [--batch 32] [--repeats 7]
                                         [--thresholds 0,16,64,256]

1. For every distinct stride-2 convolution of the encoder family (semfed/models.py)
   at CIFAR-10's 32 x 32 input: the median time of the kernel gradient by
   ``tf.nn.conv2d_backprop_filter`` (oneDNN on a CPU) and by
   ``semfed.convolution.strided_weight_gradient``, in float32 and bfloat16, their
   ratio, and whether ``training.weight_gradient = "auto"`` takes the matrix
   product there.
2. For each encoder variant: one Adam training step (forward, backward, update)
   in float32, and in bfloat16 with the matrix product used up to each of
   ``--thresholds`` output positions (0: never, i.e. ``"native"``), as ratios to
   float32, and the sum over the five variants.

All ratios are measured in this one run. Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
import tensorflow as tf

from semfed import convolution
from semfed.convolution import matmul_weight_gradient_applies, strided_weight_gradient
from semfed.models import build_encoder, encoder_family


def layer_shapes(width: int) -> list[tuple[int, int, int, int]]:
    """Distinct (input size, C_in, C_out, kernel) of the family's convolutions."""
    shapes = []
    for spec in encoder_family(width):
        size, ci = 32, 3
        for co in spec.filters:
            if (size, ci, co, spec.kernel_size) not in shapes:
                shapes.append((size, ci, co, spec.kernel_size))
            size, ci = -(-size // 2), co
    return shapes


def median_ms(fn, args, repeats: int, calls: int = 20) -> float:
    for _ in range(3):
        fn(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            out = fn(*args)
        out.numpy()
        times.append((time.perf_counter() - start) / calls)
    return float(np.median(times)) * 1e3


def encoder_step(spec, policy: str, threshold: int, batch: int):
    """A compiled Adam step of one encoder, traced with ``threshold`` in force."""
    convolution.MAX_OUTPUT_POSITIONS = threshold
    keras.utils.set_random_seed(0)
    encoder = build_encoder(spec, (32, 32, 3), 64, "encoder", policy=policy)
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(encoder.trainable_variables)
    x = tf.random.uniform([batch, 32, 32, 3], -1.0, 1.0, seed=1)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(tf.cast(encoder(x, training=True), tf.float32)))
        grads = tape.gradient(loss, encoder.trainable_variables)
        optimizer.apply_gradients(zip(grads, encoder.trainable_variables, strict=True))
        return loss

    step(x)
    return step, x


def compare_steps(width: int, batch: int, repeats: int, thresholds: list[int]) -> None:
    default = convolution.MAX_OUTPUT_POSITIONS
    variants = [("float32", default)] + [("mixed_bfloat16", t) for t in thresholds]
    names = ["float32"] + [f"bf16<={t}" for t in thresholds]
    print(f"\nencoder training step, median ms (ratio to float32); default rule <= {default}")
    print("variant   " + "".join(f"{n:>18s}" for n in names))
    totals = np.zeros(len(variants))
    for spec in encoder_family(width):
        steps = [encoder_step(spec, p, t, batch) for p, t in variants]
        times = np.zeros((repeats, len(steps)))
        for r in range(repeats):  # interleaved, so a slow spell hits every variant
            for i, (fn, x) in enumerate(steps):
                times[r, i] = median_ms(fn, (x,), 1)
        ms = np.median(times, axis=0)
        totals += ms
        print(f"{spec.name:8s}  " + "".join(f"{m:9.2f} ({m / ms[0]:.3f})" for m in ms), flush=True)
    print("sum       " + "".join(f"{m:9.1f} ({m / totals[0]:.3f})" for m in totals))
    convolution.MAX_OUTPUT_POSITIONS = default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--thresholds", default="0,16,64,256")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"batch {args.batch}, encoder width {args.width}; median ms of {args.repeats} x 20 calls")
    print("input    C_in -> C_out  k  dtype     TF kernel  matmul  matmul/TF  auto uses matmul")
    for size, ci, co, k in layer_shapes(args.width):
        out = -(-size // 2)
        for dtype in (tf.float32, tf.bfloat16):
            x = tf.cast(rng.normal(size=(args.batch, size, size, ci)), dtype)
            dy = tf.cast(rng.normal(size=(args.batch, out, out, co)), dtype)
            native = tf.function(
                lambda x, dy, k=k, ci=ci, co=co: tf.compat.v1.nn.conv2d_backprop_filter(
                    x, [k, k, ci, co], dy, [1, 2, 2, 1], "SAME"
                )
            )
            matmul = tf.function(lambda x, dy, k=k: strided_weight_gradient(x, dy, k))
            t_native = median_ms(native, (x, dy), args.repeats)
            t_matmul = median_ms(matmul, (x, dy), args.repeats)
            used = matmul_weight_gradient_applies(out * out, dtype.name)
            print(
                f"{size:2d}x{size:<2d}  {ci:5d} -> {co:<5d} {k}  {dtype.name:8s}  "
                f"{t_native:8.2f}  {t_matmul:6.2f}  {t_matmul / t_native:9.2f}  {used}",
                flush=True,
            )
    thresholds = [int(t) for t in args.thresholds.split(",")]
    compare_steps(args.width, args.batch, args.repeats, thresholds)


if __name__ == "__main__":
    main()
