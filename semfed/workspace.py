"""Compiled steps shared by every client of one encoder architecture.

A ``tf.function`` that closes over a Keras model is traced (and optimised) once
per model object, so a step compiled per client costs K traces per run: with
K = 20 clients this was most of a short run's time. Instead, each distinct
architecture (encoder and decoder weight shapes) gets one :class:`Workspace`: a
private encoder, decoder and their optimizers, on which steps are compiled
once. A client *borrows* the workspace of its architecture for its local pass:
its weights and optimizer state are copied in, the compiled steps run, and the
results are copied back. The clients keep owning their models (checkpoints,
aggregation and evaluation read them as before); the copies are one compiled
call per client and direction, far below one mini-batch of compute.

Homogeneous encoders need one workspace; the heterogeneous family five.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keras
import tensorflow as tf

from semfed.federation import Client


def architecture(client: Client) -> tuple:
    """A key that is equal for clients whose encoder and decoder have the same weight shapes."""
    return (
        tuple(tuple(v.shape) for v in client.encoder.weights),
        tuple(tuple(v.shape) for v in client.decoder.weights),
    )


def _tf_variables(variables: list) -> list:
    """The TensorFlow variables behind Keras variables (``.value``), others as they are."""
    return [getattr(v, "value", v) for v in variables]


def _assign_all(dst: list, src: list) -> None:
    """``dst[i].assign(src[i])`` for all i (compiled per workspace: variables passed
    as arguments are traced by shape and dtype, not identity, so one trace serves
    every client of an architecture; eager, each assignment costs about 0.15 ms,
    and 50 of them per client and direction were 2 to 5 % of a K = 20 round)."""
    for d, s in zip(dst, src, strict=True):
        d.assign(s)


def _clone_optimizer(opt: keras.optimizers.Optimizer, model: keras.Model):
    clone = opt.__class__.from_config(opt.get_config())
    clone.build(model.trainable_variables)
    return clone


class Workspace:
    """An encoder, a decoder and their optimizers that clients of one architecture borrow.

    Has the attributes of a :class:`~semfed.federation.Client` that a compiled
    step uses (``encoder``, ``decoder``, ``encoder_optimizer``,
    ``decoder_optimizer``), so the same step builders serve both.
    """

    def __init__(self, template: Client) -> None:
        self.encoder = keras.models.clone_model(template.encoder)
        self.decoder = keras.models.clone_model(template.decoder)
        self.encoder_optimizer = _clone_optimizer(template.encoder_optimizer, self.encoder)
        self.decoder_optimizer = _clone_optimizer(template.decoder_optimizer, self.decoder)
        self.holder: int | None = None  # id of the client whose state is loaded
        self._assign_all = tf.function(_assign_all)

    @staticmethod
    def _variables(owner: Client | Workspace, optimizers: bool) -> list:
        out = [*owner.encoder.weights, *owner.decoder.weights]
        if optimizers:
            out += [*owner.encoder_optimizer.variables, *owner.decoder_optimizer.variables]
        return _tf_variables(out)

    def load(self, client: Client, optimizers: bool = True) -> None:
        self._assign_all(self._variables(self, optimizers), self._variables(client, optimizers))
        self.holder = client.id

    def store(self, client: Client) -> None:
        self._assign_all(self._variables(client, True), self._variables(self, True))


class Workspaces:
    """One :class:`Workspace` per distinct architecture among ``clients``."""

    def __init__(self, clients: list[Client]) -> None:
        self._by_arch: dict[tuple, Workspace] = {}
        self._of_client: dict[int, Workspace] = {}
        for c in clients:
            key = architecture(c)
            if key not in self._by_arch:
                self._by_arch[key] = Workspace(c)
            self._of_client[c.id] = self._by_arch[key]

    def __len__(self) -> int:
        return len(self._by_arch)

    def __iter__(self) -> Iterator[Workspace]:
        return iter(self._by_arch.values())

    def of(self, client: Client) -> Workspace:
        return self._of_client[client.id]

    @contextmanager
    def borrow(self, client: Client) -> Iterator[Workspace]:
        """Client ``client``'s models and optimizer state, loaded into its workspace,
        and written back to the client when the block ends without an error."""
        ws = self.of(client)
        ws.load(client)
        yield ws
        ws.store(client)

    def view(self, client: Client) -> Workspace:
        """The workspace with ``client``'s models loaded, for read-only use (evaluation)."""
        ws = self.of(client)
        ws.load(client, optimizers=False)
        return ws
