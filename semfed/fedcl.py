"""FedCL's public names, kept here for existing imports.

The algorithm lives in :mod:`semfed.algorithms.fedcl`, the pieces every
algorithm shares in :mod:`semfed.algorithms.base`.
"""

from semfed.algorithms.base import TrainingDiverged, weighted_average
from semfed.algorithms.fedcl import FedCL, RoundStats, split_learning_step

__all__ = ["FedCL", "RoundStats", "TrainingDiverged", "split_learning_step", "weighted_average"]
