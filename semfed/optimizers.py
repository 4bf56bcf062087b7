"""The optimizers of the clients, the decoders and the SCG (paper: Adam at 0.001).

Keras 3's Adam updates a variable with about ten separate element-wise kernels
(the two moments, the bias-corrected step, the update), each a full pass over
the variable's memory. :class:`FusedAdam` is the same optimizer, the same
variables and the same state, whose update of each variable is TensorFlow's
single fused kernel (``ResourceApplyAdam``), one pass. Its update is Keras's:

    m <- m + (g - m) (1 - beta_1)
    v <- v + (g^2 - v) (1 - beta_2)
    theta <- theta - alpha m / (sqrt(v) + epsilon),
    alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t), t = iterations + 1

(epsilon is "epsilon hat", as in Keras), computed in another order, so it
agrees with Keras's Adam to rounding. On the DCGAN-like encoder of width 64
(921k weights) the update takes 4.4 ms with Keras's kernels and 2.0 ms fused
here (2 cores); ``benchmarks/optimizer_update.py`` measures it.
``training.fused_adam = false`` keeps Keras's own update.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class FusedAdam(keras.optimizers.Adam):
    """:class:`keras.optimizers.Adam` whose per-variable update is one fused kernel.

    Falls back to Keras's update where the fused kernel does not apply (AMSGrad,
    or a variable that is not a TensorFlow resource variable). ``fused_updates``
    counts the variables updated by the fused kernel at trace time (a check for
    tests, not a statistic of the run).
    """

    fused_updates = 0

    def update_step(self, gradient, variable, learning_rate):
        handle = getattr(variable, "handle", None)
        if self.amsgrad or handle is None or keras.backend.backend() != "tensorflow":
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        m = _handle(self._momentums[index])
        v = _handle(self._velocities[index])
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        type(self).fused_updates += 1
        return tf.raw_ops.ResourceApplyAdam(
            var=handle,
            m=m,
            v=v,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


def _handle(variable) -> tf.Tensor:
    """The resource handle of a Keras variable (its TensorFlow variable's)."""
    return getattr(variable, "value", variable).handle


def make_optimizer(name: str, lr: float, fused: bool = True) -> keras.optimizers.Optimizer:
    """``"adam"`` (:class:`FusedAdam`, or Keras's Adam when ``fused`` is False) or
    ``"sgd"`` (Keras's SGD) at learning rate ``lr``."""
    if name == "adam":
        return FusedAdam(learning_rate=lr) if fused else keras.optimizers.Adam(learning_rate=lr)
    return keras.optimizers.SGD(learning_rate=lr)
