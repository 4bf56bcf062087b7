"""The encoders' stride-2 convolution, with a faster weight gradient for bfloat16 on a CPU.

oneDNN's bfloat16 weight-gradient kernels are slow at the encoders' later layers,
where the output is 8 x 8 or smaller: 3.5 ms for 128 -> 256 channels at 4 x 4
and batch 32, slower than float32 (2.9 ms), against 1.7 ms for the same sum
written as one matrix product (``docs/performance.md``). :class:`StridedConv2D` keeps
Keras's forward pass and input gradient and, where that rule says so
(:func:`matmul_weight_gradient_applies`), computes the kernel's gradient as

    dW[i, j, :, :] = sum over (b, y, x) of x_pad[b, 2y + i, 2x + j, :]^T dy[b, y, x, :]

through a space-to-depth rearrangement: the padded input, cut into 2 x 2 cells,
is a stride-1 grid of 4 C_in channels, so the k x k stride-2 kernel becomes a
ceil(k/2) x ceil(k/2) stride-1 kernel whose taps are contiguous slices of that
grid, and all taps go into one matrix product. The weights, the forward pass
and the float32 path are Keras's own; only the order of the summation differs.
"""

from __future__ import annotations

import keras
import tensorflow as tf

#: The matrix-product weight gradient is used when a convolution's output has at
#: most this many positions (8 x 8). Inside a training step it was faster up to 8 x 8
#: (encoder steps 0.716 x float32's with 4 x 4, 0.679 x with 8 x 8, 0.684 x with
#: 16 x 16 as well; docs/performance.md); alone, oneDNN's kernel ties it at 8 x 8.
MAX_OUTPUT_POSITIONS = 64

#: ``training.weight_gradient`` values.
WEIGHT_GRADIENTS = ("auto", "native")


def _on_gpu() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


def matmul_weight_gradient_applies(
    output_positions: int, compute_dtype: str, mode: str = "auto"
) -> bool:
    """Whether a stride-2 convolution with ``output_positions`` = H_out * W_out takes
    the matrix-product weight gradient: ``mode`` ``"auto"``, bfloat16 compute, no
    GPU (cuDNN's kernels are not the slow ones), and a small output."""
    return (
        mode == "auto"
        and compute_dtype == "bfloat16"
        and output_positions <= MAX_OUTPUT_POSITIONS
        and not _on_gpu()
    )


def _same_padding(size: int, out: int, kernel: int) -> int:
    """Leading zero rows (or columns) of TensorFlow's SAME padding at stride 2."""
    return max((out - 1) * 2 + kernel - size, 0) // 2


def strided_weight_gradient(x: tf.Tensor, dy: tf.Tensor, kernel_size: int) -> tf.Tensor:
    """The kernel gradient of a stride-2, SAME-padded convolution, as one matrix product.

    x: [B, H, W, C_in]; dy: [B, ceil(H/2), ceil(W/2), C_out] (the output's gradient),
    same dtype. Returns [k, k, C_in, C_out], the gradient of sum(dy * conv(x, W))
    with respect to W, equal to ``tf.nn.conv2d_backprop_filter`` up to rounding.
    """
    k = kernel_size
    _, h, w, ci = x.shape
    _, oh, ow, co = dy.shape
    taps = (k + 1) // 2  # taps per axis of the stride-1 kernel on the 2 x 2 cells
    top, left = _same_padding(h, oh, k), _same_padding(w, ow, k)
    hp, wp = 2 * (oh - 1 + taps), 2 * (ow - 1 + taps)
    cells = tf.nn.space_to_depth(
        tf.pad(x, [[0, 0], [top, hp - h - top], [left, wp - w - left], [0, 0]]), 2
    )  # [B, oh + taps - 1, ow + taps - 1, 4 C_in], channel = (di * 2 + dj) * C_in + c
    cols = tf.concat(
        [cells[:, a : a + oh, c : c + ow, :] for a in range(taps) for c in range(taps)], axis=-1
    )
    g = tf.matmul(
        tf.reshape(cols, [-1, taps * taps * 4 * ci]), tf.reshape(dy, [-1, co]), transpose_a=True
    )
    # rows are (a, c, di, dj, c_in) with kernel tap (i, j) = (2a + di, 2c + dj)
    g = tf.transpose(tf.reshape(g, [taps, taps, 2, 2, ci, co]), [0, 2, 1, 3, 4, 5])
    return tf.reshape(g, [2 * taps, 2 * taps, ci, co])[:k, :k]


def _conv_with_matmul_weight_gradient(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    k = kernel.shape[0]

    @tf.custom_gradient
    def conv(x, kernel):
        y = tf.nn.conv2d(x, kernel, strides=2, padding="SAME")

        def grad(dy):
            dx = tf.nn.conv2d_transpose(dy, kernel, tf.shape(x), strides=2, padding="SAME")
            return dx, strided_weight_gradient(x, dy, k)

        return y, grad

    return conv(x, kernel)


class StridedConv2D(keras.layers.Conv2D):
    """Keras's stride-2 SAME ``Conv2D`` (same weights and forward pass) whose kernel
    gradient is :func:`strided_weight_gradient` where
    :func:`matmul_weight_gradient_applies`; ``weight_gradient="native"`` never."""

    def __init__(self, filters: int, kernel_size: int, weight_gradient: str = "auto", **kwargs):
        if weight_gradient not in WEIGHT_GRADIENTS:
            raise ValueError(f"weight_gradient must be one of {WEIGHT_GRADIENTS}")
        super().__init__(filters, kernel_size, strides=2, padding="same", **kwargs)
        self.weight_gradient = weight_gradient

    def convolution_op(self, inputs, kernel):
        oh, ow = -(-inputs.shape[1] // 2), -(-inputs.shape[2] // 2)
        if matmul_weight_gradient_applies(oh * ow, self.compute_dtype, self.weight_gradient):
            # a tensor, not the variable: the custom gradient is taken with respect to it
            kernel = tf.cast(tf.convert_to_tensor(kernel), inputs.dtype)
            return _conv_with_matmul_weight_gradient(inputs, kernel)
        return super().convolution_op(inputs, kernel)

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("strides", None)
        config.pop("padding", None)
        return {**config, "weight_gradient": self.weight_gradient}
