"""The stride-2 convolution as matrix products: its weight gradient, and the whole
convolution (semfed/convolution.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from semfed import convolution
from semfed.config import ConfigError, load_config
from semfed.convolution import (
    StridedConv2D,
    matmul_convolution_applies,
    matmul_weight_gradient_applies,
    strided_convolution,
    strided_weight_gradient,
)

X22 = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32).reshape(1, 2, 2, 1)


@pytest.mark.parametrize(
    "k, padded",
    [
        # SAME at stride 2 on a 2 x 2 input gives one output; the kernel's gradient is
        # the padded input times dy, padded (k - 2) with the smaller half in front
        (2, [[1, 2], [3, 4]]),
        (3, [[1, 2, 0], [3, 4, 0], [0, 0, 0]]),
        (4, [[0, 0, 0, 0], [0, 1, 2, 0], [0, 3, 4, 0], [0, 0, 0, 0]]),
    ],
)
def test_weight_gradient_by_hand(k, padded):
    dy = np.full((1, 1, 1, 1), 5.0, np.float32)
    g = strided_weight_gradient(tf.constant(X22), tf.constant(dy), k).numpy()
    assert g.shape == (k, k, 1, 1)
    np.testing.assert_array_equal(g[:, :, 0, 0], 5.0 * np.array(padded, np.float32))


def test_weight_gradient_by_hand_two_outputs_and_channels():
    # 4 x 1 input, k = 2: output rows see input rows (0, 1) and (2, 3); two input
    # channels, two output channels
    x = np.arange(8, dtype=np.float32).reshape(1, 4, 1, 2)  # x[r] = (2r, 2r + 1)
    dy = np.array([1.0, 10.0, 2.0, 20.0], np.float32).reshape(1, 2, 1, 2)
    g = strided_weight_gradient(tf.constant(x), tf.constant(dy), 2).numpy()
    # dW[i, 0, c, o] = sum_y x[2y + i, c] * dy[y, o]; j = 1 taps the right padding
    want = np.zeros((2, 2, 2, 2), np.float32)
    for i in range(2):
        for c in range(2):
            for o in range(2):
                want[i, 0, c, o] = sum(x[0, 2 * y + i, 0, c] * dy[0, y, 0, o] for y in range(2))
    assert want[1, 0, 1, 1] == 3 * 10 + 7 * 20
    np.testing.assert_array_equal(g, want)


@pytest.mark.parametrize("k", [1, 3, 4, 5])
@pytest.mark.parametrize("size", [(8, 8), (7, 5), (4, 4), (2, 2)])
def test_weight_gradient_equals_tensorflows(k, size):
    rng = np.random.default_rng(k * 100 + size[0])
    h, w = size
    oh, ow = -(-h // 2), -(-w // 2)
    x = tf.constant(rng.normal(size=(3, h, w, 5)).astype(np.float32))
    dy = tf.constant(rng.normal(size=(3, oh, ow, 6)).astype(np.float32))
    want = tf.compat.v1.nn.conv2d_backprop_filter(x, [k, k, 5, 6], dy, [1, 2, 2, 1], "SAME")
    np.testing.assert_allclose(strided_weight_gradient(x, dy, k), want, rtol=1e-5, atol=1e-5)


def _convolution_and_gradients(x, kernel, dy):
    with tf.GradientTape() as tape:
        tape.watch([x, kernel])
        y = strided_convolution(x, kernel)
    dx, dk = tape.gradient(y, [x, kernel], output_gradients=dy)
    return y, dx, dk


def test_convolution_by_hand():
    # 2 x 2 input, k = 4: one output; SAME pads one zero row and column in front, so
    # the output is W[1, 1] x[0, 0] + W[1, 2] x[0, 1] + W[2, 1] x[1, 0] + W[2, 2] x[1, 1]
    kernel = tf.reshape(tf.range(16, dtype=tf.float32), [4, 4, 1, 1])  # W[i, j] = 4i + j
    dy = tf.constant([[[[2.0]]]])
    y, dx, dk = _convolution_and_gradients(tf.constant(X22), kernel, dy)
    assert y.shape == (1, 1, 1, 1)
    assert float(y[0, 0, 0, 0]) == 5 * 1 + 6 * 2 + 9 * 3 + 10 * 4  # 84
    # dx[r, c] = dy W[r + 1, c + 1]
    np.testing.assert_array_equal(dx[0, :, :, 0], [[10.0, 12.0], [18.0, 20.0]])
    # dW = dy x_pad
    want = 2.0 * np.array([[0, 0, 0, 0], [0, 1, 2, 0], [0, 3, 4, 0], [0, 0, 0, 0]], np.float32)
    np.testing.assert_array_equal(dk[:, :, 0, 0], want)


def test_convolution_by_hand_two_outputs():
    # 4 x 1 input, k = 2, no padding in front: y[r] = W[0, 0] x[2r] + W[1, 0] x[2r + 1]
    # (W[., 1] taps the zero column on the right)
    x = tf.constant([1.0, 2.0, 3.0, 4.0], shape=[1, 4, 1, 1])
    kernel = tf.constant([[10.0, 100.0], [1.0, 1000.0]], shape=[2, 2, 1, 1])
    dy = tf.constant([1.0, -1.0], shape=[1, 2, 1, 1])
    y, dx, dk = _convolution_and_gradients(x, kernel, dy)
    np.testing.assert_array_equal(y[0, :, 0, 0], [10 * 1 + 2, 10 * 3 + 4])
    np.testing.assert_array_equal(dx[0, :, 0, 0], [10.0, 1.0, -10.0, -1.0])
    np.testing.assert_array_equal(dk[:, :, 0, 0], [[1 - 3, 0.0], [2 - 4, 0.0]])


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("size", [(8, 8), (7, 5), (4, 4), (2, 2), (1, 1)])
def test_convolution_equals_tensorflows(k, size):
    rng = np.random.default_rng(k * 10 + size[1])
    h, w = size
    oh, ow = -(-h // 2), -(-w // 2)
    x = tf.constant(rng.normal(size=(3, h, w, 5)).astype(np.float32))
    kernel = tf.constant(rng.normal(size=(k, k, 5, 6)).astype(np.float32))
    dy = tf.constant(rng.normal(size=(3, oh, ow, 6)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch([x, kernel])
        y_ref = tf.nn.conv2d(x, kernel, 2, "SAME")
    want = [y_ref, *tape.gradient(y_ref, [x, kernel], output_gradients=dy)]
    for got, ref in zip(_convolution_and_gradients(x, kernel, dy), want, strict=True):
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)


def _gradients(layer, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        weights = tf.reshape(tf.cos(tf.range(tf.size(y), dtype=tf.float32)), tf.shape(y))
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
    return tape.gradient(loss, [x, layer.kernel])


def _pair(policy, k, ci=8, co=16, weight_gradient="auto"):
    keras.utils.set_random_seed(3)
    ours = StridedConv2D(co, k, weight_gradient, use_bias=False, dtype=policy)
    ref = keras.layers.Conv2D(co, k, strides=2, padding="same", use_bias=False, dtype=policy)
    ours.build((None, 8, 8, ci))
    ref.build((None, 8, 8, ci))
    ref.set_weights(ours.get_weights())
    return ours, ref


def test_bfloat16_small_outputs_take_the_matmul_gradient_and_match_keras(monkeypatch):
    calls = []
    real = convolution.strided_weight_gradient
    monkeypatch.setattr(
        convolution, "strided_weight_gradient", lambda *a: calls.append(1) or real(*a)
    )
    monkeypatch.setattr(
        convolution, "strided_convolution", lambda *a: pytest.fail("whole matmul path taken")
    )
    monkeypatch.setattr(convolution, "_on_gpu", lambda: False)
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 16, 16, 8)).astype(np.float32))
    for k in (3, 4):
        ours, ref = _pair("mixed_bfloat16", k)
        (dx, dw), (dx_ref, dw_ref) = _gradients(ours, x), _gradients(ref, x)
        y, y_ref = ours(x), ref(x)
        assert y.dtype == tf.bfloat16
        np.testing.assert_array_equal(y.numpy(), y_ref.numpy())  # the forward pass is Keras's
        np.testing.assert_array_equal(dx.numpy(), dx_ref.numpy())  # and so is dx
        scale = float(tf.reduce_max(tf.abs(tf.cast(dw_ref, tf.float32))))
        np.testing.assert_allclose(
            tf.cast(dw, tf.float32), tf.cast(dw_ref, tf.float32), atol=0.01 * scale
        )
    assert len(calls) == 2  # 16 x 16 in, 8 x 8 out: within MAX_OUTPUT_POSITIONS


@pytest.mark.parametrize(
    "size, k, amx, whole",
    [(8, 4, True, True), (8, 4, False, False), (4, 4, False, True), (8, 3, True, False)],
)
def test_bfloat16_smallest_outputs_run_whole_as_matmuls(monkeypatch, size, k, amx, whole):
    calls = []
    real = convolution.strided_convolution
    monkeypatch.setattr(convolution, "strided_convolution", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(convolution, "_on_gpu", lambda: False)
    monkeypatch.setattr(convolution, "_cpu_has_amx", lambda: amx)
    rng = np.random.default_rng(size + k)
    x = tf.constant(rng.normal(size=(4, size, size, 8)).astype(np.float32))
    ours, ref = _pair("mixed_bfloat16", k)
    y, y_ref = ours(x), ref(x)
    assert y.dtype == tf.bfloat16 and y.shape == y_ref.shape
    got = [y, *_gradients(ours, x)]
    want = [y_ref, *_gradients(ref, x)]
    assert len(calls) == (2 if whole else 0)  # one call for y, one for the gradients
    for a, b in zip(got, want, strict=True):  # agree to bfloat16's rounding
        a, b = tf.cast(a, tf.float32), tf.cast(b, tf.float32)
        np.testing.assert_allclose(a, b, atol=0.02 * float(tf.reduce_max(tf.abs(b))))


@pytest.mark.parametrize(
    "policy, weight_gradient", [("float32", "auto"), ("mixed_bfloat16", "native")]
)
def test_float32_and_native_are_keras_bit_for_bit(monkeypatch, policy, weight_gradient):
    monkeypatch.setattr(
        convolution, "strided_weight_gradient", lambda *a: pytest.fail("matmul path taken")
    )
    monkeypatch.setattr(
        convolution, "strided_convolution", lambda *a: pytest.fail("matmul path taken")
    )
    x = tf.constant(np.random.default_rng(1).normal(size=(4, 8, 8, 8)).astype(np.float32))
    ours, ref = _pair(policy, 4, weight_gradient=weight_gradient)
    for a, b in zip(_gradients(ours, x), _gradients(ref, x), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_the_rule(monkeypatch):
    monkeypatch.setattr(convolution, "_on_gpu", lambda: False)
    assert matmul_weight_gradient_applies(64, "bfloat16")
    assert matmul_weight_gradient_applies(4, "bfloat16")
    assert not matmul_weight_gradient_applies(256, "bfloat16")  # 16 x 16: first layers
    assert not matmul_weight_gradient_applies(16, "float32")
    assert not matmul_weight_gradient_applies(16, "bfloat16", "native")
    # the whole convolution: 4 x 4 outputs or fewer with AMX, 2 x 2 without; even kernels
    monkeypatch.setattr(convolution, "_cpu_has_amx", lambda: True)
    assert matmul_convolution_applies(16, 4, "bfloat16")
    assert matmul_convolution_applies(4, 2, "bfloat16")
    assert not matmul_convolution_applies(64, 4, "bfloat16")
    monkeypatch.setattr(convolution, "_cpu_has_amx", lambda: False)
    assert not matmul_convolution_applies(16, 4, "bfloat16")
    assert matmul_convolution_applies(4, 4, "bfloat16")
    monkeypatch.setattr(convolution, "MAX_MATMUL_CONVOLUTION_POSITIONS", 16)  # an override
    assert matmul_convolution_applies(16, 4, "bfloat16")
    monkeypatch.setattr(convolution, "MAX_MATMUL_CONVOLUTION_POSITIONS", None)
    assert not matmul_convolution_applies(16, 3, "bfloat16")
    assert not matmul_convolution_applies(4, 4, "float32")
    assert not matmul_convolution_applies(4, 4, "bfloat16", "native")
    monkeypatch.setattr(convolution, "_on_gpu", lambda: True)
    assert not matmul_weight_gradient_applies(16, "bfloat16")
    assert not matmul_convolution_applies(16, 4, "bfloat16")


def test_amx_is_read_from_the_cpu_flags(tmp_path):
    cases = [("fpu avx512_bf16 amx_bf16 amx_tile", True), ("fpu avx512_bf16", False)]
    for name, (flags, expected) in zip(("amx", "plain"), cases, strict=True):
        info = tmp_path / name
        info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        assert convolution._cpu_has_amx(str(info)) is expected
    assert convolution._cpu_has_amx(str(tmp_path / "missing")) is False


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="weight_gradient"):
        StridedConv2D(4, 3, "fast")
    with pytest.raises(ConfigError, match="weight_gradient"):
        load_config(None, ["training.weight_gradient=fast"])
    assert load_config(None).training.weight_gradient == "auto"
