"""Training steps with Keras's batch norm against the fused one, in float32 and bfloat16.

    python benchmarks/batch_norm.py [--width 64] [--batch 32] [--repeats 12]

For every encoder variant (semfed/models.py, CIFAR-10 input) with the paper's
decoder: one compiled training step (encoder -> decoder -> cross-entropy ->
Adam on both, as the bench's compute floor) with ``training.fused_batch_norm``
false (Keras's layer) and true (:class:`semfed.normalization.FusedBatchNormalization`),
in float32 and under mixed_bfloat16. All twenty steps run in a new random order
in each repeat (in a fixed order the later ones ran up to 15 % slower); the
median ms of 10 calls per repeat, the sums over the five variants, and the
ratios fused / Keras and bfloat16 / float32, all measured in this one run.
The first losses of each pair are printed too: the two layers compute the same
thing. Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
import tensorflow as tf

from semfed.bench import compute_floor_step
from semfed.models import build_decoder, build_encoder, dtype_policy, encoder_family
from semfed.optimizers import make_optimizer

SETTINGS = [(p, fused) for p in ("float32", "bfloat16") for fused in (False, True)]


def training_step(spec, precision: str, fused: bool, width: int, batch: int):
    """A compiled floor step of one encoder variant and a decoder, and its inputs."""
    policy = dtype_policy(precision)
    keras.utils.set_random_seed(1)
    encoder = build_encoder(spec, (32, 32, 3), 64, spec.name, policy=policy, fused_batch_norm=fused)
    decoder = build_decoder(64, (256,), 10, policy)
    e_opt, d_opt = make_optimizer("adam", 1e-3, True), make_optimizer("adam", 1e-3, True)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (batch, 32, 32, 3)).astype(np.float32))
    y = tf.constant(rng.integers(0, 10, batch).astype(np.int32))
    step = compute_floor_step(encoder, decoder, e_opt, d_opt)
    return step, x, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=12)
    args = parser.parse_args()

    specs = encoder_family(args.width)
    steps, first = {}, {}
    for spec in specs:
        for precision, fused in SETTINGS:
            step, x, y = training_step(spec, precision, fused, args.width, args.batch)
            first[fused] = float(step(x, y))
            steps[spec.name, precision, fused] = (step, x, y)
            if fused:
                print(
                    f"{spec.name:8s} {precision:8s} first loss: "
                    f"Keras {first[False]:.5f}, fused {first[True]:.5f}"
                )
    keys = list(steps)
    times = {key: [] for key in keys}
    order = np.random.default_rng(0)
    for _ in range(args.repeats):
        for i in order.permutation(len(keys)):
            step, x, y = steps[keys[i]]
            for _ in range(3):
                step(x, y)
            start = time.perf_counter()
            for _ in range(10):
                loss = step(x, y)
            loss.numpy()
            times[keys[i]].append((time.perf_counter() - start) / 10 * 1e3)
    names = [f"{p} {'fused' if f else 'Keras'}" for p, f in SETTINGS]
    print(f"\ntraining step, median ms of {args.repeats} repeats")
    print("variant   " + "".join(f"{n:>17s}" for n in names))
    totals = np.zeros(len(SETTINGS))
    for spec in specs:
        ms = np.array([np.median(times[spec.name, p, f]) for p, f in SETTINGS])
        totals += ms
        print(f"{spec.name:8s}  " + "".join(f"{m:17.2f}" for m in ms))
    print("sum       " + "".join(f"{m:17.2f}" for m in totals))
    f32_keras, f32_fused, bf16_keras, bf16_fused = totals
    print(
        f"fused / Keras: float32 {f32_fused / f32_keras:.3f}, "
        f"bfloat16 {bf16_fused / bf16_keras:.3f}"
    )
    print(
        f"bfloat16 / float32: Keras {bf16_keras / f32_keras:.3f}, "
        f"fused {bf16_fused / f32_fused:.3f}; "
        f"bfloat16 fused / float32 Keras {bf16_fused / f32_keras:.3f}"
    )


if __name__ == "__main__":
    main()
