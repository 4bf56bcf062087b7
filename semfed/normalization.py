"""The encoders' batch normalization, with its training step in one fused kernel.

Keras 3's ``BatchNormalization`` trains with a chain of element-wise kernels: the
batch moments (mean, squared difference, mean), the normalization, scale and
offset, each a pass over the activations, and as many again in the backward
pass; under a bfloat16 policy it first casts the activations to float32 and the
result back. :class:`FusedBatchNormalization` is the same layer with the same
variables whose training step is TensorFlow's ``FusedBatchNormV3`` (oneDNN's on
a CPU, cuDNN's on a GPU), forward and backward one kernel each:

    y = gamma * (x - mean) / sqrt(var + eps) + beta,  mean, var over (B, H, W)
    moving_mean <- momentum * moving_mean + (1 - momentum) * mean
    moving_var  <- momentum * moving_var  + (1 - momentum) * var

with ``var`` the biased batch variance, as Keras uses it (the fused kernel
returns the unbiased one, n / (n - 1) times larger; it is scaled back). The
statistics are computed in float32 whatever the compute dtype. The same
equations as Keras's, summed in another order: equal to rounding
(``tests/test_normalization.py``). Inference, masks, renormalization and inputs
other than 4-D channels-last keep Keras's own path.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class FusedBatchNormalization(keras.layers.BatchNormalization):
    """Keras's ``BatchNormalization`` over the last axis of [B, H, W, C] inputs,
    trained through one fused kernel (module docstring)."""

    def _fused_applies(self, inputs, training, mask) -> bool:
        return bool(
            training
            and self.trainable
            and mask is None
            and not self.renorm
            and not self.synchronized
            and len(inputs.shape) == 4
            and self.axis % 4 == 3
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fused_applies(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        # the layer's variables are float32 whatever the policy (Keras keeps them so)
        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones([channels], "float32")
        beta = self.beta if self.center else tf.zeros([channels], "float32")
        outputs, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(
            inputs, gamma, beta, epsilon=self.epsilon, is_training=True
        )
        shape = tf.shape(inputs)
        n = tf.cast(shape[0] * shape[1] * shape[2], "float32")  # values per channel
        variance = unbiased * ((n - 1.0) / n)
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
        return tf.cast(outputs, self.compute_dtype)
