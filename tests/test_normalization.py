"""Batch norm trained through one fused kernel (semfed/normalization.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from semfed.config import load_config
from semfed.models import build_encoder, encoder_family
from semfed.normalization import FusedBatchNormalization


def _layer(cls, shape, momentum=0.9, dtype="float32", seed=0):
    layer = cls(momentum=momentum, dtype=dtype)
    layer.build(shape)
    rng = np.random.default_rng(seed)
    c = shape[-1]
    layer.set_weights(
        [
            rng.uniform(0.5, 1.5, c).astype(np.float32),  # gamma
            rng.normal(size=c).astype(np.float32),  # beta
            rng.normal(size=c).astype(np.float32),  # moving mean
            rng.uniform(0.5, 2.0, c).astype(np.float32),  # moving variance
        ]
    )
    return layer


def test_training_step_by_hand():
    # one channel, x = 1, 2, 3, 4 over (B, H, W) = (2, 1, 2): mean 2.5, biased
    # variance 1.25 (the fused kernel's own is the unbiased 5/3)
    layer = FusedBatchNormalization(momentum=0.9, epsilon=1e-3)
    layer.build((2, 1, 2, 1))
    layer.set_weights([np.array([2.0]), np.array([0.5]), np.array([0.0]), np.array([1.0])])
    x = tf.constant(np.array([1.0, 2.0, 3.0, 4.0], np.float32).reshape(2, 1, 2, 1))
    y = layer(x, training=True).numpy().ravel()
    expected = 2.0 * (np.array([1, 2, 3, 4]) - 2.5) / np.sqrt(1.25 + 1e-3) + 0.5
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    mean, var = layer.moving_mean.numpy(), layer.moving_variance.numpy()
    np.testing.assert_allclose(mean, [0.9 * 0.0 + 0.1 * 2.5], rtol=1e-6)
    np.testing.assert_allclose(var, [0.9 * 1.0 + 0.1 * 1.25], rtol=1e-6)


def test_one_value_per_channel_has_zero_batch_variance():
    # n = B H W = 1: the biased variance is 0 (n / (n - 1) must not enter)
    layer = FusedBatchNormalization(momentum=0.9)
    layer.build((1, 1, 1, 2))
    y = layer(tf.constant([[[[3.0, 1.0]]]]), training=True)
    np.testing.assert_allclose(y.numpy().ravel(), [0.0, 0.0])  # beta
    np.testing.assert_allclose(layer.moving_variance.numpy(), [0.9, 0.9], rtol=1e-6)
    np.testing.assert_allclose(layer.moving_mean.numpy(), [0.3, 0.1], rtol=1e-6)


@pytest.mark.parametrize("shape", [(8, 4, 4, 16), (3, 5, 3, 7)])
def test_matches_keras_forward_backward_and_moving_statistics(shape):
    keras_bn = _layer(keras.layers.BatchNormalization, shape)
    fused = _layer(FusedBatchNormalization, shape)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(2.0, 3.0, shape).astype(np.float32))
    dy = tf.constant(rng.normal(size=shape).astype(np.float32))
    results = []
    for layer in (keras_bn, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
        grads = tape.gradient(y, [x, *layer.trainable_variables], output_gradients=dy)
        results.append([y, *grads, layer.moving_mean, layer.moving_variance])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-5)


def test_bfloat16_policy_matches_keras_to_bfloat16_rounding():
    shape = (16, 4, 4, 8)
    keras_bn = _layer(keras.layers.BatchNormalization, shape, dtype="mixed_bfloat16")
    fused = _layer(FusedBatchNormalization, shape, dtype="mixed_bfloat16")
    x = tf.constant(np.random.default_rng(2).normal(size=shape), tf.bfloat16)
    outs = []
    for layer in (keras_bn, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
        dx = tape.gradient(loss, x)
        assert y.dtype == tf.bfloat16 and dx.dtype == tf.bfloat16
        assert layer.moving_variance.dtype == "float32"
        outs.append([y, dx, layer.moving_mean, layer.moving_variance])
    for a, b in zip(*outs, strict=True):
        a32, b32 = (np.asarray(tf.cast(t, tf.float32)) for t in (a, b))
        np.testing.assert_allclose(b32, a32, rtol=2e-2, atol=2e-2)
    # the statistics are float32 sums, not bfloat16 ones
    np.testing.assert_allclose(outs[1][3].numpy(), outs[0][3].numpy(), rtol=1e-5)


@pytest.mark.parametrize("trainable", [True, False])
def test_inference_and_frozen_layers_keep_keras_path(trainable):
    shape = (4, 2, 2, 3)
    keras_bn = _layer(keras.layers.BatchNormalization, shape)
    fused = _layer(FusedBatchNormalization, shape)
    x = tf.constant(np.random.default_rng(3).normal(size=shape).astype(np.float32))
    keras_bn.trainable = fused.trainable = trainable
    training = not trainable  # a frozen layer normalizes with its moving statistics
    np.testing.assert_array_equal(
        fused(x, training=training).numpy(), keras_bn(x, training=training).numpy()
    )
    np.testing.assert_array_equal(fused.moving_variance.numpy(), keras_bn.moving_variance.numpy())


def test_encoder_uses_it_by_default_and_config_turns_it_off():
    spec = encoder_family(8)[0]
    fused = build_encoder(spec, (32, 32, 3), 4, "e")
    plain = build_encoder(spec, (32, 32, 3), 4, "e", fused_batch_norm=False)
    norms = [type(layer) for layer in fused.layers if "normalization" in layer.name]
    assert norms and all(t is FusedBatchNormalization for t in norms)
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in plain.layers)
    assert [w.shape for w in fused.weights] == [w.shape for w in plain.weights]
    clone = keras.models.clone_model(fused)  # the workspaces clone the encoders
    assert any(isinstance(layer, FusedBatchNormalization) for layer in clone.layers)
    assert load_config(None).training.fused_batch_norm is True
