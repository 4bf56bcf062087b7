"""What every federated algorithm shares: the round interface, the local pass, aggregation.

An algorithm is a small strategy object over the federation (clients with their
data and models, the radio): :meth:`Algorithm.run_round` does one communication
round and returns its statistics, :meth:`Algorithm.models` and
:meth:`Algorithm.optimizers` give every piece of state a checkpoint must hold,
and :meth:`Algorithm.make_evaluator` says how the clients' test sets are scored.
``semfed.train`` owns the run loop, evaluation schedule, checkpoints and result
files and is the same for every algorithm.

The client-side work is the same in every algorithm: one round's mini-batch
schedule (:func:`semfed.federation.batch_schedule`), a compiled step per batch
that computes gradients and applies them, with a pass redone under a guard
that skips NaN or Inf updates when a check at its end finds one
(:class:`GuardedStep`), and per-class sums of the received features (eq. 7).
:meth:`Algorithm.local_pass` runs it; the algorithms differ only in the step's
gradients and in what the BS does with the results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from semfed.config import RunConfig
from semfed.evaluation import Evaluator
from semfed.federation import Client, batch_schedule
from semfed.losses import (
    class_feature_sums,
    local_centroids,
    regularized_task_loss,
)
from semfed.radio import (
    Airtime,
    RadioLinks,
    normalize_power,
    payload_slots,
    round_airtime,
)
from semfed.streams import set_sionna_state, sionna_state
from semfed.workspace import Workspace, Workspaces

BITS_PER_NUMBER = 32  # parameters and prototypes travel as float32


class TrainingDiverged(RuntimeError):
    """A loss or gradient became NaN or Inf; names the round and the client."""


def weighted_average(weight_lists: list[list[np.ndarray]], weights: np.ndarray) -> list[np.ndarray]:
    """Eq. 5: sum_k w_k phi_k for lists of arrays with the same shapes."""
    return [
        sum(w * ws[i] for w, ws in zip(weights, weight_lists, strict=True)).astype(np.float32)
        for i in range(len(weight_lists[0]))
    ]


def assign_shared(variables: list[tf.Variable], weights: list[np.ndarray], local: set[int]) -> None:
    """An average arrives: ``variables`` take ``weights``, except the positions in
    ``local`` that each client keeps to itself (batch norm under FedBN)."""
    for i, (v, w) in enumerate(zip(variables, weights, strict=True)):
        if i not in local:
            v.assign(w)


def shared_parameter_count(variables: list[tf.Variable], local: set[int]) -> int:
    """How many numbers an average of ``variables`` sends (positions in ``local`` stay)."""
    return int(sum(np.prod(v.shape) for i, v in enumerate(variables) if i not in local))


def reset_optimizer(optimizer: keras.optimizers.Optimizer) -> None:
    """Zero an optimizer's state: its step count and every slot (Adam's moments);
    the learning rate is kept. Used when a client's weights are replaced by an
    average, whose moments the old ones do not describe."""
    keep = {id(v) for v in _learning_rate_variables(optimizer)}
    for v in optimizer.variables:
        if id(v) not in keep:
            v.assign(tf.zeros_like(v))


def _learning_rate_variables(optimizer: keras.optimizers.Optimizer) -> list:
    return [v for v in optimizer.variables if v.path.split("/")[-1] == "learning_rate"]


def weighted_class_means(
    local: list[tuple[np.ndarray, np.ndarray]],
    weights: np.ndarray,
    num_classes: int,
    feature_dim: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per class, the weighted mean of the clients' local centroids of that class.

    local: per client (centroids float32 [P_k, d], their classes int [P_k]);
    weights float [K], one per client, renormalised over the clients that hold
    each class -> (means float32 [C, d], mask float32 [C], 1 where some client
    holds the class, else 0 and a zero row).

    Unit weights give FedProto's unweighted mean of the clients' prototypes;
    weights D_k give the mean centroids of ``fedcl-meancentroid``.
    """
    sums = np.zeros((num_classes, feature_dim), np.float64)
    totals = np.zeros(num_classes, np.float64)
    for (centroids, classes), w in zip(local, weights, strict=True):
        classes = np.asarray(classes, np.int64)
        sums[classes] += float(w) * np.asarray(centroids, np.float64)
        totals[classes] += float(w)
    present = totals > 0
    means = np.where(present[:, None], sums / np.where(present, totals, 1.0)[:, None], 0.0)
    return means.astype(np.float32), present.astype(np.float32)


class VariableStore:
    """Server state that is not a network (prototypes, mean centroids).

    It exposes ``weights`` (a list of tf.Variables) like a Keras model, so
    :mod:`semfed.checkpoint` saves and restores it with the models and a
    resumed run continues bit for bit.
    """

    def __init__(self, **initial: np.ndarray) -> None:
        self._vars = {
            name: tf.Variable(np.asarray(value, np.float32), trainable=False, name=name)
            for name, value in initial.items()
        }

    @property
    def weights(self) -> list[tf.Variable]:
        return list(self._vars.values())

    def __getitem__(self, name: str) -> tf.Variable:
        return self._vars[name]

    def assign(self, **values: np.ndarray) -> None:
        for name, value in values.items():
            self._vars[name].assign(np.asarray(value, np.float32))


@dataclass
class LocalPass:
    """What one client's local iterations of one round produced.

    losses, task_losses, regularizers: per mini-batch; sums float32 [C, d],
    counts float32 [C], sq_sums float32 [C]: per-class sums of the received
    features, their number and the sums of their squared norms (eq. 7 and the
    within-class spread); samples: E * B, the samples that went through the
    encoder this round; num_batches: E, the mini-batches (one link call each
    way in FedCL) of ``config.training.batch_size`` samples.
    """

    losses: list[float]
    task_losses: list[float]
    regularizers: list[float]
    sums: tf.Tensor
    counts: tf.Tensor
    sq_sums: tf.Tensor
    samples: int
    num_batches: int

    def centroids(self) -> tuple[tf.Tensor, tf.Tensor]:
        """Eq. 7: (local centroids float32 [P, d], their classes int32 [P])."""
        return local_centroids(self.sums, self.counts)


def cut_layer_gradients(
    encoder: keras.Model,
    decoder: keras.Model,
    x: tf.Tensor,
    y: tf.Tensor,
    targets: tf.Tensor,
    target_mask: tf.Tensor | None,
    lam: float,
    reduction: str,
    uplink: Callable[[tf.Tensor], tf.Tensor],
    downlink: Callable[[tf.Tensor], tf.Tensor],
):
    """Gradients of one mini-batch of encoder -> uplink -> decoder, not applied.

    The channel is never differentiated: the encoder's gradient is whatever
    ``downlink`` makes of dL/df_hat (the received gradient in FedCL, dL/df_hat
    itself when the client holds the whole model). ``uplink`` maps power-normalised
    features [B, d] to received ones [B, d].

    x float32 [B, H, W, C], y int32 [B], targets float32 [C, d] (centroids or
    prototypes), target_mask float32 [C] or None (classes without a target are
    left out of the regulariser) -> (loss, cross-entropy, regularizer, f_hat
    [B, d], decoder gradients, encoder gradients, gradient used at f [B, d]).
    """
    with tf.GradientTape() as enc_tape:
        f = normalize_power(encoder(x, training=True))
    f_hat = uplink(tf.stop_gradient(f))
    with tf.GradientTape() as dec_tape:
        dec_tape.watch(f_hat)
        logits = decoder(f_hat, training=True)
        loss, ce, reg = regularized_task_loss(
            logits, y, f_hat, targets, lam, reduction, target_mask
        )
    grads = dec_tape.gradient(loss, [*decoder.trainable_variables, f_hat])
    dec_grads, g = grads[:-1], grads[-1]
    g_used = downlink(g)
    enc_grads = enc_tape.gradient(f, encoder.trainable_variables, output_gradients=g_used)
    return loss, ce, reg, f_hat, dec_grads, enc_grads, g_used


def local_model_step(
    encoder: keras.Model,
    decoder: keras.Model,
    radio: RadioLinks,
    x: tf.Tensor,
    y: tf.Tensor,
    targets: tf.Tensor,
    target_mask: tf.Tensor,
    snr_ul: tf.Tensor,
    lam: float,
    reduction: str,
    client: int | None = None,
    draws: dict[str, tuple[tf.Tensor, tf.Tensor]] | None = None,
):
    """Gradients of one local mini-batch of a client that holds the whole model.

    FedAvg and FedProto: encoder -> power normalisation -> simulated uplink ->
    decoder, all on the client. The uplink sits inside the model and is treated
    as the identity in back-propagation (straight-through): dL/df := dL/df_hat.
    No gradient crosses a downlink and the channel is never differentiated,
    exactly as in FedCL with a noiseless downlink. Shapes as
    :func:`cut_layer_gradients`; snr_ul is a scalar; ``client`` picks the
    client's link (:meth:`RadioLinks.uplink`); ``draws["uplink"]``, when given, is
    this mini-batch's channels and noise drawn ahead (:func:`pass_draws`).
    """
    up = (draws or {}).get("uplink")
    return cut_layer_gradients(
        encoder,
        decoder,
        x,
        y,
        targets,
        target_mask,
        lam,
        reduction,
        uplink=lambda f: radio.uplink(f[None], snr_ul[None], client, up)[0],
        downlink=lambda g: g,
    )


def pass_draws(
    radio: RadioLinks, directions: tuple[str, ...], batch_size: int, client: int | None
) -> Callable[[tf.Tensor], dict[str, tuple[tf.Tensor, tf.Tensor]]] | None:
    """``draw(E)``: the channels and noise of a pass of E mini-batches of client
    ``client``'s links in ``directions``, drawn ahead in one call per direction
    (:meth:`RadioLinks.draw`), as ``{direction: (h [E, ...], noise [E, ...])}``;
    None when no direction draws ahead (:meth:`RadioLinks.can_draw_ahead`)."""
    ahead = tuple(d for d in directions if radio.can_draw_ahead(d, client))
    if not ahead:
        return None

    def draw(num_batches: tf.Tensor) -> dict[str, tuple[tf.Tensor, tf.Tensor]]:
        return {d: radio.draw(d, num_batches, batch_size, client) for d in ahead}

    return draw


def _batch_draws(draws: dict | None, i) -> dict:
    """Mini-batch i's share of a pass's draws, as keyword arguments of a step."""
    if draws is None:
        return {}
    return {"draws": {d: (h[i], noise[i]) for d, (h, noise) in draws.items()}}


class GuardedStep:
    """A compiled training step in two forms that agree wherever everything is finite.

    ``step(x, y, *args)`` (the guarded form, one mini-batch) applies the gradients
    with the encoder and decoder optimizers only when all of them, the loss and
    the checked tensor are finite; otherwise it restores the encoder's batch-norm
    statistics (they move in the forward pass) and applies nothing.
    ``step.fast_pass(x_all, y_all, schedule, *args)`` runs a whole local pass in
    one compiled call: a loop over the rows of ``schedule`` (int32 [E, B], indices
    into the client's data x_all [D_k, H, W, C], y_all [D_k]) that applies every
    step's gradients unconditionally. No finiteness test stands between a
    backward pass and its updates, so the optimizer's updates of the late layers
    overlap the back-propagation through the early ones (the guard cost 5 to
    10 % of a K = 20 round here), and no Python runs between mini-batches. At the
    end it checks the losses and the workspace's weights and optimizer variables
    once (a NaN or Inf in any gradient leaves a non-finite weight or optimizer
    moment behind). :meth:`Algorithm.local_pass` replays a pass that fails the
    check with the guarded form, step by step, from the same state and the same
    channel draws, so the outcome is exactly that of the guarded form throughout.

    The guarded form returns ``(loss, ce, reg, f_hat, finite)`` for its mini-batch;
    ``fast_pass`` returns them stacked over the pass (loss [E], ..., f_hat
    [E, B, d], finite [E]: the losses' finiteness) and ``ok``, a scalar that is
    True when the losses and every floating-point workspace variable are finite.
    """

    def __init__(
        self,
        client: Client | Workspace,
        gradients: Callable,
        draw: Callable[[tf.Tensor], dict] | None = None,
    ) -> None:
        encoder, decoder = client.encoder, client.decoder
        enc_opt, dec_opt = client.encoder_optimizer, client.decoder_optimizer

        def apply(dec_grads, enc_grads):
            dec_opt.apply_gradients(zip(dec_grads, decoder.trainable_variables, strict=True))
            enc_opt.apply_gradients(zip(enc_grads, encoder.trainable_variables, strict=True))

        @tf.function
        def guarded(x, y, *args, **draws):
            stats = [tf.identity(v) for v in encoder.non_trainable_variables]
            loss, ce, reg, f_hat, dec_grads, enc_grads, checked = gradients(x, y, *args, **draws)
            finite = tf.reduce_all(
                [
                    tf.reduce_all(tf.math.is_finite(t))
                    for t in [loss, checked, *dec_grads, *enc_grads]
                ]
            )

            def apply_all():
                apply(dec_grads, enc_grads)
                return tf.constant(True)

            def undo():
                for v, old in zip(encoder.non_trainable_variables, stats, strict=True):
                    v.assign(old)
                return tf.constant(False)

            tf.cond(finite, apply_all, undo)
            return loss, ce, reg, f_hat, finite

        def fast_step(x, y, *args, **draws):
            loss, ce, reg, f_hat, dec_grads, enc_grads, _ = gradients(x, y, *args, **draws)
            apply(dec_grads, enc_grads)
            out = [tf.cast(t, tf.float32) for t in (loss, ce, reg, f_hat)]
            return (*out, tf.math.is_finite(out[0]))

        @tf.function
        def fast_pass(x_all, y_all, schedule, *args):
            n = tf.shape(schedule)[0]
            arrays = tuple(tf.TensorArray(dtype, size=n) for dtype in [tf.float32] * 4 + [tf.bool])
            # the pass's channels and noise, drawn before its first mini-batch
            draws = None if draw is None else draw(n)

            def body(i, arrays):
                idx = schedule[i]
                x, y = tf.gather(x_all, idx), tf.gather(y_all, idx)
                out = fast_step(x, y, *args, **_batch_draws(draws, i))
                return i + 1, tuple(a.write(i, o) for a, o in zip(arrays, out, strict=True))

            # parallel_iterations = 1: each step reads the weights the last one wrote
            _, arrays = tf.while_loop(
                lambda i, _: i < n, body, (tf.constant(0), arrays), parallel_iterations=1
            )
            outputs = [a.stack() for a in arrays]
            models = [*encoder.weights, *decoder.weights]
            state = [_value(v) for v in [*models, *enc_opt.variables, *dec_opt.variables]]
            ok = tf.reduce_all(
                [tf.reduce_all(outputs[-1])]
                + [tf.reduce_all(tf.math.is_finite(v)) for v in state if v.dtype.is_floating]
            )
            return (*outputs, ok)

        self.guarded = guarded
        self.draw = draw
        self._fast_pass = fast_pass
        self._concrete = None

    def __call__(self, x, y, *args, **draws):
        return self.guarded(x, y, *args, **draws)

    def fast_pass(self, x_all: tf.Tensor, y_all: tf.Tensor, schedule: tf.Tensor, *args):
        """A whole local pass, unguarded, in one call (traced once: any D_k and E).

        ``args`` are passed as tensors (a Python number would be traced in as a
        constant, and the one traced function serves every client)."""
        args = tuple(
            a if isinstance(a, tf.Tensor | tf.Variable) else tf.convert_to_tensor(a) for a in args
        )
        if self._concrete is None:
            specs = [
                tf.TensorSpec([None, *x_all.shape[1:]], x_all.dtype),
                tf.TensorSpec([None], y_all.dtype),
                tf.TensorSpec([None, schedule.shape[1]], schedule.dtype),
            ]
            self._concrete = self._fast_pass.get_concrete_function(*specs, *args)
        return self._concrete(x_all, y_all, schedule, *args)

    @property
    def tracing_count(self) -> int:
        """Traces of the fast pass (one per step object whatever K and D_k)."""
        return self._fast_pass.experimental_get_tracing_count()


def _value(v):
    """The TensorFlow variable behind a Keras variable (``.value``)."""
    return getattr(v, "value", v)


def guarded_step(
    client: Client | Workspace,
    gradients: Callable,
    draw: Callable[[tf.Tensor], dict] | None = None,
) -> GuardedStep:
    """Compile a training step around a gradient function (:class:`GuardedStep`).

    ``client`` is a :class:`Workspace` (one step per architecture, borrowed by
    every client of that architecture) or anything with the same four models.
    ``gradients(x, y, *args[, draws=...])`` returns (loss, ce, reg, f_hat, decoder
    gradients, encoder gradients, another tensor to check). ``draw`` (from
    :func:`pass_draws`, or None): the link's draws of a pass of E mini-batches,
    made before the first; mini-batch i's share reaches ``gradients`` as ``draws``.
    """
    return GuardedStep(client, gradients, draw)


class Algorithm:
    """Base of the federated algorithms: shared state and the client-side loop.

    Subclasses implement :meth:`run_round`, :meth:`models` and
    :meth:`optimizers`, and override :meth:`make_evaluator` when the global
    decoder ``self.decoder`` is not what scores the test sets.
    """

    def __init__(
        self, config: RunConfig, clients: list[Client], radio: RadioLinks, num_classes: int
    ) -> None:
        self.config = config
        self.clients = clients
        self.radio = radio
        self.num_classes = num_classes
        self.feature_dim = config.model.feature_dim
        sizes = np.array([c.num_train for c in clients], dtype=np.float64)
        self.weights = sizes / sizes.sum()  # D_k / D
        self.workspaces = Workspaces(clients)
        self._train_data: dict[int, tuple] = {}
        self._radio_index = {c.id: k for k, c in enumerate(clients)}  # RadioLinks' client k

    def _train_tensors(self, client: Client) -> tuple[tf.Tensor, tf.Tensor]:
        """Client ``client``'s training set as tensors (x [D_k, H, W, C], y int32 [D_k]),
        made once and kept on the device: a pass gathers its mini-batches from them
        inside the compiled loop. The arrays are made read-only (a change in place
        would not reach the tensors); arrays put in their place are converted anew."""
        held = self._train_data.get(client.id)
        if held is None or held[0] is not client.x_train or held[1] is not client.y_train:
            tensors = (tf.constant(client.x_train), tf.constant(client.y_train, tf.int32))
            client.x_train.flags.writeable = False
            client.y_train.flags.writeable = False
            held = (client.x_train, client.y_train, *tensors)
            self._train_data[client.id] = held
        return held[2], held[3]

    def compile_steps(self, make_step: Callable[[Workspace, int], Callable]) -> dict[int, Callable]:
        """``make_step(workspace, k)`` once per architecture and radio group -> the step
        of every client id.

        k is the index of the first client of the group; clients on the same links
        (:meth:`RadioLinks.group`: all of them unless ``link.mcs = "auto"``) share
        the step.
        """
        built: dict[tuple, Callable] = {}
        steps = {}
        for k, c in enumerate(self.clients):
            ws = self.workspaces.of(c)
            key = (id(ws), self.radio.group(k))
            if key not in built:
                built[key] = make_step(ws, k)
            steps[c.id] = built[key]
        return steps

    # ------------------------------------------------------------ interface

    def run_round(self, round_index: int, rng: np.random.Generator):
        """One communication round; returns a dataclass of statistics with at least
        ``train_loss``, ``uplink_symbols``, ``downlink_symbols``, ``param_bits``,
        ``uplink_slots``, ``downlink_slots`` and ``airtime_ms`` (:mod:`phy.airtime`)."""
        raise NotImplementedError

    def aggregate(self, passes: list[LocalPass], round_index: int = -1):
        """The BS's work after the clients' local passes of round ``round_index``."""
        raise NotImplementedError

    def models(self) -> dict[str, keras.Model]:
        """Every network (and :class:`VariableStore`) of the run, by a stable name."""
        raise NotImplementedError

    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        raise NotImplementedError

    def make_evaluator(self, batch_size: int) -> Evaluator:
        """Each client's encoder and uplink; ``global`` protocol: the global decoder."""
        return Evaluator(
            self.clients, self.workspaces, self.radio, batch_size, global_decoder=self.decoder
        )

    def client_models(self) -> dict[str, keras.Model]:
        """Each client's encoder and its decoder instance (FedCL: phi_k at the BS)."""
        out: dict[str, keras.Model] = {}
        for c in self.clients:
            out[f"encoder_{c.id}"] = c.encoder
            out[f"decoder_{c.id}"] = c.decoder
        return out

    def client_optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        out: dict[str, keras.optimizers.Optimizer] = {}
        for c in self.clients:
            out[f"encoder_{c.id}"] = c.encoder_optimizer
            out[f"decoder_{c.id}"] = c.decoder_optimizer
        return out

    # ------------------------------------------------------------ shared work

    def local_pass(
        self,
        client: Client,
        step: GuardedStep,
        step_args: tuple,
        round_index: int,
        rng: np.random.Generator,
    ) -> LocalPass:
        """Client ``client``'s local iterations of one round.

        Draws the round's batch schedule from ``rng``, borrows the client's
        workspace, runs the pass in one call of ``step.fast_pass`` (from
        :meth:`compile_steps`; ``step_args`` follow each mini-batch's x and y),
        redoes it step by step with ``step.guarded`` when the check at its end
        finds a NaN or Inf (:class:`GuardedStep`), and accumulates the received
        features per class. Raises :class:`TrainingDiverged` (the bad update is
        not applied) on a NaN or Inf.
        """
        cfg = self.config.training
        schedule = batch_schedule(
            client.num_train, cfg.batch_size, cfg.local_epochs, cfg.local_iterations, rng
        )
        x_all, y_all = self._train_tensors(client)
        draws, counts = sionna_state(), self.radio.counter_state()
        # code blocks: the step shared by a link's clients counts on the link, and the
        # pass's difference is this client's
        crediting = self.radio.crediting(self._radio_index[client.id])
        with crediting, self.workspaces.borrow(client) as ws:
            *outputs, ok = step.fast_pass(x_all, y_all, tf.constant(schedule, tf.int32), *step_args)
            if not bool(ok):
                # Something was NaN or Inf: redo the pass from the client's state,
                # the same channel draws and block counts, with the guard at every step.
                ws.load(client)
                set_sionna_state(draws)
                self.radio.set_counter_state(counts)
                outputs = _guarded_pass(step, x_all, y_all, schedule, step_args)
        loss, ce, reg, f_hat, finite = outputs
        # One device-to-host transfer per pass, not per mini-batch: a non-finite
        # step was not applied (the guard), so finding it after the pass is enough.
        finite = finite.numpy()
        if not finite.all():
            bad = int(np.argmin(finite))
            raise TrainingDiverged(
                f"NaN or Inf in the loss or a gradient in round {round_index}, client "
                f"{client.id}, mini-batch {bad} (loss = {float(loss[bad])}); the update was "
                "not applied"
            )
        labels = client.y_train[schedule.reshape(-1)]
        f_hat = tf.reshape(f_hat, [-1, self.feature_dim])
        sums, counts = class_feature_sums(f_hat, labels, self.num_classes)
        sq_sums = tf.math.unsorted_segment_sum(
            tf.reduce_sum(tf.square(f_hat), axis=1), labels, self.num_classes
        )
        losses, ces, regs = (t.numpy().astype(float).tolist() for t in (loss, ce, reg))
        return LocalPass(
            losses, ces, regs, sums, counts, sq_sums, int(schedule.size), len(schedule)
        )

    def feature_airtime(self, passes: list[LocalPass]) -> Airtime:
        """Airtime of a split-learning round: each client's mini-batches go up as
        features and come down as gradients, one link call of B samples each way
        in the slots of the client's own link (:meth:`RadioLinks.slots`: analog
        packing, or whole slots of codewords at the client's MCS), the clients in
        parallel (OFDMA)."""
        batch = self.config.training.batch_size
        up, down = (
            [p.num_batches * self.radio.slots(d, batch, k) for k, p in enumerate(passes)]
            for d in ("uplink", "downlink")
        )
        return round_airtime(self.config.link, up, down)

    def payload_airtime(self, uplink_bits: list[int], downlink_bits: list[int]) -> Airtime:
        """Airtime of digital payloads, bits per client each way, at
        ``link.baseline_bits_per_symbol`` on the same grid, the clients in parallel."""
        link = self.config.link
        return round_airtime(
            link,
            [payload_slots(link, b) for b in uplink_bits],
            [payload_slots(link, b) for b in downlink_bits],
        )

    def make_local_model_step(
        self, client: Client | Workspace, lam: float, *, client_index: int | None = None
    ):
        """The compiled step of a client holding the whole model (FedAvg, FedProto):
        ``step(x, y, targets [C, d], target_mask [C], snr_ul)``, on the links of
        client ``client_index`` (:meth:`compile_steps`)."""
        encoder, decoder, radio = client.encoder, client.decoder, self.radio
        reduction = self.config.algorithm.reg_reduction

        def gradients(x, y, targets, target_mask, snr_ul, draws=None):
            return local_model_step(
                encoder,
                decoder,
                radio,
                x,
                y,
                targets,
                target_mask,
                snr_ul,
                lam,
                reduction,
                client_index,
                draws,
            )

        batch = self.config.training.batch_size
        return guarded_step(client, gradients, pass_draws(radio, ("uplink",), batch, client_index))


def _guarded_pass(
    step: GuardedStep, x_all: tf.Tensor, y_all: tf.Tensor, schedule: np.ndarray, args: tuple
) -> list[tf.Tensor]:
    """``step.guarded`` on every mini-batch of ``schedule`` in turn -> (loss, ce, reg,
    f_hat, finite), each stacked over the pass; the pass's link draws are made first,
    as ``step.fast_pass`` makes them."""
    draws = None if step.draw is None else step.draw(tf.constant(len(schedule), tf.int32))
    outputs = [
        step.guarded(tf.gather(x_all, idx), tf.gather(y_all, idx), *args, **_batch_draws(draws, i))
        for i, idx in enumerate(tf.constant(schedule, tf.int32))
    ]
    return [tf.stack(t) for t in zip(*outputs, strict=True)]


def mean_of(passes: list[LocalPass], field: str) -> float:
    """Mean over every mini-batch of every client of a per-batch statistic."""
    return float(np.mean([v for p in passes for v in getattr(p, field)]))
