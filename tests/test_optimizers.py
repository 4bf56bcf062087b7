"""FusedAdam: Keras's Adam update in TensorFlow's fused kernel (semfed/optimizers.py)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from semfed.optimizers import FusedAdam, make_optimizer


def test_two_steps_by_hand():
    """theta = 1, lr = 0.1, beta = (0.9, 0.999), epsilon = 1e-7.

    Step 1, g = 0.5: m = 0.05, v = 0.00025, alpha = 0.1 sqrt(0.001) / 0.1 = 0.0316228,
    theta = 1 - 0.05 alpha / (0.0158114 + 1e-7) = 1 - 0.0999994 = 0.9000006.
    Step 2, g = -0.5: m = 0.05 - 0.055 = -0.005, v = 0.00025 + 0.24975e-3 = 0.00049975,
    alpha = 0.1 sqrt(0.001999) / 0.19 = 0.0235317, sqrt(v) = 0.0223551,
    theta = 0.9000006 + 0.005 alpha / (0.0223551 + 1e-7) = 0.9000006 + 0.0052631 = 0.9052637.
    """
    v = keras.Variable(np.array([1.0], np.float32))
    opt = FusedAdam(learning_rate=0.1)
    opt.apply_gradients([(tf.constant([0.5]), v)])
    np.testing.assert_allclose(v.numpy(), [0.9000006], atol=2e-7)
    (m,) = [w for w in opt.variables if w.path.endswith("momentum")]
    (s,) = [w for w in opt.variables if w.path.endswith("velocity")]
    np.testing.assert_allclose(m.numpy(), [0.05], rtol=1e-6)
    # 1 - 0.999 in float32 is 0.00099999 (relative error 1.3e-5)
    np.testing.assert_allclose(s.numpy(), [0.00025], rtol=2e-5)
    opt.apply_gradients([(tf.constant([-0.5]), v)])
    np.testing.assert_allclose(v.numpy(), [0.9052637], atol=2e-7)
    assert int(opt.iterations.numpy()) == 2


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_agrees_with_keras_adam_and_takes_the_fused_kernel(policy):
    """Ten compiled steps on a small network (bfloat16 compute, float32 weights under
    mixed_bfloat16): the same weights and moments as Keras's Adam to rounding, the
    same variables in the same order (checkpoints and workspace copies hold them),
    and every variable updated by the fused kernel."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(16, 8)).astype(np.float32))
    y = tf.constant(rng.integers(0, 3, 16).astype(np.int32))
    models, opts = [], [FusedAdam(learning_rate=0.01), keras.optimizers.Adam(learning_rate=0.01)]
    for _ in opts:
        keras.utils.set_random_seed(1)
        models.append(
            keras.Sequential(
                [
                    keras.Input((8,)),
                    keras.layers.Dense(16, activation="relu", dtype=policy),
                    keras.layers.Dense(3, dtype="float32"),
                ]
            )
        )
    initial = [w.numpy() for w in models[0].weights]
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    before = FusedAdam.fused_updates
    for model, opt in zip(models, opts, strict=True):
        opt.build(model.trainable_variables)  # so the step is traced once

        @tf.function
        def step(model=model, opt=opt):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        for _ in range(10):
            step()
    assert FusedAdam.fused_updates - before == len(models[0].trainable_variables)
    fused, plain = opts
    kinds = [
        [(v.path.split("/")[-1].split("_")[-1], tuple(v.shape)) for v in o.variables] for o in opts
    ]
    assert kinds[0] == kinds[1] and len(kinds[0]) == 1 + 1 + 2 * 4  # step, lr, m and v
    # float32: rounding only. bfloat16: a weight that differs by one float32 ulp can
    # round to another bfloat16 number in the next forward pass, so the gradients
    # differ at bfloat16's precision (2^-8) and the moments by up to about 1e-5.
    atol = 1e-6 if policy == "float32" else 5e-5
    for a, b in zip(fused.variables, plain.variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=2e-4, atol=atol)
    for a, b in zip(models[0].weights, models[1].weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=10 * atol)
        assert a.dtype == "float32"
    # and they did move: ten steps at 0.01 shift each weight by up to about 0.1
    moved = [np.abs(w.numpy() - w0).max() for w, w0 in zip(models[0].weights, initial, strict=True)]
    assert min(moved) > 0.02


def test_make_optimizer_choices():
    assert type(make_optimizer("adam", 0.1)) is FusedAdam
    assert type(make_optimizer("adam", 0.1, fused=False)) is keras.optimizers.Adam
    assert type(make_optimizer("sgd", 0.1)) is keras.optimizers.SGD
    clone = FusedAdam.from_config(FusedAdam(learning_rate=0.3).get_config())
    assert type(clone) is FusedAdam and float(clone.learning_rate) == pytest.approx(0.3)


def test_amsgrad_keeps_keras_update():
    v = keras.Variable(np.array([1.0], np.float32))
    opt = FusedAdam(learning_rate=0.1, amsgrad=True)
    before = FusedAdam.fused_updates
    opt.apply_gradients([(tf.constant([0.5]), v)])
    assert FusedAdam.fused_updates == before
    np.testing.assert_allclose(v.numpy(), [0.9], atol=2e-6)
