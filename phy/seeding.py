"""Seeding Sionna's random generators so that different seeds give independent draws.

All of the link's randomness (bits, channels, noise, topologies) comes from
Sionna's global generators in ``sionna.phy.config``. Setting
``sionna.phy.config.seed = n`` makes a run reproducible, but TensorFlow's
``Generator.reset_from_seed(n)`` puts n in the Philox *counter*: seed n + 1
replays seed n's stream shifted by four numbers, so runs with seeds 0, 1, 2...
are almost identical rather than independent. :func:`set_seed` spreads the
user's seed over the 64-bit counter first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import sionna.phy


def sionna_seed(seed: int) -> int:
    """A well-spread 63-bit Sionna seed for a user seed.

    Input
    -----
    seed : int, >= 0

    Output
    ------
    : int
        Deterministic in ``seed``; distinct seeds start Philox streams about
        2^60 numbers apart.
    """
    state = np.random.SeedSequence(seed).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def set_seed(seed: int) -> int:
    """Seed ``sionna.phy.config`` (TensorFlow, NumPy and Python generators).

    Input
    -----
    seed : int, >= 0

    Output
    ------
    : int
        The value given to ``sionna.phy.config.seed``.
    """
    value = sionna_seed(seed)
    sionna.phy.config.seed = value
    return value


@contextmanager
def seeded_apart(seed: int) -> Iterator[None]:
    """Run a block on :func:`set_seed` (``seed``) and give the global generators
    back their state afterwards, so that the block draws nothing from the
    caller's streams (e.g. measuring a table in the middle of a seeded run).

    Input
    -----
    seed : int, >= 0
    """
    config = sionna.phy.config
    tf_state = config.tf_rng.state.numpy()
    np_state = config.np_rng.bit_generator.state
    py_state = config.py_rng.getstate()
    seed_before = config._seed  # the seed property's value; its setter reseeds
    set_seed(seed)
    try:
        yield
    finally:
        config.tf_rng.state.assign(tf_state)
        config.np_rng.bit_generator.state = np_state
        config.py_rng.setstate(py_state)
        config._seed = seed_before
