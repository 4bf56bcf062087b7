"""Independent random streams of a run, all derived from its one training seed.

A run draws randomness for several unrelated purposes: the initial weights, the
training (batch order and the training channel draws), the evaluation channel
draws, the SCG's fixed inputs z_c and the channel draws of a feature dump.
Each gets its own stream, seeded by ``numpy.random.SeedSequence([seed, TAG,
round])`` with a distinct tag, so no stream can replay another: before, the
evaluation stream of seed 0 at round r was seeded with the same number as the
training stream of seed r, and round 0's test channels replayed client 0's
first training draws.

The partition has its own seed (``partition.seed``) and its own generator in
:mod:`semfed.partition`; the cell drop of ``link.topology`` is stream ``drop`` of
``partition.seed`` (:mod:`semfed.cell`), so it changes with the split, not with
the training seed.
"""

from __future__ import annotations

import numpy as np

# One tag per purpose; never reuse or renumber a tag (it would change every run).
TAGS = {
    "init": 1,  # initial weights (Keras, TensorFlow, Python)
    "training": 2,  # batch schedule (NumPy) and training channel draws (Sionna)
    "evaluation": 3,  # evaluation channel draws, one stream per evaluated round
    "scg_input": 4,  # the SCG's fixed per-class inputs z_c
    "feature_dump": 5,  # channel draws of --dump-features
    "drop": 6,  # the users' places in a 38.901 cell (seeded by partition.seed)
}


def stream_seed(seed: int, tag: str, round_index: int = 0) -> int:
    """A 63-bit seed for stream ``tag`` of run seed ``seed`` (at ``round_index``).

    Distinct (seed, tag, round) triples give unrelated seeds (SeedSequence's hash).
    """
    if tag not in TAGS:
        raise KeyError(f"unknown random stream {tag!r}: one of {', '.join(TAGS)}")
    entropy = [int(seed), TAGS[tag], int(round_index)]
    state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def generator(seed: int, tag: str, round_index: int = 0) -> np.random.Generator:
    """A NumPy generator on stream ``tag`` of run seed ``seed``."""
    return np.random.default_rng(stream_seed(seed, tag, round_index))


def sionna_stream(seed: int, tag: str, round_index: int = 0) -> None:
    """Reset Sionna's TensorFlow generator (every channel and noise draw of the
    link) to stream ``tag`` of run seed ``seed``."""
    from sionna.phy import config

    from phy.seeding import sionna_seed

    config.tf_rng.reset_from_seed(sionna_seed(stream_seed(seed, tag, round_index)))


def sionna_state():
    """A copy of the state of Sionna's TensorFlow generator (every channel draw)."""
    from sionna.phy import config

    return config.tf_rng.state.numpy()


def set_sionna_state(state) -> None:
    """Put back a state of :func:`sionna_state`."""
    from sionna.phy import config

    config.tf_rng.state.assign(state)


__all__ = [
    "TAGS",
    "generator",
    "set_sionna_state",
    "sionna_state",
    "sionna_stream",
    "stream_seed",
]
