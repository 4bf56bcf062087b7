"""Each encoder convolution in bfloat16: TensorFlow's kernels against the matrix products.

    python benchmarks/weight_gradient.py [--width 64] [--batch 32] [--repeats 7]
                                         [--rules 0/0,64/4,64/16,64/4,64/16]

1. For every distinct stride-2 convolution of the encoder family (semfed/models.py)
   at CIFAR-10's 32 x 32 input, in float32 and bfloat16: the median time of
   (a) the kernel gradient by ``tf.nn.conv2d_backprop_filter`` (oneDNN on a CPU)
   and by ``semfed.convolution.strided_weight_gradient``, and (b) the whole
   layer (forward, input and kernel gradients) by TensorFlow's kernels and by
   ``semfed.convolution.strided_convolution``; their ratios, and which path
   ``training.weight_gradient = "auto"`` takes there.
2. For each encoder variant: one Adam training step (forward, backward, update)
   in float32, and in bfloat16 under each rule ``W/C`` of ``--rules``: the
   kernel gradient as a matrix product up to W output positions, the whole
   convolution up to C (0: never; ``0/0`` is ``"native"``). Ratios to float32,
   and the sum over the five variants. The steps run in a random order in each
   repeat (in a fixed order the later ones ran up to 15 % slower); a rule listed
   twice is a control for what is left of that noise.

All ratios are measured in this one run. Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
import tensorflow as tf

from semfed import convolution
from semfed.convolution import (
    matmul_convolution_applies,
    matmul_weight_gradient_applies,
    strided_convolution,
    strided_weight_gradient,
)
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
        tf.nest.flatten(out)[0].numpy()
        times.append((time.perf_counter() - start) / calls)
    return float(np.median(times)) * 1e3


def whole_layer(conv):
    """A compiled forward pass with both gradients of ``conv(x, kernel)``."""

    @tf.function
    def step(x, kernel, dy):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = conv(x, kernel)
        return (y, *tape.gradient(y, [x, kernel], output_gradients=dy))

    return step


def compare_layers(width: int, batch: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    print(f"batch {batch}, encoder width {width}; median ms of {repeats} x 20 calls")
    print(
        "input    C_in -> C_out  k  dtype     kernel gradient: TF  matmul  ratio"
        "   whole layer: TF  matmul  ratio   auto uses"
    )
    for size, ci, co, k in layer_shapes(width):
        out = -(-size // 2)
        for dtype in (tf.float32, tf.bfloat16):
            x = tf.cast(rng.normal(size=(batch, size, size, ci)), dtype)
            dy = tf.cast(rng.normal(size=(batch, out, out, co)), dtype)
            kernel = tf.cast(rng.normal(size=(k, k, ci, co)) * 0.05, dtype)
            native = tf.function(
                lambda x, dy, k=k, ci=ci, co=co: tf.compat.v1.nn.conv2d_backprop_filter(
                    x, [k, k, ci, co], dy, [1, 2, 2, 1], "SAME"
                )
            )
            matmul = tf.function(lambda x, dy, k=k: strided_weight_gradient(x, dy, k))
            t_native = median_ms(native, (x, dy), repeats)
            t_matmul = median_ms(matmul, (x, dy), repeats)
            tf_layer = whole_layer(lambda x, kernel: tf.nn.conv2d(x, kernel, 2, "SAME"))
            mm_layer = whole_layer(strided_convolution)
            l_native = median_ms(tf_layer, (x, kernel, dy), repeats)
            l_matmul = median_ms(mm_layer, (x, kernel, dy), repeats)
            if matmul_convolution_applies(out * out, k, dtype.name):
                used = "whole layer"
            elif matmul_weight_gradient_applies(out * out, dtype.name):
                used = "kernel gradient"
            else:
                used = "TF"
            print(
                f"{size:2d}x{size:<2d}  {ci:5d} -> {co:<5d} {k}  {dtype.name:8s}  "
                f"{t_native:20.2f}  {t_matmul:6.2f}  {t_matmul / t_native:5.2f}"
                f"  {l_native:16.2f}  {l_matmul:6.2f}  {l_matmul / l_native:5.2f}   {used}",
                flush=True,
            )


def encoder_step(spec, policy: str, rule: tuple[int, int], batch: int):
    """A compiled Adam step of one encoder, traced with ``rule`` (kernel-gradient and
    whole-convolution thresholds) in force."""
    convolution.MAX_OUTPUT_POSITIONS, convolution.MAX_MATMUL_CONVOLUTION_POSITIONS = rule
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


def compare_steps(width: int, batch: int, repeats: int, rules: list[tuple[int, int]]) -> None:
    override = convolution.MAX_MATMUL_CONVOLUTION_POSITIONS
    default = (convolution.MAX_OUTPUT_POSITIONS, convolution.matmul_convolution_positions())
    variants = [("float32", default)] + [("mixed_bfloat16", r) for r in rules]
    names = ["float32"] + [f"bf16 {w}/{c}" for w, c in rules]
    print(
        f"\nencoder training step, median ms (ratio to float32); rule W/C: kernel gradient"
        f" as a matrix product up to W output positions, whole convolution up to C;"
        f" default {default[0]}/{default[1]}"
    )
    print("variant   " + "".join(f"{n:>17s}" for n in names))
    totals = np.zeros(len(variants))
    order = np.random.default_rng(0)
    for spec in encoder_family(width):
        steps = [encoder_step(spec, p, r, batch) for p, r in variants]
        times = np.zeros((repeats, len(steps)))
        for r in range(repeats):  # in a new random order each time
            for i in order.permutation(len(steps)):
                fn, x = steps[i]
                times[r, i] = median_ms(fn, (x,), 1)
        ms = np.median(times, axis=0)
        totals += ms
        print(f"{spec.name:8s}  " + "".join(f"{m:9.2f} ({m / ms[0]:.3f})" for m in ms), flush=True)
    print("sum       " + "".join(f"{m:9.1f} ({m / totals[0]:.3f})" for m in totals))
    convolution.MAX_OUTPUT_POSITIONS = default[0]
    convolution.MAX_MATMUL_CONVOLUTION_POSITIONS = override


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rules", default="0/0,64/4,64/16,64/4,64/16")
    parser.add_argument("--steps-only", action="store_true", help="skip the layer table")
    args = parser.parse_args()
    rules = []
    for text in args.rules.split(","):
        w, _, c = text.partition("/")
        rules.append((int(w), int(c or 0)))
    if not args.steps_only:
        compare_layers(args.width, args.batch, args.repeats)
    compare_steps(args.width, args.batch, args.repeats, rules)


if __name__ == "__main__":
    main()
