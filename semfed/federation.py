"""The federation's state: clients with their data and encoders, the BS with its decoder.

Built once per run from the config, the dataset and the partition. Holds no
algorithm: FedCL (and later baselines) act on it round by round.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import keras
import numpy as np

from semfed.config import RunConfig
from semfed.models import build_decoder, build_encoder, dtype_policy, encoder_specs
from semfed.optimizers import make_optimizer
from semfed.partition import Partition

if TYPE_CHECKING:
    from semfed.data import ImageDataset


def scale_images(x: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, C] -> float32 in [-1, 1] (the DCGAN convention)."""
    return (x.astype(np.float32) / 127.5) - 1.0


@dataclass
class Client:
    """Client k: its data, its personalized encoder, and the BS's decoder instance phi_k."""

    id: int
    x_train: np.ndarray  # float32 [D_k, H, W, C]
    y_train: np.ndarray  # int32 [D_k]
    x_test: np.ndarray  # float32 [n_k, H, W, C]
    y_test: np.ndarray  # int32 [n_k]
    encoder: keras.Model
    encoder_optimizer: keras.optimizers.Optimizer
    decoder: keras.Model  # phi_k, held by the BS
    decoder_optimizer: keras.optimizers.Optimizer
    classes: tuple[int, ...] = field(default=())

    @property
    def num_train(self) -> int:
        return int(self.y_train.size)


def batch_schedule(
    num_samples: int,
    batch_size: int,
    config_epochs: int,
    iterations: int | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Indices int64 [E, B] of one round's local mini-batches.

    E = ``iterations`` when set, else epochs * ceil(D_k / B). Every batch is full:
    the last one wraps into the next shuffle, so each epoch sees every sample and
    the compiled step keeps one input shape.
    """
    steps = (
        iterations
        if iterations is not None
        else config_epochs * math.ceil(num_samples / batch_size)
    )
    need = steps * batch_size
    order = [rng.permutation(num_samples) for _ in range(math.ceil(need / num_samples))]
    return np.concatenate(order)[:need].reshape(steps, batch_size)


def build_clients(config: RunConfig, data: ImageDataset, partition: Partition) -> list[Client]:
    """One Client per partition entry, with its encoder variant and optimizers."""
    shape = tuple(int(s) for s in data.x_train.shape[1:])
    specs = encoder_specs(config.model, partition.num_clients)
    policy = dtype_policy(config.training.precision)
    clients = []
    for split, spec in zip(partition.clients, specs, strict=True):
        encoder = build_encoder(
            spec,
            shape,
            config.model.feature_dim,
            f"encoder_{split.id}",
            bn_momentum=config.model.bn_momentum,
            policy=policy,
            weight_gradient=config.training.weight_gradient,
            fused_batch_norm=config.training.fused_batch_norm,
        )
        decoder = build_decoder(
            config.model.feature_dim, config.model.decoder_hidden, data.num_classes, policy
        )
        fused = config.training.fused_adam
        enc_opt = make_optimizer(config.training.client_optimizer, config.training.client_lr, fused)
        dec_opt = make_optimizer(config.training.server_optimizer, config.training.server_lr, fused)
        enc_opt.build(encoder.trainable_variables)
        dec_opt.build(decoder.trainable_variables)
        clients.append(
            Client(
                id=split.id,
                x_train=scale_images(data.x_train[split.train_indices]),
                y_train=data.y_train[split.train_indices].astype(np.int32),
                x_test=scale_images(data.x_test[split.test_indices]),
                y_test=data.y_test[split.test_indices].astype(np.int32),
                encoder=encoder,
                encoder_optimizer=enc_opt,
                decoder=decoder,
                decoder_optimizer=dec_opt,
                classes=split.classes,
            )
        )
    return clients
