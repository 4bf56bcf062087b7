"""FedAvg (McMahan et al.) on the same radio link.

Every client holds the whole model: encoder -> power normalisation -> its
simulated uplink -> decoder, and trains it locally for the round's mini-batches
(the same schedule as FedCL) on the cross-entropy. The channel is part of the
client's forward pass; back-propagation treats it as the identity
(straight-through, :func:`semfed.algorithms.base.local_model_step`), and no
gradient crosses a downlink. The BS then averages the parameters, encoder and
decoder, with weights D_k / D and sends the average back to every client.
Averaging needs identical encoders: the config refuses
``model.encoders = "heterogeneous"``.

The encoders' normalization layers (batch-norm scale, offset and moving
statistics) follow ``algorithm.fedavg_norm``: ``"average"`` averages them with
the rest (the paper's baseline; on non-IID clients the averaged statistics
describe nobody's features), ``"local"`` keeps each client's own and never
sends them (FedBN, Li et al. 2021).

Each client keeps its own optimizer state across rounds, unless
``algorithm.reset_optimizer`` zeroes it whenever the average replaces the
client's weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import keras
import numpy as np
import tensorflow as tf

from semfed.algorithms.base import (
    BITS_PER_NUMBER,
    Algorithm,
    LocalPass,
    assign_shared,
    mean_of,
    reset_optimizer,
    shared_parameter_count,
    weighted_average,
)
from semfed.config import ConfigError, RunConfig
from semfed.federation import Client
from semfed.models import build_decoder, dtype_policy, normalization_weight_indices
from semfed.radio import RadioLinks


@dataclass
class FedAvgStats:
    train_loss: float
    task_loss: float
    uplink_symbols: int = 0  # the features stay inside each client's model
    downlink_symbols: int = 0
    param_bits: int = 0  # every parameter up and the average down, per client
    # Those bits at link.baseline_bits_per_symbol, clients in parallel (phy.airtime).
    uplink_slots: int = 0
    downlink_slots: int = 0
    airtime_ms: float = 0.0


class FedAvg(Algorithm):
    """The BS's global model (the average) and the clients' local copies."""

    def __init__(
        self, config: RunConfig, clients: list[Client], radio: RadioLinks, num_classes: int
    ) -> None:
        super().__init__(config, clients, radio, num_classes)
        shapes = [[tuple(w.shape) for w in c.encoder.weights] for c in clients]
        if any(s != shapes[0] for s in shapes):
            raise ConfigError(
                f"model.encoders = {config.model.encoders!r} is not allowed with "
                f"algorithm.name = {config.algorithm.name!r}: FedAvg needs identical encoders"
            )
        self.decoder = build_decoder(
            self.feature_dim,
            config.model.decoder_hidden,
            num_classes,
            dtype_policy(config.training.precision),
        )
        # Positions (in encoder.weights) that stay with each client under FedBN.
        self.local_indices: set[int] = set()
        if config.algorithm.fedavg_norm == "local":
            self.local_indices = set(normalization_weight_indices(clients[0].encoder))
        # One common initial model: client 0's encoder and a fresh decoder.
        self._broadcast(clients[0].encoder.get_weights() + self.decoder.get_weights())
        self.num_parameters = shared_parameter_count(
            [*clients[0].encoder.weights, *self.decoder.weights], self.local_indices
        )
        self._steps = self.compile_steps(
            lambda ws, k: self.make_local_model_step(ws, lam=0.0, client_index=k)
        )
        self._no_targets = tf.zeros([num_classes, self.feature_dim])
        self._no_mask = tf.zeros([num_classes])

    def _broadcast(self, weights: list[np.ndarray], reset: bool = False) -> None:
        """Every client takes ``weights`` (encoder then decoder), except the
        positions it keeps to itself (FedBN)."""
        n = len(self.clients[0].encoder.weights)
        self.decoder.set_weights(weights[n:])
        for c in self.clients:
            assign_shared(c.encoder.weights, weights[:n], self.local_indices)
            c.decoder.set_weights(weights[n:])
            if reset:
                reset_optimizer(c.encoder_optimizer)
                reset_optimizer(c.decoder_optimizer)

    def train_clients(self, round_index: int, rng: np.random.Generator) -> list[LocalPass]:
        """Local training of every client from the global model it holds."""
        snr_ul = self.radio.uplink_snr_db
        return [
            self.local_pass(
                client,
                self._steps[client.id],
                (self._no_targets, self._no_mask, snr_ul[k]),
                round_index,
                rng,
            )
            for k, client in enumerate(self.clients)
        ]

    def aggregate(self, passes: Sequence[LocalPass] = (), round_index: int = -1) -> None:
        """All parameters (encoder + decoder; normalization layers as
        ``algorithm.fedavg_norm`` says), weighted by D_k / D, sent back to every client."""
        local = [c.encoder.get_weights() + c.decoder.get_weights() for c in self.clients]
        self._broadcast(
            weighted_average(local, self.weights), reset=self.config.algorithm.reset_optimizer
        )

    def run_round(self, round_index: int, rng: np.random.Generator) -> FedAvgStats:
        passes = self.train_clients(round_index, rng)
        self.aggregate(passes, round_index)
        bits = [self.num_parameters * BITS_PER_NUMBER] * len(self.clients)
        return FedAvgStats(
            train_loss=mean_of(passes, "losses"),
            task_loss=mean_of(passes, "task_losses"),
            param_bits=2 * sum(bits),
            **asdict(self.payload_airtime(bits, bits)),
        )

    def models(self) -> dict[str, keras.Model]:
        return {"decoder": self.decoder, **self.client_models()}

    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        return self.client_optimizers()
