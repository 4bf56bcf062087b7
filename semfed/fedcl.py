"""FedCL (Algorithm 1): split learning over the radio with SCG-generated centroids.

One round, for each client k:
  phi_k <- phi; for each local mini-batch: f = normalise(encoder_k(x)) (eq. 1),
  uplink -> f_hat (eq. 2), r = decoder(f_hat; phi_k) (eq. 3), L_k (eq. 10),
  update phi_k (eq. 4), g = dL_k/df_hat down the downlink -> g_check, update the
  encoder with g_check as the output gradient of f (eq. 6): the client never sees
  the channel or the decoder. Received features are gathered per class (eq. 7).
Then the SCG trains E' steps on the contrastive loss (eq. 8-9), F = SCG(z), and
phi <- sum_k D_k/D phi_k (eq. 5).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from semfed.config import RunConfig
from semfed.federation import Client, batch_schedule, make_optimizer
from semfed.losses import (
    class_feature_sums,
    local_centroids,
    regularized_task_loss,
    scg_loss_infonce,
    scg_loss_printed,
)
from semfed.models import build_decoder, build_scg, scg_inputs
from semfed.radio import RadioLinks, normalize_power


class TrainingDiverged(RuntimeError):
    """A loss or gradient became NaN or Inf; names the round and the client."""


def weighted_average(weight_lists: list[list[np.ndarray]], weights: np.ndarray) -> list[np.ndarray]:
    """Eq. 5: sum_k w_k phi_k for lists of arrays with the same shapes."""
    return [
        sum(w * ws[i] for w, ws in zip(weights, weight_lists, strict=True)).astype(np.float32)
        for i in range(len(weight_lists[0]))
    ]


def split_learning_step(
    encoder: keras.Model,
    decoder: keras.Model,
    radio: RadioLinks,
    x: tf.Tensor,
    y: tf.Tensor,
    centroids: tf.Tensor,
    snr_ul: tf.Tensor,
    snr_dl: tf.Tensor,
    lam: float,
    reduction: str,
):
    """Gradients of one FedCL mini-batch, without applying them.

    x float32 [B, H, W, C], y int32 [B], centroids float32 [C, d], SNRs scalars ->
    (loss, cross-entropy, regularizer, f_hat [B, d], decoder gradients, encoder
    gradients, g_check [B, d]). The encoder gradients come from the received
    gradient g_check only: the channel is never differentiated.
    """
    with tf.GradientTape() as enc_tape:
        f = normalize_power(encoder(x, training=True))
    f_hat = radio.uplink(tf.stop_gradient(f)[None], snr_ul[None])[0]
    with tf.GradientTape() as dec_tape:
        dec_tape.watch(f_hat)
        logits = decoder(f_hat, training=True)
        loss, ce, reg = regularized_task_loss(logits, y, f_hat, centroids, lam, reduction)
    grads = dec_tape.gradient(loss, [*decoder.trainable_variables, f_hat])
    dec_grads, g = grads[:-1], grads[-1]
    g_check = radio.downlink(g[None], snr_dl[None])[0]
    enc_grads = enc_tape.gradient(f, encoder.trainable_variables, output_gradients=g_check)
    return loss, ce, reg, f_hat, dec_grads, enc_grads, g_check


@dataclass
class RoundStats:
    train_loss: float
    task_loss: float
    regularizer: float
    scg_loss: float
    separation: float
    centroid_norm: float  # mean ||SCG(z_c)|| before any projection; diverges for eq. 9 as printed


class FedCL:
    """The BS's state (global decoder, SCG, z) and the FedCL round over given clients."""

    def __init__(
        self, config: RunConfig, clients: list[Client], radio: RadioLinks, num_classes: int
    ) -> None:
        self.config = config
        self.clients = clients
        self.radio = radio
        self.num_classes = num_classes
        d = config.model.feature_dim
        self.feature_dim = d
        sizes = np.array([c.num_train for c in clients], dtype=np.float64)
        self.weights = sizes / sizes.sum()
        self.decoder = build_decoder(d, config.model.decoder_hidden, num_classes)
        self.scg = build_scg(config.model.scg_input_dim, config.model.scg_hidden, d)
        self.z = tf.constant(
            scg_inputs(num_classes, config.model.scg_input_dim, config.training.seed + 1)
        )
        self.scg_optimizer = make_optimizer("adam", config.algorithm.scg_lr)
        self.scg_optimizer.build(self.scg.trainable_variables)
        # phi_k of every client starts from the same global decoder.
        for c in clients:
            c.decoder.set_weights(self.decoder.get_weights())
        self._steps = {c.id: self._make_client_step(c) for c in clients}
        self._scg_step = self._make_scg_step()

    # ------------------------------------------------------------ centroids

    def global_centroids(self) -> tf.Tensor:
        """F = SCG(z), float32 [C, d], as used as regularisation targets.

        With ``scg_normalize`` the SCG is trained on directions only, so its
        outputs are put on the sphere where the power-normalised features live
        (||f||^2 = d/2); otherwise they are used as they are.
        """
        f = self.scg(self.z, training=False)
        if self.config.algorithm.scg_normalize:
            f = tf.math.l2_normalize(f, axis=1) * np.sqrt(self.feature_dim / 2)
        return f

    # ------------------------------------------------------------ compiled steps

    def _make_client_step(self, client: Client):
        alg = self.config.algorithm
        encoder, decoder = client.encoder, client.decoder
        enc_opt, dec_opt = client.encoder_optimizer, client.decoder_optimizer
        radio = self.radio

        @tf.function
        def step(x, y, centroids, snr_ul, snr_dl):
            # Batch-norm statistics move in the forward pass; keep them to undo a bad step.
            stats = [tf.identity(v) for v in encoder.non_trainable_variables]
            loss, ce, reg, f_hat, dec_grads, enc_grads, g_check = split_learning_step(
                encoder, decoder, radio, x, y, centroids, snr_ul, snr_dl, alg.lam,
                alg.reg_reduction,
            )
            dec_vars, enc_vars = decoder.trainable_variables, encoder.trainable_variables
            finite = tf.reduce_all(
                [
                    tf.reduce_all(tf.math.is_finite(t))
                    for t in [loss, g_check, *dec_grads, *enc_grads]
                ]
            )

            def apply():
                dec_opt.apply_gradients(zip(dec_grads, dec_vars, strict=True))
                enc_opt.apply_gradients(zip(enc_grads, enc_vars, strict=True))
                return tf.constant(True)

            def undo():
                for v, old in zip(encoder.non_trainable_variables, stats, strict=True):
                    v.assign(old)
                return tf.constant(False)

            tf.cond(finite, apply, undo)
            return loss, ce, reg, f_hat, finite

        return step

    def _make_scg_step(self):
        alg = self.config.algorithm
        scg, z, opt = self.scg, self.z, self.scg_optimizer
        d = self.feature_dim

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, d], tf.float32),
                tf.TensorSpec([None], tf.int32),
            ]
        )
        def step(local, classes):
            with tf.GradientTape() as tape:
                centroids = scg(z, training=True)
                if alg.scg_loss == "printed":
                    loss = scg_loss_printed(local, classes, centroids)
                else:
                    loss = scg_loss_infonce(
                        local, classes, centroids, alg.temperature, alg.scg_normalize
                    )
            grads = tape.gradient(loss, scg.trainable_variables)
            opt.apply_gradients(zip(grads, scg.trainable_variables, strict=True))
            return loss

        return step

    # ------------------------------------------------------------ one round

    def run_round(self, round_index: int, rng: np.random.Generator) -> RoundStats:
        """Algorithm 1, lines 4-16, for every client in turn."""
        cfg = self.config
        centroids = self.global_centroids()
        global_weights = self.decoder.get_weights()
        snr_ul, snr_dl = self.radio.uplink_snr_db, self.radio.downlink_snr_db
        losses, ces, regs, dec_weights = [], [], [], []
        all_local, all_classes = [], []
        spread_num = spread_den = 0.0
        for k, client in enumerate(self.clients):
            client.decoder.set_weights(global_weights)
            schedule = batch_schedule(
                client.num_train,
                cfg.training.batch_size,
                cfg.training.local_epochs,
                cfg.training.local_iterations,
                rng,
            )
            sums = tf.zeros([self.num_classes, self.feature_dim])
            counts = tf.zeros([self.num_classes])
            sq_sums = tf.zeros([self.num_classes])
            step = self._steps[client.id]
            for idx in schedule:
                loss, ce, reg, f_hat, finite = step(
                    tf.constant(client.x_train[idx]),
                    tf.constant(client.y_train[idx]),
                    centroids,
                    snr_ul[k],
                    snr_dl[k],
                )
                if not bool(finite):
                    raise TrainingDiverged(
                        f"NaN or Inf in the loss or a gradient in round {round_index}, client "
                        f"{client.id} (loss = {float(loss)}); the update was not applied"
                    )
                losses.append(float(loss))
                ces.append(float(ce))
                regs.append(float(reg))
                s, n = class_feature_sums(
                    f_hat, idx_labels := client.y_train[idx], self.num_classes
                )
                sums += s
                counts += n
                sq_sums += tf.math.unsorted_segment_sum(
                    tf.reduce_sum(tf.square(f_hat), axis=1), idx_labels, self.num_classes
                )
            local, classes = local_centroids(sums, counts)
            all_local.append(local)
            all_classes.append(classes)
            # Within-class spread: E||f_hat||^2 - ||mean||^2 per class present.
            present = counts > 0
            var = tf.boolean_mask(sq_sums, present) / tf.boolean_mask(
                counts, present
            ) - tf.reduce_sum(tf.square(local), axis=1)
            spread_num += float(tf.reduce_sum(tf.sqrt(tf.maximum(var, 0.0))))
            spread_den += float(tf.shape(var)[0])
            dec_weights.append(client.decoder.get_weights())

        scg_loss = self.train_scg(tf.concat(all_local, 0), tf.concat(all_classes, 0))
        self.decoder.set_weights(weighted_average(dec_weights, self.weights))
        return RoundStats(
            train_loss=float(np.mean(losses)),
            task_loss=float(np.mean(ces)),
            regularizer=float(np.mean(regs)),
            scg_loss=scg_loss,
            separation=self.separation_ratio(spread_num / max(spread_den, 1.0)),
            centroid_norm=float(tf.reduce_mean(tf.norm(self.scg(self.z, training=False), axis=1))),
        )

    def train_scg(self, local: tf.Tensor, classes: tf.Tensor) -> float:
        """E' steps of the SCG on every (client, class) centroid pair; returns the last loss."""
        loss = float("nan")
        for _ in range(self.config.algorithm.scg_steps):
            loss = float(self._scg_step(local, classes))
        return loss

    def separation_ratio(self, within_spread: float) -> float:
        """Mean distance between global centroids over the mean within-class spread."""
        f = self.global_centroids().numpy()
        dist = np.sqrt(((f[:, None, :] - f[None, :, :]) ** 2).sum(-1))
        c = f.shape[0]
        between = dist.sum() / (c * (c - 1))
        return float(between / within_spread) if within_spread > 0 else float("inf")

    # ------------------------------------------------------------ state

    def models(self) -> dict[str, keras.Model]:
        out: dict[str, keras.Model] = {"decoder": self.decoder, "scg": self.scg}
        for c in self.clients:
            out[f"encoder_{c.id}"] = c.encoder
            out[f"decoder_{c.id}"] = c.decoder
        return out

    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        out = {"scg": self.scg_optimizer}
        for c in self.clients:
            out[f"encoder_{c.id}"] = c.encoder_optimizer
            out[f"decoder_{c.id}"] = c.decoder_optimizer
        return out
