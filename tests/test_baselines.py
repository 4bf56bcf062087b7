"""Baselines on the same radio link: FedAvg, FedProto and FedCL's two ablations.

Aggregation rules against hand computations, the FedAvg/heterogeneous refusal,
a tiny run of every algorithm over the AWGN link (learning, communication
accounting, resume), and ``semfed compare``.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import typing

import numpy as np
import pytest
import tensorflow as tf
from tiny_setting import TINY_SETTING, ideal_federation

import semfed.algorithms.base
import semfed.checkpoint
from semfed.algorithms import FedAvg, FedCL, FedProto, TrainingDiverged
from semfed.checkpoint import load_checkpoint, save_checkpoint
from semfed.cli import main
from semfed.config import ALGORITHMS, AlgorithmConfig, ConfigError, load_config
from semfed.data import load_dataset
from semfed.evaluation import nearest_prototype
from semfed.losses import regularized_task_loss
from semfed.partition import make_partition
from semfed.train import RunDirError, run_training

# The tiny setting of test_fedcl.py with identical encoders, so that FedAvg can
# run and every algorithm shares one config but algorithm.name; round 0 is
# trained but not evaluated.
TINY = [
    *TINY_SETTING,
    "model.encoders=homogeneous",
    "training.rounds=3",
    "evaluation.every=2",
]
K, D_K, B, D = 3, 3 * 32, 16, 64  # clients, samples per client, batch, feature dim


def tiny_config(*extra: str):
    return load_config(None, [*TINY, *extra])


@pytest.fixture(scope="module")
def data():
    return load_dataset(tiny_config().data, progress=False)


def build(data, name: str, *extra: str):
    """An untrained federation of ``name`` over an ideal link, 2 local iterations."""
    cfg = tiny_config(f"algorithm.name={name}", "training.local_iterations=2", *extra)
    return ideal_federation(cfg)


def _local_means(passes):
    """Hand eq. 7: per client {class: mean received feature} from the round's sums."""
    out = []
    for p in passes:
        sums, counts = p.sums.numpy().astype(np.float64), p.counts.numpy()
        out.append({c: sums[c] / counts[c] for c in np.flatnonzero(counts)})
    return out


# ---------------------------------------------------------------- config


def test_algorithm_names_are_the_config_choices():
    assert typing.get_args(typing.get_type_hints(AlgorithmConfig)["name"]) == ALGORITHMS
    for name in ALGORITHMS:
        assert tiny_config(f"algorithm.name={name}").algorithm.name == name


def test_fedavg_refuses_heterogeneous_encoders(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"model\.encoders.*algorithm\.name = 'fedavg'"):
        tiny_config("algorithm.name=fedavg", "model.encoders=heterogeneous")
    # FedProto and FedCL take them
    tiny_config("algorithm.name=fedproto", "model.encoders=heterogeneous")
    config_file = tmp_path / "c.toml"
    config_file.write_text(tiny_config().to_toml())
    args = ["train", "--config", str(config_file), "--out", str(tmp_path / "run")]
    status = main(
        [*args, "--set", "algorithm.name=fedavg", "--set", "model.encoders=heterogeneous"]
    )
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert "model.encoders" in err and "algorithm.name" in err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- hand checks


def test_weighted_class_means_by_hand():
    from semfed.algorithms.base import weighted_class_means

    local = [
        (np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([0, 2])),
        (np.array([[3.0, 4.0]]), np.array([0])),
    ]
    means, mask = weighted_class_means(local, np.array([1.0, 1.0]), 4, 2)
    np.testing.assert_allclose(means, [[2.0, 2.0], [0, 0], [0.0, 2.0], [0, 0]])
    np.testing.assert_array_equal(mask, [1, 0, 1, 0])
    # weights 1:3 on class 0; class 2 only on client 0, so weight 1 there
    means, _ = weighted_class_means(local, np.array([10.0, 30.0]), 4, 2)
    np.testing.assert_allclose(means[0], [0.25 * 1 + 0.75 * 3, 0.75 * 4])
    np.testing.assert_allclose(means[2], [0.0, 2.0])


def test_masked_regularizer_skips_classes_without_target():
    logits = tf.zeros([2, 3])
    labels = tf.constant([0, 1])
    feats = tf.constant([[1.0, 1.0], [3.0, 3.0]])
    targets = tf.constant([[0.0, 0.0], [0.0, 0.0], [9.0, 9.0]])
    mask = tf.constant([1.0, 0.0, 1.0])
    loss, ce, reg = regularized_task_loss(
        logits, labels, feats, targets, 0.5, "mean", target_mask=mask
    )
    # sample 0: mean((1-0)^2, (1-0)^2) = 1; sample 1 has no target: 0; batch mean 0.5
    assert float(reg) == pytest.approx(0.5)
    assert float(ce) == pytest.approx(np.log(3.0))
    assert float(loss) == pytest.approx(np.log(3.0) + 0.25)


def test_nearest_prototype_by_hand():
    protos = np.array([[0.0, 0.0], [10.0, 0.0], [1.0, 1.0]])
    feats = np.array([[0.9, 0.8], [6.0, 0.0], [0.1, -0.2]])
    np.testing.assert_array_equal(nearest_prototype(feats, protos, [1, 1, 1]), [2, 1, 0])
    # class 2 has no prototype: the first sample goes to class 0
    np.testing.assert_array_equal(nearest_prototype(feats, protos, [1, 1, 0]), [0, 1, 0])
    assert nearest_prototype(feats, protos, [0, 0, 0]) is None


@pytest.mark.slow
def test_fedavg_aggregation_is_the_dk_weighted_average_of_all_parameters(data):
    # unequal D_k; batch norm averaged too (the paper's FedAvg)
    alg = build(data, "fedavg", "partition.shots_spread=8", "algorithm.fedavg_norm=average")
    assert isinstance(alg, FedAvg)
    first = [c.encoder.get_weights() + c.decoder.get_weights() for c in alg.clients]
    for w in first[1:]:  # one common initial model
        for a, b in zip(first[0], w, strict=True):
            np.testing.assert_array_equal(a, b)
    alg.train_clients(0, np.random.default_rng(0))
    local = [c.encoder.get_weights() + c.decoder.get_weights() for c in alg.clients]
    sizes = np.array([c.num_train for c in alg.clients], float)
    assert len(set(sizes)) > 1
    alg.aggregate()
    n_bn = len(alg.clients[0].encoder.non_trainable_weights)
    assert n_bn > 0  # batch-norm moving statistics are among the averaged arrays
    for c in alg.clients:
        got = c.encoder.get_weights() + c.decoder.get_weights()
        for i, w in enumerate(got):
            hand = sum(s / sizes.sum() * lw[i] for s, lw in zip(sizes, local, strict=True))
            np.testing.assert_allclose(w, hand, rtol=1e-5, atol=1e-7)
    for a, b in zip(alg.decoder.get_weights(), alg.clients[0].decoder.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # the local models really differed before averaging, BN statistics included
    assert not np.allclose(local[0][0], local[1][0])
    moving = [i for i, w in enumerate(alg.clients[0].encoder.weights) if "moving" in w.path]
    assert moving and not np.allclose(local[0][moving[0]], local[1][moving[0]])


@pytest.mark.slow
def test_fedproto_prototypes_are_the_unweighted_mean_of_local_prototypes(data):
    alg = build(data, "fedproto", "model.encoders=heterogeneous", "partition.shots_spread=8")
    assert isinstance(alg, FedProto)
    first = alg.run_round(0, np.random.default_rng(0))
    assert first.regularizer == 0.0  # no global prototypes in round 0
    passes = alg.train_clients(1, np.random.default_rng(1))
    alg.aggregate(passes)
    means = _local_means(passes)
    protos, mask = (t.numpy() for t in alg.global_prototypes())
    for c in range(data.num_classes):
        held = [m[c] for m in means if c in m]
        assert mask[c] == (1.0 if held else 0.0)
        hand = np.mean(held, axis=0) if held else np.zeros(D)
        np.testing.assert_allclose(protos[c], hand, rtol=1e-5, atol=1e-6)
    assert sum(len([m for m in means if c in m]) > 1 for c in range(10)) >= 1, "no shared class"
    # the clients' own decoders are never averaged
    w = [c.decoder.get_weights()[0] for c in alg.clients]
    assert not np.allclose(w[0], w[1])
    later = alg.run_round(2, np.random.default_rng(2))
    assert later.regularizer > 0


@pytest.mark.slow
def test_meancentroid_centroids_are_the_dk_weighted_mean(data, tmp_path):
    alg = build(data, "fedcl-meancentroid", "partition.shots_spread=8")
    assert isinstance(alg, FedCL) and alg.scg is None
    passes = alg.train_clients(0, np.random.default_rng(0))
    alg.aggregate(passes)
    means = _local_means(passes)
    sizes = [c.num_train for c in alg.clients]
    got = alg.global_centroids().numpy()
    for c in range(data.num_classes):
        held = [(s, m[c]) for s, m in zip(sizes, means, strict=True) if c in m]
        hand = sum(s * f for s, f in held) / sum(s for s, _ in held) if held else np.zeros(D)
        np.testing.assert_allclose(got[c], hand, rtol=1e-5, atol=1e-6)
    # the centroids are part of the checkpointed state
    saved = got.copy()
    save_checkpoint(tmp_path, 0, alg.models(), alg.optimizers(), np.random.default_rng(0))
    alg.mean_centroids.assign(centroids=np.zeros_like(saved), mask=np.zeros(10))
    load_checkpoint(tmp_path, alg.models(), alg.optimizers(), np.random.default_rng(0))
    np.testing.assert_array_equal(alg.global_centroids().numpy(), saved)


@pytest.mark.slow
def test_nocentroid_is_split_learning_without_regularizer(data):
    alg = build(data, "fedcl-nocentroid", "algorithm.lam=5.0")
    assert alg.lam == 0.0 and alg.scg is None
    stats = alg.run_round(0, np.random.default_rng(0))
    assert stats.train_loss == pytest.approx(stats.task_loss, abs=1e-6)
    assert stats.regularizer is None and stats.scg_loss is None


# ---------------------------------------------------------------- tiny runs


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Tiny runs over the AWGN link, one per algorithm, made on first use."""
    root = tmp_path_factory.mktemp("sweep")
    done: dict[str, tuple] = {}

    def get(name: str):
        if name not in done:
            out = root / name
            summary = run_training(tiny_config(f"algorithm.name={name}"), out)
            records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
            done[name] = (out, summary, records)
        return done[name]

    return get


# The tiny setting's grid (the link's defaults): 4 RBs = 48 subcarriers x 14 OFDM
# symbols at 30 kHz, pilots on symbols 2 and 11, so 12 x 48 = 576 data REs per slot
# and a slot lasts 0.5 ms (numerology mu = 1).
DATA_RES, SLOT_MS = 576, 0.5


def _slots(bits: int) -> int:
    """Slots for one client's payload of ``bits`` at 2 bits per RE (uncoded QPSK)."""
    return -(-(bits // 2) // DATA_RES)  # ceil(ceil(bits / 2) / 576); bits are even here


def _hand_count(name: str, classes: list[tuple[int, ...]]) -> dict[str, int | float]:
    """Per-round communication of the tiny setting, counted by hand."""
    if name.startswith("fedcl"):
        # every client sends E * B = D_K features up and gets D_K gradients down, d/2 symbols each;
        # a slot holds floor(576 / 32) = 18 samples, so each mini-batch of B = 16 takes one
        # slot each way: D_K / B = 6 slots up and 6 down, the 3 clients in parallel:
        # 12 slots x 0.5 ms = 6 ms a round.
        return {
            "uplink_symbols": K * D_K * D // 2,
            "downlink_symbols": K * D_K * D // 2,
            "param_bits": 0,
            "uplink_slots": D_K // B,
            "downlink_slots": D_K // B,
            "airtime_ms": 2 * (D_K // B) * SLOT_MS,
        }
    if name == "fedavg":
        # DCGAN encoder of width 8 on 16x16x3 images (16 -> 8 -> 4 -> 2), decoder 64-32-10
        encoder = (
            (4 * 4 * 3 * 8 + 8)  # conv 1 with bias
            + (4 * 4 * 8 * 16 + 4 * 16)  # conv 2, batch norm (gamma, beta, mean, variance)
            + (4 * 4 * 16 * 32 + 4 * 32)  # conv 3, batch norm
            + (2 * 2 * 32 * D + D)  # dense to d
        )
        decoder = (D * 32 + 32) + (32 * 10 + 10)
        local_norm = 4 * 16 + 4 * 32  # FedBN (the default): batch norm is never sent
        shared = encoder - local_norm + decoder  # 21,298 parameters: 681,536 bits
        # each client sends them up and gets the average down, in parallel:
        # 340,768 QPSK symbols, ceil(340,768 / 576) = 592 slots each way, 1,184 x 0.5 ms
        # = 592 ms a round
        return {
            "uplink_symbols": 0,
            "downlink_symbols": 0,
            "param_bits": 2 * K * shared * 32,
            "uplink_slots": _slots(shared * 32),
            "downlink_slots": _slots(shared * 32),
            "airtime_ms": 2 * _slots(shared * 32) * SLOT_MS,
        }
    # fedproto: each client's 3 prototypes up, every present class's prototype down to each;
    # up: 3 x 64 x 32 = 6,144 bits = 3,072 QPSK symbols = ceil(3072 / 576) = 6 slots
    present = len(set().union(*classes))
    return {
        "uplink_symbols": 0,
        "downlink_symbols": 0,
        "param_bits": (K * 3 * D + K * present * D) * 32,
        "uplink_slots": 6,
        "downlink_slots": _slots(present * D * 32),
        "airtime_ms": (6 + _slots(present * D * 32)) * SLOT_MS,
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", ALGORITHMS)
def test_each_algorithm_learns_and_accounts_its_communication(sweep, name, data):
    _, summary, records = sweep(name)
    assert summary["algorithm"] == name and summary["rounds"] == 3
    assert summary["final_test_acc"] > 0.5, summary  # chance: 1/3 (own classes), 1/10 (all)
    assert [r["round"] for r in records] == [1, 2]
    cfg = tiny_config(f"algorithm.name={name}")
    part = make_partition(data.y_train, data.y_test, data.num_classes, cfg.partition)
    hand = _hand_count(name, [c.classes for c in part.clients])
    for r in records:
        for key, value in hand.items():
            assert r[key] == value, (key, r[key], value)
            assert r[f"total_{key}"] == pytest.approx(value * (r["round"] + 1))  # round 0 too
    for key, value in hand.items():
        assert summary[f"total_{key}"] == pytest.approx(3 * value)
    for protocol in ("global", "personal", "masked"):
        assert len(records[-1][f"test_acc_{protocol}_per_client"]) == K
        assert summary[f"final_test_acc_{protocol}"] > 0.5, (protocol, summary)
    # test_acc is the configured protocol's (global by default)
    assert records[-1]["test_acc"] == records[-1]["test_acc_global"]


def _strip_times(records):
    return [{k: v for k, v in r.items() if k not in ("elapsed_s", "round_s")} for r in records]


class Killed(Exception):
    """Stands for SIGKILL right after a checkpoint (tests/test_fedcl.py kills a real process)."""


def _killed_run(name: str, out, monkeypatch, after_round: int = 1) -> None:
    """Start the tiny run of ``name`` in ``out``; kill it after that round's checkpoint."""
    save = semfed.checkpoint.save_checkpoint

    def save_then_die(path, round_index, *args, **kwargs):
        save(path, round_index, *args, **kwargs)
        if round_index == after_round:
            raise Killed

    with monkeypatch.context() as m:
        m.setattr(semfed.checkpoint, "save_checkpoint", save_then_die)
        with pytest.raises(Killed):
            run_training(tiny_config(f"algorithm.name={name}"), out)
    assert not (out / "summary.json").exists()


def _read_records(out):
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fedavg", "fedproto", "fedcl-meancentroid"])
def test_kill_and_resume_is_bit_exact(sweep, tmp_path, monkeypatch, name):
    """Killed after round 1 of 3 and resumed: the same metrics as one run of 3. FedAvg's
    shared model, FedProto's prototypes and the mean centroids travel in the checkpoint."""
    _, summary, full = sweep(name)
    out = tmp_path / "killed"
    _killed_run(name, out, monkeypatch)
    assert [r["round"] for r in _read_records(out)] == [1]
    resumed = run_training(tiny_config(f"algorithm.name={name}"), out, resume=True)
    assert _strip_times(_read_records(out)) == _strip_times(full)
    for key in ("final_test_acc", "total_param_bits", "total_uplink_symbols"):
        assert resumed[key] == summary[key]


def _snapshot(out) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated state", "latest points nowhere", "no latest.json"])
def test_resume_refuses_a_damaged_checkpoint_and_writes_nothing(tmp_path, monkeypatch, damage):
    out = tmp_path / "killed"
    _killed_run("fedavg", out, monkeypatch, after_round=0)
    ckpt = out / "checkpoints"
    state = ckpt / "round-000000" / "state.npz"
    if damage == "truncated state":
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    elif damage == "latest points nowhere":
        shutil.rmtree(ckpt / "round-000000")
    else:
        (ckpt / "latest.json").unlink()
    before = _snapshot(out)
    with pytest.raises(RunDirError, match=r"cannot resume .*--overwrite") as err:
        run_training(tiny_config("algorithm.name=fedavg"), out, resume=True)
    assert "\n" not in str(err.value)
    assert _snapshot(out) == before  # nothing overwritten


@pytest.mark.slow
def test_resume_without_checkpoint(sweep, tmp_path, monkeypatch):
    """A finished run whose checkpoint is gone is refused; a run killed before its first
    checkpoint starts again from round 0 and ends as an uninterrupted run."""
    done = tmp_path / "done"
    shutil.copytree(sweep("fedavg")[0], done)
    shutil.rmtree(done / "checkpoints")
    before = _snapshot(done)
    with pytest.raises(RunDirError, match=r"finished run .* no checkpoint"):
        run_training(tiny_config("algorithm.name=fedavg"), done, resume=True)
    assert _snapshot(done) == before
    early = tmp_path / "early"
    _killed_run("fedavg", early, monkeypatch, after_round=0)
    shutil.rmtree(early / "checkpoints")  # as if killed before the first checkpoint
    run_training(tiny_config("algorithm.name=fedavg"), early, resume=True)
    assert _strip_times(_read_records(early)) == _strip_times(sweep("fedavg")[2])


# ---------------------------------------------------------------- the NaN guard, mid-pass


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fedcl", "fedavg", "fedproto"])
def test_one_bad_minibatch_mid_pass_is_skipped_named_and_stops_the_round(
    data, tmp_path, monkeypatch, name
):
    """Client 1's mini-batch 2 of 4 holds a NaN image. The round stops naming round,
    client and mini-batch; that step was not applied, the others were: client 1's
    models end as after a pass over mini-batches 0, 1 and 3 alone."""
    alg = build(data, name)
    client = alg.clients[1]
    schedule = np.arange(64).reshape(4, 16)
    save_checkpoint(tmp_path, 0, alg.models(), alg.optimizers(), np.random.default_rng(0))
    monkeypatch.setattr(semfed.algorithms.base, "batch_schedule", lambda *a, **k: schedule)
    clean = client.x_train
    client.x_train = clean.copy()
    client.x_train[40] = np.nan  # sample 40: mini-batch 2
    with pytest.raises(TrainingDiverged, match=r"round 3, client 1, mini-batch 2 \(loss = nan\)"):
        alg.train_clients(3, np.random.default_rng(0))
    client.x_train = clean
    got = client.encoder.get_weights() + client.decoder.get_weights()
    assert all(np.isfinite(w).all() for w in got)
    assert int(client.encoder_optimizer.iterations) == 3  # the bad step was not counted

    load_checkpoint(tmp_path, alg.models(), alg.optimizers(), np.random.default_rng(0))
    good = schedule[[0, 1, 3]]
    monkeypatch.setattr(semfed.algorithms.base, "batch_schedule", lambda *a, **k: good)
    alg.train_clients(3, np.random.default_rng(0))
    want = client.encoder.get_weights() + client.decoder.get_weights()
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize(
    "scheme, name",
    [("analog", "fedcl"), ("digital", "fedcl"), ("tdl", "fedcl"), ("tdl", "fedavg")],
)
def test_fast_pass_agrees_with_the_guarded_one_and_a_redone_pass_is_exact(
    data, tmp_path, monkeypatch, scheme, name
):
    """Over a noisy link (AWGN; TDL-A with LS CSI, whose channels and noise a pass
    draws ahead): the unguarded pass (the default) ends where a pass with the guard
    at every step ends (float rounding aside), and a pass redone after a failed
    end-of-pass check (forced here) is bit for bit the guarded pass: same starting
    state, same channel draws, and (digital uplink) the same block counts."""
    from semfed.train import build_federation

    extra = {
        "analog": [],
        "digital": ["link.uplink_scheme=digital", "link.quant_bits=2"],
        "tdl": ["link.channel=tdl-a", "link.csi=ls"],
    }[scheme]
    alg = build_federation(tiny_config(f"algorithm.name={name}", *extra))[0]
    save_checkpoint(tmp_path, 0, alg.models(), alg.optimizers(), np.random.default_rng(0))
    start = [w for c in alg.clients for w in c.encoder.get_weights() + c.decoder.get_weights()]

    def one_round() -> list[np.ndarray]:
        load_checkpoint(tmp_path, alg.models(), alg.optimizers(), np.random.default_rng(0))
        alg.radio.reset_counts()
        alg.train_clients(1, np.random.default_rng(0))
        blocks = [np.array(v, float) for v in alg.radio.block_record().values()]
        weights = [w for c in alg.clients for w in c.encoder.get_weights()]
        return weights + [w for c in alg.clients for w in c.decoder.get_weights()] + blocks

    fast = one_round()
    (step,) = set(alg._steps.values())
    assert (step.draw is not None) is (scheme == "tdl")
    with monkeypatch.context() as m:
        # the end-of-pass check fails: every pass is redone
        m.setattr(step, "fast_pass", lambda *a, run=step.fast_pass: (*run(*a)[:-1], False))
        redone = one_round()
    with monkeypatch.context() as m:
        # no fast pass at all: the guarded form only
        m.setattr(step, "fast_pass", lambda *a: (None,) * 5 + (False,))
        guarded = one_round()
    for a, b in zip(redone, guarded, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(fast, guarded, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(fast[0], start[0])  # the round did train
    if scheme == "digital":
        assert alg.radio.block_record()["uplink_blocks"] > 0


# ---------------------------------------------------------------- semfed compare


@pytest.mark.slow
def test_compare_accepts_an_algorithm_sweep(sweep, tmp_path, capsys):
    dirs = [str(sweep(name)[0]) for name in ALGORITHMS]
    out_csv = tmp_path / "cmp.csv"
    assert main(["compare", *dirs, "--csv", str(out_csv)]) == 0
    table = capsys.readouterr().out
    for name in ALGORITHMS:
        assert name in table
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["algorithm"] for r in rows] == list(ALGORITHMS)
    fedavg = rows[ALGORITHMS.index("fedavg")]
    assert int(fedavg["total_param_bits"]) == sweep("fedavg")[1]["total_param_bits"]
    assert float(rows[0]["final_test_acc"]) == sweep("fedcl")[1]["final_test_acc"]


def _edited_copy(src, dst, config_changes=(), summary_changes=None):
    shutil.copytree(src, dst)
    if config_changes:
        cfg = load_config(dst / "config.toml", list(config_changes))
        (dst / "config.toml").write_text(cfg.to_toml())
    if summary_changes:
        summary = json.loads((dst / "summary.json").read_text())
        summary.update(summary_changes)
        (dst / "summary.json").write_text(json.dumps(summary))
    return str(dst)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config_changes", "summary_changes", "message"),
    [
        ((), {"partition_fingerprint": "0000000000000000"}, "partitions differ"),
        (("training.seed=1",), None, r"seeds differ \(training\.seed 0 vs 1\)"),
        (("partition.seed=3",), None, r"seeds differ \(partition\.seed 0 vs 3\)"),
        (
            ("link.uplink_snr_db=0.0", "training.rounds=5"),
            None,
            r"differ in link\.uplink_snr_db, training\.rounds",
        ),
    ],
)
def test_compare_refuses_unfair_comparisons(
    sweep, tmp_path, capsys, config_changes, summary_changes, message
):
    base = sweep("fedcl")[0]
    other = _edited_copy(sweep("fedproto")[0], tmp_path / "other", config_changes, summary_changes)
    assert main(["compare", str(base), other]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("semfed compare: error: cannot compare")
    assert re.search(message, err), err


@pytest.mark.slow
def test_compare_refuses_an_unfinished_run(sweep, tmp_path, capsys):
    assert main(["compare", str(sweep("fedcl")[0]), str(tmp_path)]) == 2
    assert "not a finished run" in capsys.readouterr().err
