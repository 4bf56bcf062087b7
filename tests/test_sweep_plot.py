"""``semfed sweep`` (resume, failures, sweep.csv) and ``semfed plot`` (from fixtures)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from semfed.cli import main
from semfed.config import dumps_toml, load_config
from semfed.errors import UserError
from semfed.sweep import SweepError, parse_grid, plan_runs, split_values

# A tiny synthetic config: 2 clients, 8x8 images, one round (about 10 s a run).
TINY_TOML = """
[data]
name = "synthetic"
synthetic_image_size = 8
synthetic_classes = 4
synthetic_train_per_class = 20
synthetic_test_per_class = 10
[partition]
num_clients = 2
ways = 2
shots = 8
test_shots = 5
[model]
encoder_width = 4
decoder_hidden = [8]
scg_hidden = 8
[training]
batch_size = 8
rounds = 1
checkpoint_every = 1
[link]
channel = "awgn"
uplink_snr_db = 20.0
downlink_snr_db = 20.0
[output]
progress = false
tensorboard = false
"""


@pytest.fixture
def tiny_toml(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path) as fh:
        return {row["run"]: row for row in csv.DictReader(fh)}


# ---------------------------------------------------------------- sweep, no training


def test_grid_values_split_outside_brackets():
    assert split_values("0,10.5,-5") == ["0", "10.5", "-5"]
    assert split_values("[32,16],[8]") == ["[32,16]", "[8]"]
    assert parse_grid(["model.decoder_hidden=[32,16],[8]"]) == [
        ("model.decoder_hidden", ["[32,16]", "[8]"])
    ]
    with pytest.raises(SweepError):
        parse_grid(["link.uplink_snr_db"])
    with pytest.raises(SweepError):
        parse_grid(["link.uplink_snr_db=0,"])


def test_plan_names_seeds_and_overrides(tiny_toml):
    grid = parse_grid(["link.uplink_snr_db=0.0,10", "algorithm.name=fedcl,fedavg"])
    runs = plan_runs(tiny_toml, grid, ["training.rounds=2"], seeds=2)
    assert len(runs) == 8
    names = [r.name for r in runs]
    assert len(set(names)) == 8
    assert "link.uplink_snr_db=0.0__algorithm.name=fedcl__seed=0" in names
    r = runs[1]
    assert r.seed == 1
    assert r.overrides[0] == "training.rounds=2"
    # A seed varies the split as well as the training...
    assert "training.seed=1" in r.overrides and "partition.seed=1" in r.overrides
    # ... unless the seed keys say otherwise.
    runs = plan_runs(tiny_toml, grid, seeds=2, seed_keys=["training.seed"])
    assert "training.seed=1" in runs[1].overrides
    assert not any(o.startswith("partition.seed") for o in runs[1].overrides)
    with pytest.raises(SweepError, match="seed key"):
        plan_runs(tiny_toml, parse_grid(["partition.seed=0,1"]), seeds=2)
    # Excluded grid points are left out (FedAvg cannot run heterogeneous encoders).
    enc = parse_grid(["algorithm.name=fedcl,fedavg", "model.encoders=homogeneous,heterogeneous"])
    rule = {"algorithm.name": "fedavg", "model.encoders": "heterogeneous"}
    names = [r.name for r in plan_runs(tiny_toml, enc, exclude=[rule])]
    assert len(names) == 3 and not any("fedavg__model.encoders=heterogeneous" in n for n in names)
    # Unknown keys and seed conflicts end before anything runs.
    with pytest.raises(SweepError, match="unknown config key"):
        plan_runs(tiny_toml, parse_grid(["link.uplink_snr=0,1"]))
    with pytest.raises(SweepError, match="exclude"):
        plan_runs(tiny_toml, parse_grid(["training.seed=0,1"]), seeds=2)


def test_sweep_rejects_bad_grid_with_one_line(tiny_toml, tmp_path, capsys):
    rc = main(
        ["sweep", "--config", str(tiny_toml), "--grid", "nope.key=1,2", "--out", str(tmp_path)]
    )
    assert rc == 2
    assert "unknown config key" in capsys.readouterr().err


# ---------------------------------------------------------------- sweep, tiny training


def test_sweep_failure_recorded_and_rerun_skips_and_resumes(tiny_toml, tmp_path, capsys):
    out = tmp_path / "sweep"
    cmd = [
        "sweep",
        "--config",
        str(tiny_toml),
        "--grid",
        "partition.ways=2,99",  # 99 > 4 classes: a PartitionError in that run only
        "--out",
        str(out),
        "--workers",
        "2",
    ]
    assert main(cmd) == 1  # one run failed
    rows = read_csv(out / "sweep.csv")
    assert set(rows) == {"partition.ways=2", "partition.ways=99"}
    good, bad = rows["partition.ways=2"], rows["partition.ways=99"]
    assert good["status"] == "done"
    assert 0.0 <= float(good["final_test_acc"]) <= 1.0
    assert float(good["oracle_best_test_acc"]) >= float(good["final_test_acc"])
    assert good["final_test_acc"] == good["final_test_acc_global"]
    assert float(good["wall_s"]) > 0
    assert good["partition.ways"] == "2"
    assert bad["status"] == "failed"
    assert "only 4 classes" in bad["error"]
    assert "only 4 classes" in (out / "partition.ways=99" / "error.txt").read_text()
    assert not (out / "partition.ways=2" / "error.txt").exists()
    summary = out / "partition.ways=2" / "summary.json"
    mtime = summary.stat().st_mtime_ns
    capsys.readouterr()

    # The same command again: the finished run is not redone.
    assert main(cmd) == 1
    rows = read_csv(out / "sweep.csv")
    assert rows["partition.ways=2"]["status"] == "skipped-done"
    assert rows["partition.ways=2"]["final_test_acc"] == good["final_test_acc"]
    assert rows["partition.ways=99"]["status"] == "failed"
    assert summary.stat().st_mtime_ns == mtime
    assert "skipped-done partition.ways=2" in capsys.readouterr().out

    # More rounds: the finished run's hash changes, so it is resumed, not restarted.
    assert main([*cmd, "--set", "training.rounds=2"]) == 1
    rows = read_csv(out / "sweep.csv")
    assert rows["partition.ways=2"]["status"] == "done"
    assert rows["partition.ways=2"]["rounds"] == "2"
    metrics = (out / "partition.ways=2" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["round"] for line in metrics] == [0, 1]
    assert "(resume)" in capsys.readouterr().out
    assert json.loads((out / "sweep.json").read_text())["grid"] == {"partition.ways": ["2", "99"]}


def test_sweep_backend_options_rejected_with_one_line(tiny_toml, tmp_path, capsys):
    base = ["sweep", "--config", str(tiny_toml), "--grid", "link.uplink_snr_db=0,10"]
    base += ["--out", str(tmp_path / "sweep")]
    for extra, message in (
        (["--ray-address", "auto"], "needs --backend ray"),
        (["--gpus-per-run", "1"], "need --backend ray"),
        (["--backend", "ray", "--cpus-per-run", "3", "--workers", "2"], "exceeds"),
        (["--backend", "ray", "--gpus-per-run", "-1"], "expected >= 0"),
    ):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "sweep").exists()  # rejected before anything is written


def test_sweep_ray_backend_local_cluster(tiny_toml, tmp_path, capsys):
    import ray

    out = tmp_path / "sweep"
    cmd = ["sweep", "--config", str(tiny_toml), "--grid", "link.uplink_snr_db=10,20"]
    cmd += ["--out", str(out), "--backend", "ray", "--workers", "2"]
    assert main(cmd) == 0
    assert not ray.is_initialized()  # the local Ray it started is shut down
    rows = read_csv(out / "sweep.csv")
    assert set(rows) == {"link.uplink_snr_db=10", "link.uplink_snr_db=20"}
    for name, row in rows.items():
        assert row["status"] == "done"
        assert 0.0 <= float(row["final_test_acc"]) <= float(row["oracle_best_test_acc"]) <= 1.0
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["config_hash"] == row["config_hash"]
        assert not (out / name / "error.txt").exists()
    assert capsys.readouterr().out.count("submit link.uplink_snr_db=") == 2

    # Rerun on Ray: both are skipped, as with the local backend (no Ray is started).
    assert main(cmd) == 0
    rows = read_csv(out / "sweep.csv")
    assert {row["status"] for row in rows.values()} == {"skipped-done"}
    assert capsys.readouterr().out.count("skipped-done link.uplink_snr_db=") == 2


def test_sweep_killed_part_way_then_rerun_does_not_redo_finished_runs(tiny_toml, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "sweep"
    cmd = ["sweep", "--config", str(tiny_toml), "--grid", "partition.ways=1,2,3"]
    cmd += ["--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "semfed", *cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the sweep and its run processes form one group
    )
    first = out / "partition.ways=1" / "summary.json"

    def first_recorded() -> bool:
        try:
            return read_csv(out / "sweep.csv")["partition.ways=1"]["status"] == "done"
        except (OSError, KeyError):
            return False

    deadline = time.time() + 240
    while not first_recorded() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert first_recorded(), "the first run did not finish"
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep dies part-way (the second run is going)
    proc.wait()
    rows = read_csv(out / "sweep.csv")
    assert rows["partition.ways=1"]["status"] == "done"
    assert rows["partition.ways=3"]["status"] == "pending"
    mtime = first.stat().st_mtime_ns

    assert main(cmd) == 0
    rows = read_csv(out / "sweep.csv")
    assert rows["partition.ways=1"]["status"] == "skipped-done"
    assert first.stat().st_mtime_ns == mtime  # not redone
    assert rows["partition.ways=2"]["status"] == "done"
    assert rows["partition.ways=3"]["status"] == "done"


EXPERIMENT_TOML = """
title = "tiny experiment"
config = "tiny.toml"
set = {"training.rounds" = 1}
[grid]
"algorithm.name" = ["fedcl", "fedavg"]
[when."algorithm.name=fedavg"]
"model.encoders" = "homogeneous"
[scale.cpu]
seeds = 1
note = "tiny scale"
set = {"partition.shots" = 6}
[[plot]]
kind = "curves"
name = "a_"
[[plot]]
kind = "cost"
"""


def test_experiment_file_runs_its_sweep_and_plots(tiny_toml, tmp_path, capsys):
    spec = tmp_path / "exp.toml"
    spec.write_text(EXPERIMENT_TOML)
    out = tmp_path / "exp_out"
    assert main(["experiment", str(spec), "--scale", "cpu", "--out", str(out)]) == 0
    rows = read_csv(out / "sweep.csv")
    assert set(rows) == {"algorithm.name=fedcl__seed=0", "algorithm.name=fedavg__seed=0"}
    assert {r["status"] for r in rows.values()} == {"done"}
    fedavg = load_config(out / "runs" / "algorithm.name=fedavg__seed=0" / "config.toml")
    fedcl = load_config(out / "runs" / "algorithm.name=fedcl__seed=0" / "config.toml")
    assert fedavg.model.encoders == "homogeneous"  # the conditional setting
    assert fedcl.model.encoders == "heterogeneous"
    assert fedcl.partition.shots == 6 and fedcl.training.rounds == 1  # scale and common set
    names = {p.name for p in (out / "plots").iterdir()}
    assert {"a_curves.png", "a_curves.pdf", "1_cost.png", "1_cost.pdf"} <= names
    capsys.readouterr()
    # Plots only, from the finished runs; a scale the file lacks is a one-line error.
    assert main(["experiment", str(spec), "--out", str(out), "--plots-only"]) == 0
    assert main(["experiment", str(spec), "--scale", "huge", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no scale 'huge'" in err and len(err.strip().splitlines()) == 1


def test_experiment_file_errors_name_the_key(tmp_path, capsys):
    from semfed.experiment import ExperimentError, load_experiment, toml_text

    (tmp_path / "base.toml").write_text("")
    for text, message in (
        ('config = "base.toml"\nsurprise = 1\n', "unknown key(s) surprise"),
        ('title = "x"\n', "'config'"),
        ('config = "base.toml"\n[grid]\n"link.channel" = []\n', "grid.link.channel"),
        ('config = "base.toml"\n[[plot]]\nkind = "pie"\n', "plot[0].kind"),
        ('config = "nope.toml"\n', "not found"),
    ):
        path = tmp_path / "e.toml"
        path.write_text(text)
        with pytest.raises(ExperimentError, match=re.escape(message)):
            load_experiment(path)
    assert toml_text("fedcl") == "fedcl"
    assert toml_text("10") == '"10"'  # a string that looks like a number stays a string
    assert toml_text([1.0, -5.0]) == "[1.0, -5.0]"


# ---------------------------------------------------------------- plot, from fixtures


def _fake_run(path: Path, algorithm: str, seed: int, snr: float, accs: list[float]) -> None:
    path.mkdir(parents=True)
    cfg = load_config(
        None,
        [
            "data.name=synthetic",
            "partition.num_clients=2",
            "model.encoders=homogeneous",
            f"algorithm.name={algorithm}",
            f"training.seed={seed}",
            f"link.uplink_snr_db={snr}",
            f"training.rounds={len(accs)}",
        ],
    )
    (path / "config.toml").write_text(dumps_toml(cfg.to_dict()))
    by_snr = {"-5": accs[-1] - 0.2, "5": accs[-1] - 0.1, "20": accs[-1]}
    records = [{"round": t, "algorithm": algorithm, "test_acc": a} for t, a in enumerate(accs)]
    records[-1]["test_acc_by_snr"] = by_snr
    lines = [json.dumps(r) for r in records]
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    summary = {
        "algorithm": algorithm,
        "final_test_acc": accs[-1],
        "final_test_acc_global": accs[-1],
        "oracle_best_test_acc": max(accs),
        "final_test_acc_by_snr": by_snr,
        "rounds": len(accs),
        "total_uplink_symbols": 1000 if algorithm == "fedcl" else 0,
        "total_downlink_symbols": 1000 if algorithm == "fedcl" else 0,
        "total_param_bits": 0 if algorithm == "fedcl" else 32 * 10**6,
    }
    (path / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def fake_sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    for alg, base in (("fedcl", 0.6), ("fedavg", 0.3)):
        for snr in (0.0, 10.0):
            for seed in (0, 1):
                accs = [base * (t + 1) / 3 + 0.02 * seed + snr / 100 for t in range(3)]
                _fake_run(root / f"{alg}_{snr}_{seed}", alg, seed, snr, accs)
    return root


def _check_files(paths: list[Path], stem: str) -> None:
    names = {p.name for p in paths}
    assert {f"{stem}.png", f"{stem}.pdf"} <= names
    for p in paths:
        assert p.stat().st_size > 1000


def test_plot_curves_and_snr(fake_sweep, tmp_path, capsys):
    from semfed.plot import group_runs, load_runs, make_plots

    runs = load_runs([fake_sweep])
    groups, _ = group_runs(runs)
    assert len(groups) == 4  # 2 algorithms x 2 SNRs, seeds grouped
    assert all(len(members) == 2 for _, members in groups)
    assert groups[0][0].startswith("algorithm=")

    out = tmp_path / "figs"
    assert main(["plot", str(fake_sweep), "--out", str(out)]) == 0
    assert (out / "curves.png").stat().st_size > 1000
    assert (out / "curves.pdf").stat().st_size > 1000
    _check_files(make_plots([fake_sweep], out, "snr"), "snr")
    # Without test_acc_by_snr the points come from the runs' uplink SNR.
    for d in fake_sweep.iterdir():
        summary = json.loads((d / "summary.json").read_text())
        del summary["final_test_acc_by_snr"]
        (d / "summary.json").write_text(json.dumps(summary))
    _check_files(make_plots([fake_sweep], tmp_path / "figs2", "snr"), "snr")
    assert capsys.readouterr().out.count("curves.") == 2


def test_plot_tsne(tmp_path):
    from semfed.plot import make_plots

    run = tmp_path / "run"
    _fake_run(run, "fedcl", 0, 5.0, [0.4, 0.5])
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    feats = rng.normal(size=(120, 8)) + labels[:, None] * 3.0
    np.savez(run / "features.npz", features=feats, labels=labels, snr_db=np.array([5.0, 5.0]))
    _check_files(make_plots([run], tmp_path / "figs", "tsne"), "tsne")


def test_plot_errors_are_one_line(tmp_path, capsys):
    from semfed.plot import make_plots

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["plot", str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "holds no run" in err and len(err.strip().splitlines()) == 1
    run = tmp_path / "run"
    _fake_run(run, "fedcl", 0, 5.0, [0.4])
    with pytest.raises(UserError, match=r"features\.npz"):
        make_plots([run], tmp_path / "o", "tsne")
    (run / "config.toml").unlink()
    (run / "summary.json").unlink()
    (run / "metrics.jsonl").write_text(json.dumps({"round": 0, "loss": 1.0}) + "\n")
    with pytest.raises(UserError, match="test accuracies"):
        make_plots([run], tmp_path / "o", "curves")
    with pytest.raises(UserError, match="no SNR results"):
        make_plots([run], tmp_path / "o", "snr")


def test_plot_vs_cost_where_by_and_link(fake_sweep, tmp_path):
    from semfed.plot import communication_load, load_runs, make_plots

    out = tmp_path / "figs"
    _check_files(make_plots([fake_sweep], out, "vs", x="link.uplink_snr_db"), "vs_uplink_snr_db")
    made = make_plots([fake_sweep], out, "curves", by="algorithm.name", note="tiny scale")
    _check_files(made, "algorithm=fedavg_curves")
    _check_files(made, "algorithm=fedcl_curves")
    made = make_plots([fake_sweep], out, "cost", where={"link.uplink_snr_db": 10.0}, prefix="p_")
    _check_files(made, "p_cost")
    loads = {r["config"]["algorithm.name"]: communication_load(r) for r in load_runs([fake_sweep])}
    assert loads == {"fedcl": 4000.0, "fedavg": 10.0**6}  # 2 per symbol, 1 per 32 bits
    with pytest.raises(UserError, match="no run matches"):
        make_plots([fake_sweep], out, "curves", where={"algorithm.name": "fedprox"})
    with pytest.raises(UserError, match="needs --x"):
        make_plots([fake_sweep], out, "vs")

    link = tmp_path / "link"
    link.mkdir()
    rows = ["channel,csi,equalizer,snr_db,feature_nmse,feature_nmse_db,post_eq_snr_db,ber_qpsk"]
    for snr in (0.0, 10.0, 20.0):
        nmse = 10 ** (-snr / 10)
        rows.append(f"awgn,perfect,mmse,{snr},{nmse},{-snr},{snr},{0.1 * nmse}")
    (link / "link.csv").write_text("\n".join(rows) + "\n")
    _check_files(make_plots([link], out, "link"), "link")
    with pytest.raises(UserError, match=r"no link\.csv"):
        make_plots([tmp_path / "figs"], out, "link")
