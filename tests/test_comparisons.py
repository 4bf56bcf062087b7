"""Comparisons you can trust: batch-norm settings, evaluation protocols, the final
window, independent random streams and statistics across seeds.

Values are checked against hand computations; the tiny federations run over an
ideal link so that only the algorithm decides what happens.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from tiny_setting import TINY_SETTING, ideal_federation

from semfed.cli import main
from semfed.cli.compare import seed_statistics
from semfed.config import EvaluationConfig, dumps_toml, load_config
from semfed.data import load_dataset
from semfed.errors import UserError
from semfed.evaluation import masked_argmax
from semfed.statistics import mean_interval, paired_difference
from semfed.streams import TAGS, stream_seed
from semfed.train import final_accuracies

TINY = [*TINY_SETTING, "model.encoders=homogeneous", "training.local_iterations=2"]


def tiny_config(*extra: str):
    return load_config(None, [*TINY, *extra])


@pytest.fixture(scope="module")
def data():
    return load_dataset(tiny_config().data, progress=False)


def build(data, *extra: str):
    return ideal_federation(tiny_config(*extra))


def _norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


# ---------------------------------------------------------------- batch norm, FedAvg


def test_bn_momentum_reaches_every_encoder_and_workspace(data):
    alg = build(data, "model.bn_momentum=0.8", "model.encoders=heterogeneous")
    encoders = [c.encoder for c in alg.clients] + [ws.encoder for ws in alg.workspaces]
    layers = [layer for e in encoders for layer in _norm_layers(e)]
    assert all(_norm_layers(e) for e in encoders)
    assert {layer.momentum for layer in layers} == {0.8}
    assert load_config(None).model.bn_momentum == 0.9  # the default is not Keras's 0.99


def _norm_and_other_weights(client):
    from semfed.models import normalization_weight_indices

    idx = set(normalization_weight_indices(client.encoder))
    w = client.encoder.get_weights()
    return [w[i] for i in sorted(idx)], [w[i] for i in range(len(w)) if i not in idx]


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["average", "local"])
def test_fedavg_norm_local_keeps_each_clients_statistics(data, norm):
    alg = build(data, "algorithm.name=fedavg", f"algorithm.fedavg_norm={norm}")
    alg.run_round(0, np.random.default_rng(0))
    parts = [_norm_and_other_weights(c) for c in alg.clients]
    norms, others = zip(*parts, strict=True)
    # The shared (non-normalization) weights are the average on every client.
    for other in others[1:]:
        for a, b in zip(others[0], other, strict=True):
            np.testing.assert_array_equal(a, b)
    same_norm = all(
        np.array_equal(a, b) for n in norms[1:] for a, b in zip(norms[0], n, strict=True)
    )
    # Average: everybody holds the averaged statistics; local: each its own.
    assert same_norm == (norm == "average")
    # Local normalization layers are not sent: fewer parameter bits.
    full = build(data, "algorithm.name=fedavg", "algorithm.fedavg_norm=average")
    assert (alg.num_parameters < full.num_parameters) == (norm == "local")


@pytest.mark.slow
@pytest.mark.parametrize("reset", [False, True])
def test_reset_optimizer_zeroes_moments_when_the_average_arrives(data, reset):
    alg = build(data, "algorithm.name=fedavg", f"algorithm.reset_optimizer={str(reset).lower()}")
    alg.run_round(0, np.random.default_rng(0))
    opt = alg.clients[0].encoder_optimizer
    assert int(opt.iterations.numpy()) == (0 if reset else 2)
    moments = [v for v in opt.variables if "momentum" in v.path or "velocity" in v.path]
    assert moments and all((np.abs(v.numpy()).max() == 0) == reset for v in moments)
    assert float(opt.learning_rate.numpy()) == pytest.approx(1e-3)  # the rate is kept


# ---------------------------------------------------------------- protocols


def test_masked_argmax_ignores_classes_the_client_does_not_own():
    logits = np.array([[0.0, 9.0, 1.0, 2.0], [5.0, 0.0, 0.0, 4.0]])
    np.testing.assert_array_equal(np.argmax(logits, 1), [1, 0])
    np.testing.assert_array_equal(masked_argmax(logits, (3, 2)), [3, 3])


def _constant_decoder(decoder: keras.Model, logits: np.ndarray) -> None:
    """Zero the last layer's kernel and set its bias: every input gets ``logits``."""
    last = decoder.layers[-1]
    kernel, _ = last.get_weights()
    last.set_weights([np.zeros_like(kernel), logits.astype(np.float32)])


@pytest.mark.slow
def test_each_protocol_reads_its_own_decoder(data):
    alg = build(data, "algorithm.name=fedcl")
    alg.run_round(0, np.random.default_rng(0))
    n = data.num_classes
    g_logits = np.zeros(n)
    g_logits[0] = 10.0  # the global decoder always says class 0
    _constant_decoder(alg.decoder, g_logits)
    expected = {"global": [], "personal": [], "masked": []}
    for c in alg.clients:
        not_owned = next(k for k in range(n) if k not in c.classes)
        logits = np.zeros(n)
        logits[not_owned] = 10.0  # the personal decoder prefers a class the client lacks,
        logits[c.classes[1]] = 5.0  # then one it owns: masking must pick that one
        _constant_decoder(c.decoder, logits)
        expected["global"].append(np.mean(c.y_test == 0))
        expected["personal"].append(0.0)
        expected["masked"].append(np.mean(c.y_test == c.classes[1]))
    accs = alg.make_evaluator(64).evaluate([20.0] * len(alg.clients))
    for protocol, values in expected.items():
        np.testing.assert_allclose(accs[f"test_acc_{protocol}"], values, err_msg=protocol)
    assert max(expected["masked"]) > 0  # the check can fail


@pytest.mark.slow
def test_fedproto_global_protocol_is_the_nearest_prototype(data):
    alg = build(data, "algorithm.name=fedproto")
    alg.run_round(0, np.random.default_rng(0))
    protos = np.zeros((data.num_classes, 64), np.float32)
    mask = np.zeros(data.num_classes, np.float32)
    mask[2] = 1.0  # one prototype: every sample is classified as class 2
    alg.prototypes.assign(prototypes=protos, mask=mask)
    accs = alg.make_evaluator(64).evaluate([20.0] * len(alg.clients))
    hand = [np.mean(c.y_test == 2) for c in alg.clients]
    np.testing.assert_allclose(accs["test_acc_global"], hand)
    alg.prototypes.assign(mask=np.zeros(data.num_classes))  # none yet: no global prediction
    none = alg.make_evaluator(64).evaluate([20.0] * 3)["test_acc_global"]
    assert all(math.isnan(a) for a in none)


# ---------------------------------------------------------------- final window


def test_final_accuracy_is_the_mean_of_the_last_window():
    accs = [0.1, 0.5, 0.2, 0.4, 0.3]
    records = [
        {"test_acc_global": a, "test_acc_personal": a + 0.1, "test_acc_masked": a + 0.2}
        for a in accs
    ]
    out = final_accuracies(records, EvaluationConfig(final_window=3))
    assert out["final_window"] == 3
    assert out["final_test_acc_global"] == pytest.approx((0.2 + 0.4 + 0.3) / 3)
    assert out["final_test_acc_masked"] == pytest.approx((0.4 + 0.6 + 0.5) / 3)
    assert out["oracle_best_test_acc_global"] == 0.5
    assert out["final_test_acc"] == out["final_test_acc_global"]
    # personal as the headline protocol; a window longer than the run takes every round
    out = final_accuracies(records[:2], EvaluationConfig(final_window=5, protocol="personal"))
    assert out["final_window"] == 2 and out["final_test_acc"] == pytest.approx(0.4)


# ---------------------------------------------------------------- random streams


def _first_draws(n: int = 8) -> np.ndarray:
    from sionna.phy import config

    return config.tf_rng.normal([n]).numpy()


def test_evaluation_streams_never_replay_a_training_stream():
    from phy.seeding import set_seed
    from semfed.streams import sionna_stream

    grid = range(4)
    training = {}
    for seed in grid:
        set_seed(stream_seed(seed, "training"))  # as a run seeds its training draws
        training[seed] = _first_draws()
    evaluation = {}
    for seed in grid:
        for r in grid:
            sionna_stream(seed, "evaluation", r)
            evaluation[seed, r] = _first_draws()
    for (seed, r), ev in evaluation.items():
        for train_seed, tr in training.items():
            assert not np.allclose(ev, tr), (seed, r, train_seed)
    values = [tuple(v) for v in [*training.values(), *evaluation.values()]]
    assert len(set(values)) == len(values)  # all 20 streams distinct
    # The seeds themselves: every (seed, tag, round) of the grid gets its own.
    seeds = {stream_seed(s, tag, r) for s in grid for tag in TAGS for r in grid}
    assert len(seeds) == len(grid) * len(TAGS) * len(grid)
    # The old scheme's collision: evaluation of seed 0 at round r == training of seed r.
    assert all(stream_seed(0, "evaluation", r) != stream_seed(r, "training") for r in grid)


# ---------------------------------------------------------------- statistics


A = [0.50, 0.52, 0.55]  # fedcl, seeds 0..2
B = [0.45, 0.50, 0.49]  # fedproto, paired


def test_interval_and_paired_t_test_by_hand():
    # mean 0.523333, s = 0.0251661; t(0.975, 2) = 0.95 / sqrt(2 * 0.975 * 0.025) = 4.302653
    iv = mean_interval(A)
    t2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)
    s = math.sqrt(((0.5 - 0.5233333) ** 2 + (0.52 - 0.5233333) ** 2 + (0.55 - 0.5233333) ** 2) / 2)
    assert iv.n == 3 and iv.mean == pytest.approx(0.5233333, abs=1e-6)
    assert iv.std == pytest.approx(s, rel=1e-5)
    assert iv.high - iv.mean == pytest.approx(t2 * s / math.sqrt(3), rel=1e-5)
    # Differences B - A = -0.05, -0.02, -0.06: mean -0.043333, s_d = 0.0208167,
    # t = mean / (s_d / sqrt 3) = -3.6056; for 2 degrees of freedom the two-sided
    # p-value is 1 - |t| / sqrt(2 + t^2) = 0.06903.
    d = paired_difference(B, A)
    s_d = math.sqrt(((0.05 - 0.043333) ** 2 + (0.02 - 0.043333) ** 2 + (0.06 - 0.043333) ** 2) / 2)
    t = -0.0433333 / (s_d / math.sqrt(3))
    assert d.mean == pytest.approx(-0.0433333, abs=1e-6)
    assert d.high - d.mean == pytest.approx(t2 * s_d / math.sqrt(3), rel=1e-4)
    assert d.p_value == pytest.approx(1 - abs(t) / math.sqrt(2 + t * t), rel=1e-3)
    assert math.isnan(mean_interval([0.4]).low)


def _fake_summary_run(path: Path, algorithm: str, seed: int, acc: float, *extra: str) -> None:
    path.mkdir(parents=True)
    cfg = load_config(
        None,
        [
            "data.name=synthetic",
            "partition.num_clients=2",
            "model.encoders=homogeneous",
            f"algorithm.name={algorithm}",
            f"training.seed={seed}",
            f"partition.seed={seed}",
            *extra,
        ],
    )
    (path / "config.toml").write_text(dumps_toml(cfg.to_dict()))
    summary = {
        "final_test_acc": acc,
        "final_test_acc_global": acc,
        "final_test_acc_personal": acc + 0.1,
        "final_test_acc_masked": acc + 0.2,
        "oracle_best_test_acc_global": acc + 0.05,
        "partition_fingerprint": f"split{seed}",
    }
    (path / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def seed_sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    for alg, accs in (("fedcl", A), ("fedproto", B), ("fedavg", [0.40, 0.41, 0.45])):
        for seed, acc in enumerate(accs):
            _fake_summary_run(root / f"{alg}_{seed}", alg, seed, acc)
    return root


def test_compare_prints_and_writes_means_intervals_and_paired_differences(
    seed_sweep, tmp_path, capsys
):
    out = tmp_path / "cmp.csv"
    argv = ["compare", str(seed_sweep), "--by", "algorithm.name", "--paired", "fedcl"]
    assert main([*argv, "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert "diff vs fedcl" in text and "protocol global" in text

    rows = {r["algorithm.name"]: r for r in csv.DictReader(out.open())}
    assert list(next(iter(rows.values()))) == [
        "algorithm.name",
        "n",
        "mean",
        "std",
        "ci95_low",
        "ci95_high",
        "diff_mean",
        "diff_ci95_low",
        "diff_ci95_high",
        "p_value",
    ]
    assert rows["fedcl"]["diff_mean"] == ""  # the reference itself
    assert float(rows["fedproto"]["diff_mean"]) == pytest.approx(-0.0433333, abs=1e-6)
    assert float(rows["fedproto"]["p_value"]) == pytest.approx(0.06905, abs=1e-4)
    assert int(rows["fedavg"]["n"]) == 3
    assert float(rows["fedcl"]["mean"]) == pytest.approx(0.5233333, abs=1e-6)
    # Another protocol and the oracle metric read other summary keys.
    _, personal = seed_statistics(
        _load(seed_sweep), "algorithm.name", protocol="personal", paired="fedcl"
    )
    assert personal[0]["mean"] == pytest.approx(0.6233333, abs=1e-6)
    _, oracle = seed_statistics(_load(seed_sweep), "algorithm.name", metric="oracle_best")
    assert oracle[0]["algorithm.name"] == "fedavg"  # sorted by value without --paired
    assert oracle[1]["mean"] == pytest.approx(0.5733333, abs=1e-6)


def test_compare_by_a_key_combination_at_one_evaluation_snr(tmp_path):
    """Analog against a digital MCS: the schemes differ in several link keys, one
    of which the analog config leaves unset; --snr reads the by-SNR accuracies."""
    root = tmp_path / "schemes"
    digital = ["link.scheme=digital", "link.modulation=16qam", "link.quant_bits=1"]
    for seed, (acc_a, acc_d) in enumerate(zip(A, B, strict=True)):
        _fake_summary_run(root / f"analog_{seed}", "fedcl", seed, 0.0, "link.scheme=analog")
        _fake_summary_run(root / f"digital_{seed}", "fedcl", seed, 0.0, *digital)
        for name, acc in ((f"analog_{seed}", acc_a), (f"digital_{seed}", acc_d)):
            path = root / name / "summary.json"
            summary = json.loads(path.read_text())
            summary["final_test_acc_global_by_snr"] = {"10": acc, "-5": acc / 2}
            path.write_text(json.dumps(summary))
    by = "link.scheme,link.modulation,link.quant_bits"
    _, rows = seed_statistics(_load(root), by, paired="analog/unset/unset", snr=10.0)
    assert [r[by] for r in rows] == ["analog/unset/unset", "digital/16qam/1"]
    assert rows[1]["diff_mean"] == pytest.approx(-0.0433333, abs=1e-6)  # B - A, as above
    _, rows = seed_statistics(_load(root), by, paired="analog/unset/unset", snr=-5.0)
    assert rows[1]["diff_mean"] == pytest.approx(-0.0433333 / 2, abs=1e-6)
    with pytest.raises(UserError, match="--snr 3"):
        seed_statistics(_load(root), by, snr=3.0)
    # One key alone leaves the others to tell the runs apart: refused.
    with pytest.raises(UserError, match="not only in seeds"):
        seed_statistics(_load(root), "link.scheme", paired="analog")


def _load(path: Path):
    from semfed.plot import load_runs

    return load_runs([path])


def test_compare_refuses_runs_that_differ_in_more_than_seeds(seed_sweep, tmp_path, capsys):
    # FedProto on heterogeneous encoders against FedCL on homogeneous ones: refused.
    for d in seed_sweep.glob("fedproto_*"):
        cfg = (d / "config.toml").read_text().replace('"homogeneous"', '"heterogeneous"')
        (d / "config.toml").write_text(cfg)
    argv = ["compare", str(seed_sweep), "--by", "algorithm.name", "--paired", "fedcl"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "model.encoders" in err and "--where" in err and len(err.strip().splitlines()) == 1
    # Selecting a fair subset works.
    assert main([*argv, "--where", "model.encoders=homogeneous"]) == 0
    capsys.readouterr()
    # Two runs with the same seeds and value: refused.
    _fake_summary_run(seed_sweep / "fedcl_dup", "fedcl", 0, 0.3)
    with pytest.raises(UserError, match="same seeds"):
        seed_statistics(_load(seed_sweep), "algorithm.name")
    # Paired runs trained on different splits: refused.
    shutil.rmtree(seed_sweep / "fedcl_dup")
    s = json.loads((seed_sweep / "fedavg_1" / "summary.json").read_text())
    s["partition_fingerprint"] = "other"
    (seed_sweep / "fedavg_1" / "summary.json").write_text(json.dumps(s))
    homogeneous = [r for r in _load(seed_sweep) if r["config"]["model.encoders"] == "homogeneous"]
    with pytest.raises(UserError, match="partitions differ"):
        seed_statistics(homogeneous, "algorithm.name", paired="fedcl")


# ---------------------------------------------------------------- experiment files


EXPERIMENTS = sorted(Path(__file__).parent.parent.glob("experiments/**/*.toml"))


# Experiment files only: not run configs (configs/, and a results run's config.toml).
@pytest.mark.parametrize(
    "path", [p for p in EXPERIMENTS if "configs" not in p.parts and "results" not in p.parts]
)
def test_experiment_files_plan_valid_runs_with_equal_encoders(path):
    """Every run of every scale is a valid config, and wherever schemes are compared,
    each scheme has a homogeneous-encoder series (the primary one)."""
    from semfed.experiment import load_experiment
    from semfed.sweep import plan_runs

    exp = load_experiment(path)
    for name, scale in exp.scales.items():
        runs = plan_runs(
            exp.config,
            exp.grid_for(name),
            [*exp.overrides, *scale.overrides],
            scale.seeds,
            exp.when,
            exclude=exp.exclude,
        )
        configs = [load_config(exp.config, r.overrides) for r in runs]
        algorithms = {c.algorithm.name for c in configs}
        if len(algorithms) > 1:
            homogeneous = {c.algorithm.name for c in configs if c.model.encoders == "homogeneous"}
            assert homogeneous == algorithms, (path.name, name)
        if scale.seeds:
            assert {c.partition.seed for c in configs} == set(range(scale.seeds))
