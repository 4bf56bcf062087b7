"""Each encoder convolution in bfloat16: TensorFlow's kernels against the matrix products.

    python benchmarks/weight_gradient.py [--width 64] [--batch 32] [--repeats 7]
                                         [--rules 0/0,64/4,64/16,64/4,64/16]
    python benchmarks/weight_gradient.py --steps-only --rules 64/4,64/4:cells,64/4,64/4:cells

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
   convolution up to C (0: never; ``0/0`` is ``"native"``). ``W/C:cells``: the
   same, with the products' columns cut as the code before 29 Nov cut them
   (slices of a space-to-depth grid of 2 x 2 cells, concatenated, the product
   rearranged into the kernel; :func:`cells_weight_gradient`) instead of
   gathered. Ratios to float32, and the sum over the five variants. The steps run
   in a random order in each repeat (in a fixed order the later ones ran up to
   15 % slower); a rule listed twice is a control for what is left of that noise.

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


def _cells(x: tf.Tensor, k: int) -> tuple[tf.Tensor, tuple[int, int, int, int]]:
    """The SAME-padded input as a stride-1 grid of 2 x 2 cells (space-to-depth), and
    (oh, ow, top, left): the output's size and the padding in front, the earlier way
    of cutting the columns."""
    _, h, w, _ = x.shape
    oh, ow, taps = -(-h // 2), -(-w // 2), (k + 1) // 2
    top, left = convolution._same_padding(h, oh, k), convolution._same_padding(w, ow, k)
    hp, wp = 2 * (oh - 1 + taps), 2 * (ow - 1 + taps)
    padded = tf.pad(x, [[0, 0], [top, hp - h - top], [left, wp - w - left], [0, 0]])
    return tf.nn.space_to_depth(padded, 2), (oh, ow, top, left)


def _cell_columns(x: tf.Tensor, k: int) -> tf.Tensor:
    """Columns ordered (tap row a, tap column c, di, dj, channel) for kernel tap
    (2a + di, 2c + dj), zero taps included for an odd k: slices, concatenated."""
    cells, (oh, ow, _, _) = _cells(x, k)
    taps = (k + 1) // 2
    cols = tf.concat(
        [cells[:, a : a + oh, c : c + ow, :] for a in range(taps) for c in range(taps)], -1
    )
    return tf.reshape(cols, [-1, cols.shape[-1]])


def _cell_kernel(kernel: tf.Tensor) -> tf.Tensor:
    """Kernel [k, k, C_in, C_out] -> rows in :func:`_cell_columns`' order."""
    k, _, ci, co = kernel.shape
    taps = (k + 1) // 2
    w = tf.pad(kernel, [[0, 2 * taps - k], [0, 2 * taps - k], [0, 0], [0, 0]])
    w = tf.transpose(tf.reshape(w, [taps, 2, taps, 2, ci, co]), [0, 2, 1, 3, 4, 5])
    return tf.reshape(w, [-1, co])


def _cell_kernel_gradient(cols: tf.Tensor, dy: tf.Tensor, k: int) -> tf.Tensor:
    """columns^T dy from the cells' columns, rearranged into the kernel [k, k, C_in, C_out]."""
    co, taps = dy.shape[-1], (k + 1) // 2
    g = tf.matmul(cols, tf.reshape(dy, [-1, co]), transpose_a=True)
    ci = g.shape[0] // (4 * taps * taps)
    g = tf.transpose(tf.reshape(g, [taps, taps, 2, 2, ci, co]), [0, 2, 1, 3, 4, 5])
    return tf.reshape(g, [2 * taps, 2 * taps, ci, co])[:k, :k]


def cells_weight_gradient(x: tf.Tensor, dy: tf.Tensor, k: int) -> tf.Tensor:
    """The kernel gradient from the cells' columns, rearranged into the kernel after
    the product (what ``strided_weight_gradient`` did before 29 Nov)."""
    return _cell_kernel_gradient(_cell_columns(x, k), dy, k)


def cells_convolution(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """The whole convolution as the product of the cells' columns and the rearranged
    kernel, with the gradients the code before 29 Nov wrote out: the kernel's from
    the same columns, the input's as the columns' gradient padded back onto the
    cells, summed, and un-padded."""
    k, _, ci, co = kernel.shape
    _, h, w, _ = x.shape
    taps = (k + 1) // 2
    _, (oh, ow, top, left) = _cells(x, k)

    @tf.custom_gradient
    def conv(x, kernel):
        cols, rows = _cell_columns(x, k), _cell_kernel(kernel)
        y = tf.reshape(tf.matmul(cols, rows), [-1, oh, ow, co])

        def grad(dy):
            dk = _cell_kernel_gradient(cols, dy, k)
            dcols = tf.reshape(
                tf.matmul(tf.reshape(dy, [-1, co]), rows, transpose_b=True),
                [-1, oh, ow, taps * taps, 4 * ci],
            )
            dcells = tf.add_n(
                [
                    tf.pad(
                        dcols[:, :, :, a * taps + c, :],
                        [[0, 0], [a, taps - 1 - a], [c, taps - 1 - c], [0, 0]],
                    )
                    for a in range(taps)
                    for c in range(taps)
                ]
            )
            dx = tf.nn.depth_to_space(dcells, 2)[:, top : top + h, left : left + w, :]
            return dx, dk

        return y, grad

    return conv(x, kernel)


def encoder_step(spec, policy: str, rule: tuple[int, int], batch: int, cells: bool = False):
    """A compiled Adam step of one encoder, traced with ``rule`` (kernel-gradient and
    whole-convolution thresholds) in force, and with the products' columns cut from
    2 x 2 cells if ``cells``."""
    convolution.MAX_OUTPUT_POSITIONS, convolution.MAX_MATMUL_CONVOLUTION_POSITIONS = rule
    gathered = convolution.strided_weight_gradient, convolution.strided_convolution
    if cells:
        convolution.strided_weight_gradient = cells_weight_gradient
        convolution.strided_convolution = cells_convolution
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

    step(x)  # traced now, with the columns chosen above
    convolution.strided_weight_gradient, convolution.strided_convolution = gathered
    return step, x


def compare_steps(width: int, batch: int, repeats: int, rules: list[tuple[int, int, bool]]) -> None:
    override = convolution.MAX_MATMUL_CONVOLUTION_POSITIONS
    default = (convolution.MAX_OUTPUT_POSITIONS, convolution.matmul_convolution_positions())
    variants = [("float32", default, False)] + [("mixed_bfloat16", (w, c), e) for w, c, e in rules]
    names = ["float32"] + [f"bf16 {w}/{c}{':cells' if e else ''}" for w, c, e in rules]
    print(
        f"\nencoder training step, median ms (ratio to float32); rule W/C: kernel gradient"
        f" as a matrix product up to W output positions, whole convolution up to C;"
        f" default {default[0]}/{default[1]}"
    )
    print("variant   " + "".join(f"{n:>17s}" for n in names))
    totals = np.zeros(len(variants))
    order = np.random.default_rng(0)
    for spec in encoder_family(width):
        steps = [encoder_step(spec, p, r, batch, e) for p, r, e in variants]
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
        text, _, columns = text.partition(":")
        if columns not in ("", "cells"):
            parser.error(f"--rules: unknown columns {columns!r} (only ':cells')")
        w, _, c = text.partition("/")
        rules.append((int(w), int(c or 0), columns == "cells"))
    if not args.steps_only:
        compare_layers(args.width, args.batch, args.repeats)
    compare_steps(args.width, args.batch, args.repeats, rules)


if __name__ == "__main__":
    main()
