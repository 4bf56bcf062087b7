"""Real feature vectors <-> unit-power complex symbols.

Convention: a real vector ``f`` of even size d carries d/2 complex symbols
``s[k] = f[2k] + j f[2k + 1]`` (consecutive pairs are the real and imaginary
parts). Normalised to unit mean symbol power, ``mean_k |s[k]|^2 = 1``, so
``||f||^2 = d / 2``: each real component has mean square 1/2.
"""

from __future__ import annotations

import tensorflow as tf

# Below this mean power a vector counts as zero; keeps the gradient of the
# normalisation finite for an all-zero input without touching real features.
_TINY_POWER = 1e-20


def normalize_power(features: tf.Tensor) -> tf.Tensor:
    """Scale each vector so that its complex symbols have unit mean power.

    Differentiable. An all-zero vector stays zero.

    Input
    -----
    features : [..., d], tf.float
        Real feature vectors, d even.

    Output
    ------
    : [..., d], tf.float
        ``features * sqrt(d / 2) / ||features||`` per vector, i.e. the symbols
        ``f[..., 0::2] + j f[..., 1::2]`` have mean ``|s|^2 = 1``.
    """
    features = tf.convert_to_tensor(features)
    # Mean symbol power = sum of squares / (d/2) = 2 * mean of squares.
    power = 2.0 * tf.reduce_mean(tf.square(features), axis=-1, keepdims=True)
    return features * tf.math.rsqrt(tf.maximum(power, tf.cast(_TINY_POWER, power.dtype)))


def features_to_symbols(features: tf.Tensor, cdtype: tf.DType = tf.complex64) -> tf.Tensor:
    """Pair consecutive real values into complex symbols.

    Input
    -----
    features : [..., d], tf.float
        Real vectors, d even.
    cdtype : tf.DType
        Complex dtype of the output.

    Output
    ------
    : [..., d / 2], ``cdtype``
        ``features[..., 0::2] + 1j * features[..., 1::2]``.
    """
    rdtype = cdtype.real_dtype
    pairs = tf.reshape(
        tf.cast(features, rdtype), tf.concat([tf.shape(features)[:-1], [-1, 2]], axis=0)
    )
    return tf.complex(pairs[..., 0], pairs[..., 1])


def symbols_to_features(symbols: tf.Tensor) -> tf.Tensor:
    """Inverse of :func:`features_to_symbols`.

    Input
    -----
    symbols : [..., n], tf.complex

    Output
    ------
    : [..., 2 n], tf.float
        Real and imaginary parts interleaved.
    """
    pairs = tf.stack([tf.math.real(symbols), tf.math.imag(symbols)], axis=-1)
    return tf.reshape(pairs, tf.concat([tf.shape(symbols)[:-1], [-1]], axis=0))
