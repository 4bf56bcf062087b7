"""Partitions: invariants, reproducibility and the errors of impossible requests."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semfed.cli import main
from semfed.config import PartitionConfig
from semfed.partition import PartitionError, format_table, make_partition

C = 10


def labels(per_class: int, num_classes: int = C, seed: int = 0) -> np.ndarray:
    y = np.repeat(np.arange(num_classes), per_class)
    return np.random.default_rng(seed).permutation(y)


Y_TRAIN = labels(500)
Y_TEST = labels(100, seed=1)


def split(**kw):
    return make_partition(Y_TRAIN, Y_TEST, C, PartitionConfig(**kw))


def check_invariants(p, cfg: PartitionConfig):
    all_train = np.concatenate([c.train_indices for c in p.clients])
    assert np.unique(all_train).size == all_train.size, "training samples shared by two clients"
    for c in p.clients:
        own = set(Y_TRAIN[c.train_indices].tolist())
        assert own == set(c.classes)
        assert np.unique(c.test_indices).size == c.test_indices.size
        test_counts = np.bincount(Y_TEST[c.test_indices], minlength=C)
        for k in range(C):
            assert test_counts[k] == (cfg.test_shots if k in c.classes else 0)


def test_mway_counts_and_disjointness():
    cfg = PartitionConfig(num_clients=20, ways=5, shots=20, test_shots=10, seed=3)
    p = make_partition(Y_TRAIN, Y_TEST, C, cfg)
    assert p.num_clients == 20
    check_invariants(p, cfg)
    for c in p.clients:
        assert len(c.classes) == 5
        assert np.array_equal(
            np.bincount(Y_TRAIN[c.train_indices], minlength=C)[list(c.classes)], [20] * 5
        )
    np.testing.assert_allclose(p.weights(), np.full(20, 1 / 20))


def test_reproducible_with_seed_and_different_otherwise():
    a, b = (
        split(num_clients=5, ways=3, shots=30, seed=7),
        split(num_clients=5, ways=3, shots=30, seed=7),
    )
    c = split(num_clients=5, ways=3, shots=30, seed=8)
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()


def test_spread_varies_ways_and_shots_within_bounds():
    cfg = PartitionConfig(
        num_clients=20, ways=5, shots=20, ways_spread=2, shots_spread=2, test_shots=5
    )
    p = make_partition(Y_TRAIN, Y_TEST, C, cfg)
    check_invariants(p, cfg)
    ways = {len(c.classes) for c in p.clients}
    assert ways <= {3, 4, 5, 6, 7} and len(ways) > 1
    shots = set()
    for c in p.clients:
        counts = np.bincount(Y_TRAIN[c.train_indices], minlength=C)[list(c.classes)]
        assert len(set(counts.tolist())) == 1  # q_k is per client
        shots.add(int(counts[0]))
    assert shots <= {18, 19, 20, 21, 22} and len(shots) > 1


def test_constant_total_mode():
    for m in (1, 2, 5):
        cfg = PartitionConfig(num_clients=5, ways=m, total=1000, test_shots=5)
        p = make_partition(Y_TRAIN, Y_TEST, C, cfg)
        q = 1000 // (5 * m)
        for c in p.clients:
            assert c.num_train == m * q
        assert sum(c.num_train for c in p.clients) == 5 * m * q


def test_dirichlet_covers_total_and_is_skewed():
    cfg = PartitionConfig(scheme="dirichlet", num_clients=10, alpha=0.1, total=2000, test_shots=3)
    p = make_partition(Y_TRAIN, Y_TEST, C, cfg)
    sizes = [c.num_train for c in p.clients]
    assert sum(sizes) == 2000 and min(sizes) > 0
    all_train = np.concatenate([c.train_indices for c in p.clients])
    assert np.unique(all_train).size == 2000
    check_invariants(p, cfg)
    # alpha = 0.1 concentrates each client on few classes
    top_share = [np.bincount(Y_TRAIN[c.train_indices]).max() / c.num_train for c in p.clients]
    assert np.mean(top_share) > 0.5
    iid = make_partition(
        Y_TRAIN, Y_TEST, C, PartitionConfig(scheme="dirichlet", num_clients=10, alpha=1000.0)
    )
    top_iid = [np.bincount(Y_TRAIN[c.train_indices]).max() / c.num_train for c in iid.clients]
    assert np.mean(top_iid) < 0.2


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        (dict(ways=11), "partition.ways = 11 classes per client, but the dataset has only 10"),
        (dict(num_clients=20, ways=10, shots=100), "training split has 500"),
        (dict(num_clients=2, ways=2, shots=5, test_shots=101), "test split has only 100"),
        (dict(num_clients=5, ways=5, total=10), "partition.total = 10 is too small"),
        (dict(scheme="dirichlet", num_clients=3, total=10**6), "exceeds the 5000 training samples"),
    ],
)
def test_impossible_requests_name_the_numbers(kw, fragment):
    with pytest.raises(PartitionError) as err:
        split(**kw)
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    ("kw", "key"),
    [(dict(num_clients=0), "num_clients"), (dict(alpha=0.0), "alpha"), (dict(alpha=-1.0), "alpha")],
)
def test_config_rejects_k_below_one_and_bad_alpha(kw, key):
    with pytest.raises(ValueError, match=key):
        PartitionConfig(**kw)


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(1, 12),
    m=st.integers(1, 10),
    q=st.integers(1, 40),
    spread=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_mway_invariants_hold_for_any_feasible_request(k, m, q, spread, seed):
    cfg = PartitionConfig(
        num_clients=k,
        ways=m,
        shots=q + spread,
        ways_spread=spread,
        shots_spread=spread,
        test_shots=3,
        seed=seed,
    )
    try:
        p = make_partition(Y_TRAIN, Y_TEST, C, cfg)
    except PartitionError as err:
        assert "training split has 500" in str(err)
        return
    check_invariants(p, cfg)


@pytest.mark.slow
def test_summary_table_and_cli_json(tmp_path, capsys):
    cfg = PartitionConfig(num_clients=3, ways=2, shots=10, test_shots=4)
    p = make_partition(Y_TRAIN, Y_TEST, C, cfg)
    summary = p.summary(Y_TRAIN, Y_TEST)
    assert [c["id"] for c in summary["clients"]] == [0, 1, 2]
    for c, s in zip(p.clients, summary["clients"], strict=True):
        assert s["train_counts"] == {str(k): 10 for k in c.classes}
        assert s["test_counts"] == {str(k): 4 for k in c.classes}
    table = format_table(summary)
    assert len(table.splitlines()) == 2 + 3

    out = tmp_path / "split.json"
    status = main(
        [
            "partition",
            "--config",
            "experiments/configs/smoke.toml",
            "--json",
            str(out),
            "--set",
            "data.name=synthetic",
            "--set",
            "partition.shots=20",
            "--set",
            "partition.test_shots=5",
            "--set",
            "output.progress=false",
        ]
    )
    assert status == 0
    data = json.loads(out.read_text())
    assert len(data["clients"]) == 3
    assert set(data["clients"][0]) == {"id", "classes", "train_counts", "test_counts"}
    assert "client" in capsys.readouterr().out
