"""The federated algorithms, one strategy per module, over one shared round engine.

``algorithm.name`` picks one: ``fedcl`` and its ablations ``fedcl-nocentroid``
and ``fedcl-meancentroid`` (:mod:`semfed.algorithms.fedcl`), ``fedavg``
(:mod:`semfed.algorithms.fedavg`) and ``fedproto``
(:mod:`semfed.algorithms.fedproto`). They share the data, the clients' models,
the radio, the client-side loop (:mod:`semfed.algorithms.base`), evaluation and
the run loop of :mod:`semfed.train`.
"""

from __future__ import annotations

from semfed.algorithms.base import Algorithm, TrainingDiverged, weighted_average
from semfed.algorithms.fedavg import FedAvg
from semfed.algorithms.fedcl import FedCL, RoundStats, split_learning_step
from semfed.algorithms.fedproto import FedProto
from semfed.config import RunConfig
from semfed.federation import Client
from semfed.radio import RadioLinks


def build_algorithm(
    config: RunConfig, clients: list[Client], radio: RadioLinks, num_classes: int
) -> Algorithm:
    """The algorithm ``config.algorithm.name`` over the built clients and radio."""
    name = config.algorithm.name
    if name == "fedavg":
        return FedAvg(config, clients, radio, num_classes)
    if name == "fedproto":
        return FedProto(config, clients, radio, num_classes)
    return FedCL(config, clients, radio, num_classes)


__all__ = [
    "Algorithm",
    "FedAvg",
    "FedCL",
    "FedProto",
    "RoundStats",
    "TrainingDiverged",
    "build_algorithm",
    "split_learning_step",
    "weighted_average",
]
