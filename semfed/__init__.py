"""semfed: federated contrastive learning for personalized semantic communication."""

__version__ = "0.1.0"
