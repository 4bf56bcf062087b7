"""FedProto (Tan et al.) on the same radio link.

Every client holds its own whole model (encoder -> power normalisation -> its
simulated uplink -> its own decoder; encoders may differ) and trains it locally
for the round's mini-batches on

    CE(r, y) + lambda * MSE(f_hat, P^y)

(``algorithm.lam``; the distance averaged or summed over d as
``algorithm.reg_reduction`` says), where P^y is the global prototype of the
label. A sample whose class has no global prototype yet (round 0) gets no
regulariser. The uplink is treated as the identity in back-propagation
(straight-through), as in FedAvg. The client's local prototypes are the
per-class means of its received features over the round's mini-batches (eq. 7);
the global prototype of a class is the unweighted mean of the local prototypes
of the clients that hold it, as FedProto's authors do. No parameters are
averaged.

Evaluation (:mod:`semfed.evaluation`) scores FedProto's shared model, the
nearest global prototype in Euclidean distance, as the ``global`` protocol,
and the client's own decoder as ``personal`` (and ``masked``).
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
    VariableStore,
    mean_of,
    weighted_class_means,
)
from semfed.config import RunConfig
from semfed.evaluation import Evaluator
from semfed.federation import Client
from semfed.radio import RadioLinks


@dataclass
class FedProtoStats:
    train_loss: float
    task_loss: float
    regularizer: float  # batch mean of the prototype distance (before lambda), 0 in round 0
    num_prototypes: int  # classes with a global prototype after the round
    uplink_symbols: int = 0  # the features stay inside each client's model
    downlink_symbols: int = 0
    param_bits: int = 0  # local prototypes up, global prototypes down
    # Those bits at link.baseline_bits_per_symbol, clients in parallel (phy.airtime).
    uplink_slots: int = 0
    downlink_slots: int = 0
    airtime_ms: float = 0.0


class FedProto(Algorithm):
    """The BS's global prototypes and the clients' own models."""

    def __init__(
        self, config: RunConfig, clients: list[Client], radio: RadioLinks, num_classes: int
    ) -> None:
        super().__init__(config, clients, radio, num_classes)
        self.prototypes = VariableStore(
            prototypes=np.zeros((num_classes, self.feature_dim)), mask=np.zeros(num_classes)
        )
        lam = config.algorithm.lam
        self._steps = self.compile_steps(
            lambda ws, k: self.make_local_model_step(ws, lam, client_index=k)
        )

    def global_prototypes(self) -> tuple[tf.Tensor, tf.Tensor]:
        """(P float32 [C, d], mask float32 [C]: 1 where class c has a prototype)."""
        return (
            tf.convert_to_tensor(self.prototypes["prototypes"]),
            tf.convert_to_tensor(self.prototypes["mask"]),
        )

    def train_clients(self, round_index: int, rng: np.random.Generator) -> list[LocalPass]:
        """Local training of every client towards last round's global prototypes."""
        prototypes, mask = self.global_prototypes()
        snr_ul = self.radio.uplink_snr_db
        return [
            self.local_pass(
                client, self._steps[client.id], (prototypes, mask, snr_ul[k]), round_index, rng
            )
            for k, client in enumerate(self.clients)
        ]

    def aggregate(self, passes: list[LocalPass], round_index: int = -1) -> list[int]:
        """Global prototypes = unweighted mean over clients of their local prototypes.

        Returns the number of local prototypes each client sent.
        """
        local = [tuple(t.numpy() for t in p.centroids()) for p in passes]
        prototypes, mask = weighted_class_means(
            local, np.ones(len(local)), self.num_classes, self.feature_dim
        )
        self.prototypes.assign(prototypes=prototypes, mask=mask)
        return [len(classes) for _, classes in local]

    def run_round(self, round_index: int, rng: np.random.Generator) -> FedProtoStats:
        passes = self.train_clients(round_index, rng)
        sent = self.aggregate(passes, round_index)
        num_prototypes = int(self.prototypes["mask"].numpy().sum())
        up = [n * self.feature_dim * BITS_PER_NUMBER for n in sent]
        down = [num_prototypes * self.feature_dim * BITS_PER_NUMBER] * len(self.clients)
        return FedProtoStats(
            train_loss=mean_of(passes, "losses"),
            task_loss=mean_of(passes, "task_losses"),
            regularizer=mean_of(passes, "regularizers"),
            num_prototypes=num_prototypes,
            param_bits=sum(up) + sum(down),
            **asdict(self.payload_airtime(up, down)),
        )

    def make_evaluator(self, batch_size: int) -> Evaluator:
        """``global`` protocol: nearest global prototype; ``personal``: own decoder."""
        return Evaluator(
            self.clients, self.workspaces, self.radio, batch_size, prototypes=self.global_prototypes
        )

    def models(self) -> dict[str, keras.Model]:
        return {"prototypes": self.prototypes, **self.client_models()}

    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        return self.client_optimizers()
