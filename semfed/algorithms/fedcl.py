"""FedCL (Algorithm 1): split learning over the radio with SCG-generated centroids.

One round, for each client k:
  phi_k <- phi; for each local mini-batch: f = normalise(encoder_k(x)) (eq. 1),
  uplink -> f_hat (eq. 2), r = decoder(f_hat; phi_k) (eq. 3), L_k (eq. 10),
  update phi_k (eq. 4), g = dL_k/df_hat down the downlink -> g_check, update the
  encoder with g_check as the output gradient of f (eq. 6): the client never sees
  the channel or the decoder. Received features are gathered per class (eq. 7).
Then the SCG trains E' steps on the contrastive loss (eq. 8-9), F = SCG(z), and
phi <- sum_k D_k/D phi_k (eq. 5).

The two ablations share everything but the centroids:

* ``fedcl-nocentroid``: lambda = 0, no SCG: split learning with decoder
  averaging only.
* ``fedcl-meancentroid``: no SCG; the global centroid of class c is the
  D_k-weighted mean of the local centroids f_bar_k^c of the clients holding c
  (weights renormalised over those clients), as FL with centroid
  regularisation does. Classes nobody has reported yet (round 0) have no
  centroid and no regulariser.

Any of the three with ``algorithm.fedcl_encoders = "averaged"`` (a diagnostic,
not the paper): after the decoder, the BS also averages the clients' encoders
with weights D_k / D, batch norm local as in FedBN, and sends the average back.
The encoders then travel as parameters (counted in ``param_bits``; the airtime
counts the features only).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
import numpy as np
import tensorflow as tf

from semfed.algorithms.base import (
    BITS_PER_NUMBER,
    Algorithm,
    LocalPass,
    TrainingDiverged,
    VariableStore,
    assign_shared,
    cut_layer_gradients,
    guarded_step,
    mean_of,
    pass_draws,
    reset_optimizer,
    shared_parameter_count,
    weighted_average,
    weighted_class_means,
)
from semfed.config import ConfigError, RunConfig
from semfed.federation import Client
from semfed.losses import (
    scg_loss_infonce,
    scg_loss_printed,
)
from semfed.models import (
    build_decoder,
    build_scg,
    dtype_policy,
    normalization_weight_indices,
    scg_inputs,
)
from semfed.optimizers import make_optimizer
from semfed.radio import RadioLinks
from semfed.streams import generator
from semfed.workspace import Workspace

# algorithm.name -> where the global centroids come from
CENTROID_SOURCES = {"fedcl": "scg", "fedcl-meancentroid": "mean", "fedcl-nocentroid": "none"}


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
    centroid_mask: tf.Tensor | None = None,
    client: int | None = None,
    draws: dict[str, tuple[tf.Tensor, tf.Tensor]] | None = None,
):
    """Gradients of one FedCL mini-batch, without applying them.

    x float32 [B, H, W, C], y int32 [B], centroids float32 [C, d], SNRs scalars ->
    (loss, cross-entropy, regularizer, f_hat [B, d], decoder gradients, encoder
    gradients, g_check [B, d]). The encoder gradients come from the received
    gradient g_check only: the channel is never differentiated. ``centroid_mask``
    float32 [C] (0/1) leaves classes without a centroid out of the regularizer.
    ``client`` picks the client's links (:meth:`RadioLinks.uplink`); its code
    blocks are credited per pass (:meth:`Algorithm.local_pass`), not per call.
    ``draws``: this mini-batch's channels and noise per direction, drawn ahead
    (:func:`~semfed.algorithms.base.pass_draws`); a direction without them draws
    its own.
    """
    up, down = (draws or {}).get("uplink"), (draws or {}).get("downlink")
    return cut_layer_gradients(
        encoder,
        decoder,
        x,
        y,
        centroids,
        centroid_mask,
        lam,
        reduction,
        uplink=lambda f: radio.uplink(f[None], snr_ul[None], client, up)[0],
        downlink=lambda g: radio.downlink(g[None], snr_dl[None], client, down)[0],
    )


@dataclass
class RoundStats:
    """One FedCL round. Fields that do not apply to an ablation are None."""

    train_loss: float
    task_loss: float
    regularizer: float | None
    scg_loss: float | None
    separation: float | None
    # mean ||SCG(z_c)|| before any projection; diverges for eq. 9 as printed
    centroid_norm: float | None
    # Complex channel uses of the round, summed over clients: features up,
    # cut-layer gradients down; E * B * d/2 per client with the analog scheme,
    # E whole slots of codewords per batch with the digital one.
    uplink_symbols: int = 0
    downlink_symbols: int = 0
    uplink_symbols_per_sample: float = 0.0
    downlink_symbols_per_sample: float = 0.0
    param_bits: int = 0  # none travel, unless fedcl_encoders = "averaged"
    uplink_slots: int = 0  # the busiest client's slots (clients in parallel, phy.airtime)
    downlink_slots: int = 0
    airtime_ms: float = 0.0  # (uplink_slots + downlink_slots) * slot duration


class FedCL(Algorithm):
    """The BS's state (global decoder, SCG, z) and the FedCL round over given clients."""

    def __init__(
        self, config: RunConfig, clients: list[Client], radio: RadioLinks, num_classes: int
    ) -> None:
        super().__init__(config, clients, radio, num_classes)
        name = config.algorithm.name
        if name not in CENTROID_SOURCES:
            raise ConfigError(
                f"algorithm.name = {name!r} is not FedCL: one of {', '.join(CENTROID_SOURCES)}"
            )
        self.centroid_source = CENTROID_SOURCES[name]
        self.lam = 0.0 if self.centroid_source == "none" else config.algorithm.lam
        d = self.feature_dim
        policy = dtype_policy(config.training.precision)
        self.decoder = build_decoder(d, config.model.decoder_hidden, num_classes, policy)
        self.scg = None
        self.mean_centroids = None
        if self.centroid_source == "scg":
            self.scg = build_scg(config.model.scg_input_dim, config.model.scg_hidden, d, policy)
            self.z = tf.constant(
                scg_inputs(
                    num_classes,
                    config.model.scg_input_dim,
                    generator(config.training.seed, "scg_input"),
                )
            )
            self.scg_optimizer = make_optimizer(
                "adam", config.algorithm.scg_lr, config.training.fused_adam
            )
            self.scg_optimizer.build(self.scg.trainable_variables)
        elif self.centroid_source == "mean":
            self.mean_centroids = VariableStore(
                centroids=np.zeros((num_classes, d)), mask=np.zeros(num_classes)
            )
        # phi_k of every client starts from the same global decoder.
        for c in clients:
            c.decoder.set_weights(self.decoder.get_weights())
        # fedcl_encoders = "averaged" (identical encoders: RunConfig checks): positions
        # each client keeps (batch norm), and one common initial encoder (client 0's).
        self.encoder_local_indices: set[int] | None = None
        self.encoder_parameters = 0
        if config.algorithm.fedcl_encoders == "averaged":
            self.encoder_local_indices = set(normalization_weight_indices(clients[0].encoder))
            self.encoder_parameters = shared_parameter_count(
                clients[0].encoder.weights, self.encoder_local_indices
            )
            self._set_encoders(clients[0].encoder.get_weights())
        self._steps = self.compile_steps(self._make_client_step)
        if self.scg is not None:
            self._scg_step = self._make_scg_step()

    # ------------------------------------------------------------ centroids

    def global_centroids(self) -> tf.Tensor:
        """F, float32 [C, d], as used as regularisation targets.

        FedCL: F = SCG(z). With ``scg_normalize`` the SCG is trained on
        directions only, so its outputs are put on the sphere where the
        power-normalised features live (||f||^2 = d/2); otherwise they are used
        as they are. Mean centroids: the last aggregated ones (zero rows for
        classes without one). No centroids: zeros (lambda is 0).
        """
        if self.centroid_source == "mean":
            return tf.convert_to_tensor(self.mean_centroids["centroids"])
        if self.centroid_source == "none":
            return tf.zeros([self.num_classes, self.feature_dim])
        f = self.scg(self.z, training=False)
        if self.config.algorithm.scg_normalize:
            f = tf.math.l2_normalize(f, axis=1) * np.sqrt(self.feature_dim / 2)
        return f

    # ------------------------------------------------------------ compiled steps

    def _make_client_step(self, client: Client | Workspace, client_index: int | None = None):
        """``step(x, y, centroids, snr_ul, snr_dl[, centroid_mask])`` on ``client``'s
        models and the links of client ``client_index`` (:meth:`compile_steps`)."""
        encoder, decoder, radio = client.encoder, client.decoder, self.radio
        lam, reduction = self.lam, self.config.algorithm.reg_reduction

        def gradients(x, y, centroids, snr_ul, snr_dl, centroid_mask=None, draws=None):
            return split_learning_step(
                encoder,
                decoder,
                radio,
                x,
                y,
                centroids,
                snr_ul,
                snr_dl,
                lam,
                reduction,
                centroid_mask,
                client_index,
                draws,
            )

        draw = pass_draws(
            radio, ("uplink", "downlink"), self.config.training.batch_size, client_index
        )
        return guarded_step(client, gradients, draw)

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
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in [loss, *grads]])

            def apply():
                opt.apply_gradients(zip(grads, scg.trainable_variables, strict=True))
                return tf.constant(True)

            tf.cond(finite, apply, lambda: tf.constant(False))
            return loss, finite

        return step

    # ------------------------------------------------------------ one round

    def train_clients(self, round_index: int, rng: np.random.Generator) -> list[LocalPass]:
        """Algorithm 1, lines 4-14: every client in turn, each with phi_k <- phi."""
        centroids = self.global_centroids()
        extra = () if self.mean_centroids is None else (self.mean_centroids["mask"],)
        global_weights = self.decoder.get_weights()
        snr_ul, snr_dl = self.radio.uplink_snr_db, self.radio.downlink_snr_db
        passes = []
        for k, client in enumerate(self.clients):
            client.decoder.set_weights(global_weights)
            if self.config.algorithm.reset_optimizer:
                reset_optimizer(client.decoder_optimizer)
            passes.append(
                self.local_pass(
                    client,
                    self._steps[client.id],
                    (centroids, snr_ul[k], snr_dl[k], *extra),
                    round_index,
                    rng,
                )
            )
        return passes

    def aggregate(self, passes: list[LocalPass], round_index: int = -1) -> float | None:
        """Lines 15-16: new global centroids (SCG or mean), then eq. 5.

        Returns the SCG's last loss (None without an SCG).
        """
        local = [p.centroids() for p in passes]
        scg_loss = None
        if self.centroid_source == "scg":
            scg_loss = self.train_scg(
                tf.concat([c for c, _ in local], 0),
                tf.concat([k for _, k in local], 0),
                round_index,
            )
        elif self.centroid_source == "mean":
            sizes = np.array([c.num_train for c in self.clients], np.float64)
            means, mask = weighted_class_means(
                [(c.numpy(), k.numpy()) for c, k in local],
                sizes,
                self.num_classes,
                self.feature_dim,
            )
            self.mean_centroids.assign(centroids=means, mask=mask)
        dec_weights = [c.decoder.get_weights() for c in self.clients]
        self.decoder.set_weights(weighted_average(dec_weights, self.weights))
        if self.encoder_local_indices is not None:
            enc_weights = [c.encoder.get_weights() for c in self.clients]
            self._set_encoders(weighted_average(enc_weights, self.weights))
        return scg_loss

    def _set_encoders(self, weights: list[np.ndarray]) -> None:
        """Every client's encoder takes ``weights`` except its batch-norm positions."""
        for c in self.clients:
            assign_shared(c.encoder.weights, weights, self.encoder_local_indices)

    def run_round(self, round_index: int, rng: np.random.Generator) -> RoundStats:
        """Algorithm 1, lines 4-16."""
        passes = self.train_clients(round_index, rng)
        scg_loss = self.aggregate(passes, round_index)
        # Every mini-batch is full (batch_schedule), so a pass is samples / B batches;
        # each client at its own MCS under mcs = "auto".
        batch = self.config.training.batch_size
        samples = sum(p.samples for p in passes)
        up, down = (
            sum(
                p.samples // batch * self.radio.channel_uses(d, batch, k)
                for k, p in enumerate(passes)
            )
            for d in ("uplink", "downlink")
        )
        stats = RoundStats(
            train_loss=mean_of(passes, "losses"),
            task_loss=mean_of(passes, "task_losses"),
            regularizer=None,
            scg_loss=scg_loss,
            separation=None,
            centroid_norm=None,
            uplink_symbols=up,
            downlink_symbols=down,
            uplink_symbols_per_sample=up / samples,
            downlink_symbols_per_sample=down / samples,
            param_bits=2 * len(self.clients) * self.encoder_parameters * BITS_PER_NUMBER,
            **asdict(self.feature_airtime(passes)),
        )
        if self.centroid_source != "none":
            stats.regularizer = mean_of(passes, "regularizers")
            stats.separation = self.separation_ratio(_within_class_spread(passes))
            stats.centroid_norm = float(tf.reduce_mean(tf.norm(self._raw_centroids(), axis=1)))
        return stats

    def train_scg(
        self, local: tf.Tensor, classes: tf.Tensor, round_index: int = -1
    ) -> float | None:
        """E' steps of the SCG on every (client, class) centroid pair; returns the last loss.

        A non-finite loss or gradient is not applied and stops the run.
        """
        loss = None
        for i in range(self.config.algorithm.scg_steps):
            value, finite = self._scg_step(local, classes)
            if not bool(finite):
                raise TrainingDiverged(
                    f"NaN or Inf in the SCG loss or its gradient in round {round_index}, "
                    f"SCG step {i} (loss = {float(value)}); the update was not applied"
                )
            loss = float(value)
        return loss

    def _raw_centroids(self) -> tf.Tensor:
        """SCG(z) before any projection, or the mean centroids of the classes present."""
        if self.centroid_source == "scg":
            return self.scg(self.z, training=False)
        mask = self.mean_centroids["mask"].numpy() > 0
        return tf.boolean_mask(self.mean_centroids["centroids"], mask)

    def separation_ratio(self, within_spread: float) -> float:
        """Mean distance between global centroids over the mean within-class spread."""
        f = self.global_centroids().numpy()
        if self.centroid_source == "mean":
            f = f[self.mean_centroids["mask"].numpy() > 0]
        c = f.shape[0]
        if c < 2:
            return float("nan")
        dist = np.sqrt(((f[:, None, :] - f[None, :, :]) ** 2).sum(-1))
        between = dist.sum() / (c * (c - 1))
        return float(between / within_spread) if within_spread > 0 else float("inf")

    # ------------------------------------------------------------ state

    def models(self) -> dict[str, keras.Model]:
        out: dict[str, keras.Model] = {"decoder": self.decoder}
        if self.scg is not None:
            out["scg"] = self.scg
        if self.mean_centroids is not None:
            out["mean_centroids"] = self.mean_centroids
        return {**out, **self.client_models()}

    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        out = {"scg": self.scg_optimizer} if self.scg is not None else {}
        return {**out, **self.client_optimizers()}


def _within_class_spread(passes: list[LocalPass]) -> float:
    """Mean over classes of the spread sqrt(E||f_hat - mean_c||^2) of the received features.

    Pooled over clients, so two clients placing one class in different places
    count as spread: exactly the misalignment the global centroids should remove.
    """
    sums = tf.add_n([p.sums for p in passes])
    counts = tf.add_n([p.counts for p in passes])
    sq_sums = tf.add_n([p.sq_sums for p in passes])
    present = counts > 0
    n = tf.boolean_mask(counts, present)
    mean = tf.boolean_mask(sums, present) / n[:, None]
    var = tf.boolean_mask(sq_sums, present) / n - tf.reduce_sum(tf.square(mean), axis=1)
    return float(tf.reduce_mean(tf.sqrt(tf.maximum(var, 0.0))))
