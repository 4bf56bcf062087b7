"""The networks of FedCL: semantic encoders (clients), semantic decoder and SCG (BS).

* Semantic encoder alpha(x; theta_k) (eq. 1): DCGAN-like, 4x4 stride-2
  convolutions with LeakyReLU(0.2) and batch norm (none after the first
  convolution, as in DCGAN's discriminator), then a dense layer to d features.
  Heterogeneous clients get different widths, depths and kernel sizes.
* Semantic decoder beta(f_hat; phi) (eq. 3): a fully connected classifier.
* Semantic centroid generator sigma(z; varphi): two dense layers with a ReLU
  between, fed with one fixed random vector z_c per class.

``policy`` (``training.precision``): ``"float32"``, or ``"mixed_bfloat16"`` for
bfloat16 compute with float32 weights. The output layer of every network stays
float32 whatever the policy, so features, logits and centroids (and all that
crosses the radio link, and every loss) are float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from semfed.config import ModelConfig
from semfed.convolution import StridedConv2D
from semfed.normalization import FusedBatchNormalization


@dataclass(frozen=True)
class EncoderSpec:
    """Shape of one encoder variant: filters per stride-2 convolution and kernel size."""

    name: str
    filters: tuple[int, ...]
    kernel_size: int = 4


def encoder_family(width: int) -> tuple[EncoderSpec, ...]:
    """The heterogeneous variants, in the order they are assigned to clients (k mod 5)."""
    w = width
    return (
        EncoderSpec("dcgan", (w, 2 * w, 4 * w), 4),
        EncoderSpec("narrow", (max(1, w // 2), w, 2 * w), 4),
        EncoderSpec("shallow", (w, 2 * w), 4),
        EncoderSpec("deep", (w, 2 * w, 4 * w, 4 * w), 4),
        EncoderSpec("k3", (w, 2 * w, 4 * w), 3),
    )


def encoder_specs(config: ModelConfig, num_clients: int) -> list[EncoderSpec]:
    family = encoder_family(config.encoder_width)
    if config.encoders == "homogeneous":
        return [family[0]] * num_clients
    return [family[k % len(family)] for k in range(num_clients)]


def build_encoder(
    spec: EncoderSpec,
    input_shape: tuple[int, int, int],
    feature_dim: int,
    name: str,
    bn_momentum: float = 0.9,
    policy: str = "float32",
    weight_gradient: str = "auto",
    fused_batch_norm: bool = True,
) -> keras.Model:
    """Images uint8-scaled floats [B, H, W, C] in [-1, 1] -> features float32 [B, d].

    ``bn_momentum``: the batch-norm moving-average momentum (``model.bn_momentum``);
    ``policy``: the Keras dtype policy of the hidden layers; ``weight_gradient``
    (``training.weight_gradient``): how the convolutions' kernel gradients are
    computed (:class:`semfed.convolution.StridedConv2D`); ``fused_batch_norm``
    (``training.fused_batch_norm``): batch norm trained through one fused kernel
    (:class:`semfed.normalization.FusedBatchNormalization`) or Keras's own.
    """
    norm = FusedBatchNormalization if fused_batch_norm else keras.layers.BatchNormalization
    x_in = keras.Input(shape=input_shape)
    x = x_in
    for i, f in enumerate(spec.filters):
        x = StridedConv2D(f, spec.kernel_size, weight_gradient, use_bias=(i == 0), dtype=policy)(x)
        if i > 0:
            x = norm(momentum=bn_momentum, dtype=policy)(x)
        x = keras.layers.LeakyReLU(negative_slope=0.2, dtype=policy)(x)
    x = keras.layers.Flatten(dtype=policy)(x)
    out = keras.layers.Dense(feature_dim, dtype="float32")(x)
    return keras.Model(x_in, out, name=name)


def build_decoder(
    feature_dim: int, hidden: tuple[int, ...], num_classes: int, policy: str = "float32"
) -> keras.Model:
    """Received features float32 [B, d] -> class logits float32 [B, C]."""
    f_in = keras.Input(shape=(feature_dim,))
    x = f_in
    for h in hidden:
        x = keras.layers.Dense(h, activation="relu", dtype=policy)(x)
    out = keras.layers.Dense(num_classes, dtype="float32")(x)
    return keras.Model(f_in, out, name="decoder")


def build_scg(
    input_dim: int, hidden: int, feature_dim: int, policy: str = "float32"
) -> keras.Model:
    """SCG inputs z float32 [C, input_dim] -> global centroids F float32 [C, d]."""
    z_in = keras.Input(shape=(input_dim,))
    x = keras.layers.Dense(hidden, activation="relu", dtype=policy)(z_in)
    out = keras.layers.Dense(feature_dim, dtype="float32")(x)
    return keras.Model(z_in, out, name="scg")


POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


def dtype_policy(precision: str) -> str:
    """The Keras dtype policy of ``training.precision``."""
    return POLICIES[precision]


def normalization_weight_indices(model: keras.Model) -> list[int]:
    """Positions in ``model.weights`` of the batch-norm layers' variables
    (scale, offset, moving mean and variance)."""
    norm = {
        id(v)
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for v in layer.weights
    }
    return [i for i, w in enumerate(model.weights) if id(w) in norm]


def scg_inputs(num_classes: int, input_dim: int, rng: np.random.Generator) -> np.ndarray:
    """The fixed random per-class SCG inputs z_c, float32 [C, input_dim], drawn from
    ``rng`` (the run's SCG-input stream)."""
    return rng.standard_normal((num_classes, input_dim)).astype(np.float32)
