"""The encoders' stride-2 convolution, with faster kernels for bfloat16 on a CPU.

oneDNN's bfloat16 convolution kernels are slow at the encoders' later layers,
where the output is 8 x 8 or smaller: the weight gradient for 128 -> 256
channels at 4 x 4 and batch 32 takes 3.5 ms, slower than float32 (2.9 ms),
against 1.7 ms for the same sum written as one matrix product
(``docs/performance.md``). :class:`StridedConv2D` is Keras's convolution where
nothing faster applies, and otherwise (:func:`matmul_weight_gradient_applies`,
:func:`matmul_convolution_applies`) works on the same matrices:

    columns[(b, y, x), (i, j, c)] = x_pad[b, 2y + i, 2x + j, c]
    y = columns @ W,   dW = columns^T @ dy,   d columns = dy @ W^T

The columns are gathered from the SAME-padded input in one op (``tf.gather``
with indices fixed when the layer is traced), in the kernel's own order, so W
and dW are the kernel as it is stored and an odd kernel has no zero taps. (Before
29 Nov they were cut as slices of a space-to-depth grid of 2 x 2 cells and
concatenated, and the product rearranged; the gather took the bfloat16 encoder
steps 0.95 x as long.) Up to 8 x 8 outputs only the kernel gradient is computed
so (the forward pass and the input gradient stay Keras's); at the smallest
outputs with an even kernel the whole convolution is, its gradients TensorFlow's
own of the gather and the product (the input's is d columns summed back onto
the pixels they were gathered from): up to 4 x 4 on a CPU with AMX, up to 2 x 2
on one without, where oneDNN's own kernels won at 4 x 4. The weights and the
float32 path are Keras's own; only the order of the summation differs.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

#: The matrix-product weight gradient is used when a convolution's output has at
#: most this many positions (8 x 8). Inside a training step it was faster up to 8 x 8
#: (encoder steps 0.716 x float32's with 4 x 4, 0.679 x with 8 x 8, 0.684 x with
#: 16 x 16 as well; docs/performance.md); alone, oneDNN's kernel ties it at 8 x 8.
MAX_OUTPUT_POSITIONS = 64

#: The whole convolution is a matrix product when its output has at most this many
#: positions and its kernel size is even (odd kernels were slower whole on AMX when the
#: products still ran over zero taps, and have not been measured whole since);
#: ``None``: by the CPU, below. A number set here overrides the CPU's
#: (benchmarks/weight_gradient.py does).
MAX_MATMUL_CONVOLUTION_POSITIONS: int | None = None

#: On a CPU with AMX (Intel Sapphire Rapids and later), whose bfloat16 matrix products
#: run on its tiles: 4 x 4 outputs. Inside bfloat16 encoder steps it cut the deep
#: variant's step by about a sixth and left the others within noise; at 8 x 8 and for
#: odd kernels it was slower (docs/performance.md).
AMX_MATMUL_CONVOLUTION_POSITIONS = 16

#: Without AMX (AMD EPYC with AVX-512 BF16): 2 x 2 outputs. There, oneDNN's own forward
#: and input-gradient kernels at 4 x 4 outputs beat the products with their
#: rearrangements: the five encoders' bfloat16 steps took 0.967 x as long with the
#: whole convolution at 2 x 2 only as with it at 4 x 4 (the DCGAN-like 0.94 x), twice
#: in one paired run (docs/performance.md).
PLAIN_MATMUL_CONVOLUTION_POSITIONS = 4


@functools.cache
def _cpu_has_amx(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU advertises AMX's bfloat16 tiles (``amx_bf16`` among the flags
    of Linux's ``cpuinfo``); False where that file is missing or unreadable."""
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        pass
    return False


def matmul_convolution_positions() -> int:
    """The largest output (H_out * W_out) run whole as matrix products: the override
    ``MAX_MATMUL_CONVOLUTION_POSITIONS`` if set, else by the CPU (AMX or not)."""
    if MAX_MATMUL_CONVOLUTION_POSITIONS is not None:
        return MAX_MATMUL_CONVOLUTION_POSITIONS
    if _cpu_has_amx():
        return AMX_MATMUL_CONVOLUTION_POSITIONS
    return PLAIN_MATMUL_CONVOLUTION_POSITIONS


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


def matmul_convolution_applies(
    output_positions: int, kernel_size: int, compute_dtype: str, mode: str = "auto"
) -> bool:
    """Whether a stride-2 convolution runs whole as matrix products
    (:func:`strided_convolution`): ``mode`` ``"auto"``, bfloat16 compute, no GPU, an
    output of at most :func:`matmul_convolution_positions` and an even kernel."""
    return (
        mode == "auto"
        and compute_dtype == "bfloat16"
        and output_positions <= matmul_convolution_positions()
        and kernel_size % 2 == 0
        and not _on_gpu()
    )


def _same_padding(size: int, out: int, kernel: int) -> int:
    """Leading zero rows (or columns) of TensorFlow's SAME padding at stride 2."""
    return max((out - 1) * 2 + kernel - size, 0) // 2


def _kernel_columns(x: tf.Tensor, kernel_size: int) -> tf.Tensor:
    """x [B, H, W, C] -> columns [B * oh * ow, k * k * C] in the kernel's own order
    (i, j, channel): row (b, y, x), column block (i, j) is x_pad[b, 2y + i, 2x + j],
    gathered from the SAME-padded input in one op. Only the k x k taps are cut (no
    zero taps for an odd k), and columns^T dy is the kernel gradient as it is stored."""
    k = kernel_size
    _, h, w, c = x.shape
    oh, ow = -(-h // 2), -(-w // 2)
    top, left = _same_padding(h, oh, k), _same_padding(w, ow, k)
    # the rows and columns the taps reach (at least the input's, for a 1 x 1 kernel)
    hp, wp = max(2 * (oh - 1) + k, top + h), max(2 * (ow - 1) + k, left + w)
    padded = tf.pad(x, [[0, 0], [top, hp - h - top], [left, wp - w - left], [0, 0]])
    # the padded pixel each (output row, output column, tap row, tap column) reads
    r, q, i, j = np.meshgrid(*(np.arange(n) for n in (oh, ow, k, k)), indexing="ij")
    pixels = ((2 * r + i) * wp + 2 * q + j).reshape(-1).astype(np.int32)
    cols = tf.gather(tf.reshape(padded, [-1, hp * wp, c]), pixels, axis=1)
    return tf.reshape(cols, [-1, k * k * c])


def strided_weight_gradient(x: tf.Tensor, dy: tf.Tensor, kernel_size: int) -> tf.Tensor:
    """The kernel gradient of a stride-2, SAME-padded convolution, as one matrix product.

    x: [B, H, W, C_in]; dy: [B, ceil(H/2), ceil(W/2), C_out] (the output's gradient),
    same dtype. Returns [k, k, C_in, C_out], the gradient of sum(dy * conv(x, W))
    with respect to W, equal to ``tf.nn.conv2d_backprop_filter`` up to rounding.
    The columns are gathered in the kernel's order (:func:`_kernel_columns`): inside
    bfloat16 encoder steps this took the five variants' steps 0.95 x as long as the
    columns of whole 2 x 2 cells (slices and a concatenation) with the product
    rearranged afterwards, the k = 3 variant's 0.87 x (no product over zero taps;
    ``benchmarks/weight_gradient.py --rules 64/4,64/4:cells``, docs/performance.md).
    """
    k = kernel_size
    cols = _kernel_columns(x, k)
    g = tf.matmul(cols, tf.reshape(dy, [-1, dy.shape[-1]]), transpose_a=True)
    return tf.reshape(g, [k, k, x.shape[-1], dy.shape[-1]])


def strided_convolution(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """A stride-2, SAME-padded convolution as one matrix product, gradients included.

    x [B, H, W, C_in], kernel [k, k, C_in, C_out], same dtype -> [B, ceil(H/2),
    ceil(W/2), C_out], equal to ``tf.nn.conv2d(x, kernel, 2, "SAME")`` up to
    rounding, and so are its gradients, which are TensorFlow's own of the ops used:
    the kernel's is columns^T dy (:func:`strided_weight_gradient`), the input's is
    dy W^T summed back onto the pixels the columns were gathered from.
    """
    k, _, _, co = kernel.shape
    oh, ow = -(-x.shape[1] // 2), -(-x.shape[2] // 2)
    y = tf.matmul(_kernel_columns(x, k), tf.reshape(kernel, [-1, co]))
    return tf.reshape(y, [-1, oh, ow, co])


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
    """Keras's stride-2 SAME ``Conv2D`` (same weights) that runs whole as
    :func:`strided_convolution` where :func:`matmul_convolution_applies`, else takes
    its kernel gradient from :func:`strided_weight_gradient` where
    :func:`matmul_weight_gradient_applies`; ``weight_gradient="native"``: neither."""

    def __init__(self, filters: int, kernel_size: int, weight_gradient: str = "auto", **kwargs):
        if weight_gradient not in WEIGHT_GRADIENTS:
            raise ValueError(f"weight_gradient must be one of {WEIGHT_GRADIENTS}")
        super().__init__(filters, kernel_size, strides=2, padding="same", **kwargs)
        self.weight_gradient = weight_gradient

    def convolution_op(self, inputs, kernel):
        positions = -(-inputs.shape[1] // 2) * -(-inputs.shape[2] // 2)
        k, dtype, mode = self.kernel_size[0], self.compute_dtype, self.weight_gradient
        if matmul_convolution_applies(positions, k, dtype, mode):
            op = strided_convolution
        elif matmul_weight_gradient_applies(positions, dtype, mode):
            op = _conv_with_matmul_weight_gradient
        else:
            return super().convolution_op(inputs, kernel)
        # a tensor, not the variable: the custom gradient is taken with respect to it
        return op(inputs, tf.cast(tf.convert_to_tensor(kernel), inputs.dtype))

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("strides", None)
        config.pop("padding", None)
        return {**config, "weight_gradient": self.weight_gradient}
