"""Uniform scalar quantization of feature components, and their bits.

The digital scheme (:mod:`phy.digital`) turns each real component x of a
power-normalised feature vector into ``bits`` bits: x is clipped to [-c, c]
and the interval is cut into L = 2^bits cells of width ``step = 2 c / L``; the
index i of x's cell travels as ``bits`` bits (natural binary, most significant
first), and the receiver puts the value at the cell's centre
``-c + (i + 1/2) step``. Inside [-c, c] the error is at most ``step / 2``.

The clipping level c is ``clip_std`` standard deviations of a component. After
:func:`phy.features.normalize_power` every vector's complex symbols have unit
mean power, so each real component has mean square 1/2 and the standard
deviation is known to both ends without side information: 1 / sqrt(2).
"""

from __future__ import annotations

import math

import tensorflow as tf

# Standard deviation of a real component of a power-normalised vector.
COMPONENT_STD = 1.0 / math.sqrt(2.0)


class UniformQuantizer:
    """A uniform mid-rise quantizer on [-clip, clip] with 2^bits levels.

    Parameters
    ----------
    bits : int
        Bits per value, >= 1.
    clip : float
        Clipping level c > 0 (in the units of the values).

    Attributes
    ----------
    levels : int
        2^bits.
    step : float
        Cell width 2 c / 2^bits.
    """

    def __init__(self, bits: int, clip: float) -> None:
        if bits < 1:
            raise ValueError(f"bits must be >= 1, got {bits}")
        if not clip > 0:
            raise ValueError(f"clip must be > 0, got {clip}")
        self.bits = int(bits)
        self.clip = float(clip)
        self.levels = 2**self.bits
        self.step = 2.0 * self.clip / self.levels

    @classmethod
    def for_features(cls, bits: int, clip_std: float) -> UniformQuantizer:
        """The quantizer of power-normalised feature components, clipped at
        ``clip_std`` standard deviations (:data:`COMPONENT_STD`)."""
        return cls(bits, clip_std * COMPONENT_STD)

    def indices(self, values: tf.Tensor) -> tf.Tensor:
        """Cell index of each value.

        Input
        -----
        values : [...], tf.float

        Output
        ------
        : [...], tf.int32 in [0, levels)
        """
        cell = tf.floor(self._to_cells(values))
        return tf.cast(tf.clip_by_value(cell, 0.0, self.levels - 1.0), tf.int32)

    def values(self, indices: tf.Tensor, dtype: tf.DType = tf.float32) -> tf.Tensor:
        """Cell centres ``-clip + (i + 1/2) step``.

        Input
        -----
        indices : [...], tf.int

        Output
        ------
        : [...], ``dtype``
        """
        return self._from_cells(tf.cast(indices, dtype) + 0.5)

    def quantize(self, values: tf.Tensor) -> tf.Tensor:
        """``values(indices(values))``: what an error-free link delivers; same shape and dtype."""
        return self.values(self.indices(values), values.dtype)

    def to_bits(self, indices: tf.Tensor, dtype: tf.DType = tf.float32) -> tf.Tensor:
        """Natural binary code of each index, most significant bit first.

        Input
        -----
        indices : [...], tf.int

        Output
        ------
        : [..., bits], ``dtype`` of 0s and 1s
        """
        bits = tf.bitwise.bitwise_and(
            tf.bitwise.right_shift(tf.cast(indices, tf.int32)[..., tf.newaxis], self._shifts()), 1
        )
        return tf.cast(bits, dtype)

    def from_bits(self, bits: tf.Tensor) -> tf.Tensor:
        """Inverse of :meth:`to_bits`.

        Input
        -----
        bits : [..., bits], tf.float or tf.int of 0s and 1s

        Output
        ------
        : [...], tf.int32
        """
        weights = tf.bitwise.left_shift(1, self._shifts())
        return tf.reduce_sum(tf.cast(bits, tf.int32) * weights, axis=-1)

    # The one affine map between values and cell coordinates (u = 0 at -clip, one
    # unit per cell) and the bit positions, most significant first: shared by
    # the encoding and decoding directions.

    def _to_cells(self, values: tf.Tensor) -> tf.Tensor:
        return (values + self.clip) / self.step

    def _from_cells(self, cells: tf.Tensor) -> tf.Tensor:
        return cells * self.step - self.clip

    def _shifts(self) -> tf.Tensor:
        return tf.range(self.bits - 1, -1, -1, dtype=tf.int32)
