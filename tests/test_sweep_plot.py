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
from tests.tiny_setting import TINY_TOML


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
    # Seed-major: every grid point's seed 0 first, so a stopped sweep is balanced.
    assert [r.seed for r in runs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert runs[0].grid == runs[4].grid
    r = runs[4]
    assert r.seed == 1
    assert r.overrides[0] == "training.rounds=2"
    # A seed varies the split as well as the training...
    assert "training.seed=1" in r.overrides and "partition.seed=1" in r.overrides
    # ... unless the seed keys say otherwise.
    runs = plan_runs(tiny_toml, grid, seeds=2, seed_keys=["training.seed"])
    assert "training.seed=1" in runs[4].overrides
    assert not any(o.startswith("partition.seed") for o in runs[4].overrides)
    with pytest.raises(SweepError, match="seed key"):
        plan_runs(tiny_toml, parse_grid(["partition.seed=0,1"]), seeds=2)
    # Excluded grid points are left out (FedAvg cannot run heterogeneous encoders).
    enc = parse_grid(["algorithm.name=fedcl,fedavg", "model.encoders=homogeneous,heterogeneous"])
    rule = {"algorithm.name": "fedavg", "model.encoders": "heterogeneous"}
    names = [r.name for r in plan_runs(tiny_toml, enc, exclude=[rule])]
    assert len(names) == 3 and not any("fedavg__model.encoders=heterogeneous" in n for n in names)
    # Keys unset by default are keys too (speeds: link.speed_kmh sets both ends).
    speeds = plan_runs(tiny_toml, parse_grid(["link.speed_kmh=0,500"]))
    assert [r.overrides[-1] for r in speeds] == ["link.speed_kmh=0", "link.speed_kmh=500"]
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


@pytest.mark.slow
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
    run_summary = json.loads((out / "partition.ways=2" / "summary.json").read_text())
    assert float(good["final_test_acc"]) == run_summary["final_test_acc"]  # the run's own
    assert float(good["oracle_best_test_acc"]) >= float(good["final_test_acc"])
    assert good["final_test_acc"] == good["final_test_acc_global"]
    assert float(good["wall_s"]) == round(run_summary["wall_s"], 2)
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

    # A run finished by an older semfed (its summary's hash predates a config key
    # added since, at its default; its config.toml lacks the key) is still done.
    data = json.loads(summary.read_text())
    data["config_hash"] = "from-an-older-semfed"
    summary.write_text(json.dumps(data))
    config_file = out / "partition.ways=2" / "config.toml"
    config_text = config_file.read_text()
    config_file.write_text(config_text.replace("bn_momentum = 0.9\n", ""))
    assert main(cmd) == 1
    assert read_csv(out / "sweep.csv")["partition.ways=2"]["status"] == "skipped-done"
    # ... but a default that changed since (written in the old file) tells them apart.
    from semfed.sweep import _same_run

    planned = load_config(config_file).hash()
    assert _same_run(out / "partition.ways=2", data, planned)
    config_file.write_text(config_text.replace("bn_momentum = 0.9", "bn_momentum = 0.99"))
    assert not _same_run(out / "partition.ways=2", data, planned)
    config_file.write_text(config_text)
    capsys.readouterr()

    # More rounds: the finished run's hash changes, so it is resumed, not restarted.
    assert main([*cmd, "--set", "training.rounds=2"]) == 1
    rows = read_csv(out / "sweep.csv")
    assert rows["partition.ways=2"]["status"] == "done"
    assert rows["partition.ways=2"]["rounds"] == "2"
    metrics = (out / "partition.ways=2" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["round"] for line in metrics] == [0, 1]
    assert "(resume)" in capsys.readouterr().out
    assert json.loads((out / "sweep.json").read_text())["grid"] == {"partition.ways": ["2", "99"]}

    # A directory holding another run (a key a resume may not change) is reported
    # and left alone, not handed to semfed train --resume to be refused.
    more = [*cmd, "--set", "training.rounds=2", "--set", "algorithm.lam=3.0"]
    held = config_file.read_text()
    assert main(more) == 1
    row = read_csv(out / "sweep.csv")["partition.ways=2"]
    assert row["status"] == "failed"
    assert "holds another run: its config differs in algorithm.lam" in row["error"]
    assert "--redo-stale" in row["error"]
    assert config_file.read_text() == held  # left as it is
    assert "start partition.ways=2" not in capsys.readouterr().out
    # --redo-stale trains it again from scratch, as planned.
    assert main([*more, "--redo-stale"]) == 1
    row = read_csv(out / "sweep.csv")["partition.ways=2"]
    assert row["status"] == "done" and row["rounds"] == "2"
    assert "start partition.ways=2 (overwrite)" in capsys.readouterr().out
    assert load_config(config_file).algorithm.lam == 3.0
    metrics = (out / "partition.ways=2" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["round"] for line in metrics] == [0, 1]  # not appended to
    assert not (out / "partition.ways=2" / "error.txt").exists()


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


@pytest.mark.slow
def test_sweep_ray_backend_local_cluster(tiny_toml, tmp_path, capsys, monkeypatch):
    import os

    import ray

    # Ray's usage statistics are off by the time Ray starts (these machines are offline).
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
    init, stats_setting = ray.init, []

    def recording_init(*args, **kwargs):
        stats_setting.append(os.environ.get("RAY_USAGE_STATS_ENABLED"))
        return init(*args, **kwargs)

    monkeypatch.setattr(ray, "init", recording_init)
    out = tmp_path / "sweep"
    cmd = ["sweep", "--config", str(tiny_toml), "--grid", "link.uplink_snr_db=10,20"]
    cmd += ["--out", str(out), "--backend", "ray", "--workers", "2"]
    assert main(cmd) == 0
    assert stats_setting == ["0"]
    assert not ray.is_initialized()  # the local Ray it started is shut down
    rows = read_csv(out / "sweep.csv")
    assert set(rows) == {"link.uplink_snr_db=10", "link.uplink_snr_db=20"}
    for name, row in rows.items():
        assert row["status"] == "done"
        summary = json.loads((out / name / "summary.json").read_text())
        assert float(row["final_test_acc"]) == summary["final_test_acc"]
        assert summary["config_hash"] == row["config_hash"]
        assert not (out / name / "error.txt").exists()
    assert capsys.readouterr().out.count("submit link.uplink_snr_db=") == 2

    # Rerun on Ray: both are skipped, as with the local backend (no Ray is started).
    assert main(cmd) == 0
    rows = read_csv(out / "sweep.csv")
    assert {row["status"] for row in rows.values()} == {"skipped-done"}
    assert capsys.readouterr().out.count("skipped-done link.uplink_snr_db=") == 2


@pytest.mark.slow
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
name = "cost_"
"""


def test_plot_note_says_how_many_of_the_scales_seeds_have_finished(tiny_toml, tmp_path):
    """A part-way sweep's titles say so beside the scale's planned seed count."""
    from semfed.experiment import load_experiment, plot_note
    from semfed.plot import load_runs

    spec = tmp_path / "exp.toml"
    spec.write_text(EXPERIMENT_TOML.replace("seeds = 1", "seeds = 3"))
    exp = load_experiment(spec)
    root = tmp_path / "runs"
    for seed in (0, 1):
        for alg in ("fedcl", "fedavg"):
            _fake_run(root / f"{alg}_{seed}", alg, seed, 10.0, [0.5])
    part = "tiny experiment [tiny scale; 2 of 3 seeds finished so far]"
    assert plot_note(exp, "cpu", load_runs([root])) == part
    _fake_run(root / "fedcl_2", "fedcl", 2, 10.0, [0.5])
    assert plot_note(exp, "cpu", load_runs([root])) == "tiny experiment [tiny scale]"


@pytest.mark.slow
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
    assert names == {"a_curves.png", "a_curves.pdf", "cost.png", "cost.pdf"}  # not cost_cost
    capsys.readouterr()
    # Plots only, from the finished runs; a scale the file lacks is a one-line error.
    assert main(["experiment", str(spec), "--out", str(out), "--plots-only"]) == 0
    assert main(["experiment", str(spec), "--scale", "huge", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no scale 'huge'" in err and len(err.strip().splitlines()) == 1


def test_plot_file_names_say_figure_and_kind_once():
    from semfed.plot import file_stem

    assert file_stem("", "cost") == "cost"
    assert file_stem("cost_", "cost") == "cost"
    assert file_stem("communication_cost_", "cost") == "communication_cost"
    assert file_stem("cost_heterogeneous_", "cost") == "cost_heterogeneous"
    assert file_stem("cost_", "curves") == "cost_curves"
    assert file_stem("fig2a_", "cost") == "fig2a_cost"
    assert file_stem("fig2a_num_clients=20_", "curves") == "fig2a_num_clients=20_curves"
    assert file_stem("fig3b_", "vs_ways") == "fig3b_vs_ways"
    assert file_stem("vs_", "vs_ways") == "vs_ways"
    assert file_stem("fig4_", "tsne_run=1") == "fig4_tsne_run=1"


def test_experiment_file_errors_name_the_key(tmp_path, capsys):
    from semfed.experiment import ExperimentError, load_experiment, toml_text

    (tmp_path / "base.toml").write_text("")
    for text, message in (
        ('config = "base.toml"\nsurprise = 1\n', "unknown key(s) surprise"),
        ('title = "x"\n', "'config'"),
        ('config = "base.toml"\n[grid]\n"link.channel" = []\n', "grid.link.channel"),
        ('config = "base.toml"\n[[plot]]\nkind = "pie"\n', "plot[0].kind"),
        ('config = "base.toml"\n[[plot]]\nkind = "curves"\npaired = "a"\n', "plot[0].paired"),
        ('config = "base.toml"\n[[plot]]\nkind = "snr"\npaired = 20\n', "plot[0].paired"),
        ('config = "nope.toml"\n', "not found"),
        ('config = "base.toml"\n[[compare]]\npaired = "fedcl"\n', "compare[0].by"),
        ('config = "base.toml"\n[[compare]]\nby = "a.b"\nprotocols = ["x"]\n', "protocols"),
    ):
        path = tmp_path / "e.toml"
        path.write_text(text)
        with pytest.raises(ExperimentError, match=re.escape(message)):
            load_experiment(path)
    assert toml_text("fedcl") == "fedcl"
    assert toml_text("10") == '"10"'  # a string that looks like a number stays a string
    assert toml_text([1.0, -5.0]) == "[1.0, -5.0]"


# ---------------------------------------------------------------- plot, from fixtures


def _fake_run(
    path: Path, algorithm: str, seed: int, snr: float, accs: list[float], *extra: str
) -> None:
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
            *extra,
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
        "total_airtime_ms": 150.0 if algorithm == "fedcl" else 2500.0,
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


def _names(paths: list[Path]) -> set[str]:
    return {p.name for p in paths}


@pytest.fixture
def drawn(monkeypatch):
    """The figures semfed.plot saves, read back from matplotlib (kept from plt.close)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None, *a, **k: figures.append(fig))
    yield figures
    monkeypatch.undo()
    plt.close("all")


def _content(fig) -> dict:
    """Axis labels, legend entries and the plotted series {label: (x, y)} of a one-axes figure."""
    (ax,) = fig.axes
    series = {}
    for container in ax.containers:  # error bars: the data line is the first
        line = container.lines[0]
        series[container.get_label()] = (list(line.get_xdata()), list(line.get_ydata()))
    for line in ax.get_lines():
        if not line.get_label().startswith("_"):
            series[line.get_label()] = (list(line.get_xdata()), list(line.get_ydata()))
    legend = ax.get_legend()
    return {
        "xlabel": ax.get_xlabel(),
        "ylabel": ax.get_ylabel(),
        "title": ax.get_title(),
        "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
        "series": series,
        "bands": len(ax.collections) - len(ax.containers),
    }


def _fake_mean(alg: str, snr: float, t: int) -> float:
    """Mean over the two seeds of ``fake_sweep``'s accuracy at round t, in %."""
    base = {"fedcl": 0.6, "fedavg": 0.3}[alg]
    return 100 * (base * (t + 1) / 3 + 0.01 + snr / 100)


def test_title_counts_seeds_per_drawn_setting(tmp_path):
    """A part-way sweep: the title gives the range of n over the drawn settings."""
    from semfed.plot import load_runs, title_for

    root = tmp_path / "runs"
    for alg, seeds in (("fedcl", (0, 1, 2)), ("fedavg", (0, 1))):
        for seed in seeds:
            _fake_run(root / f"{alg}_{seed}", alg, seed, 10.0, [0.5])
    runs = load_runs([root])
    assert "n = 2 to 3 seeds" in title_for({}, runs, "h")
    fedcl = [r for r in runs if r["config"]["algorithm.name"] == "fedcl"]
    assert "n = 3 seeds" in title_for({}, fedcl, "h")


def test_plot_curves_and_snr(fake_sweep, tmp_path, capsys, drawn):
    from semfed.plot import group_runs, load_runs, make_plots

    runs = load_runs([fake_sweep])
    groups, _ = group_runs(runs)
    assert len(groups) == 4  # 2 algorithms x 2 SNRs, seeds grouped
    assert all(len(members) == 2 for _, members in groups)
    assert groups[0][0].startswith("algorithm=")

    out = tmp_path / "figs"
    assert main(["plot", str(fake_sweep), "--out", str(out)]) == 0
    assert {"curves.png", "curves.pdf"} <= {p.name for p in out.iterdir()}
    curves = _content(drawn[-1])
    assert (curves["xlabel"], curves["ylabel"]) == ("communication round", "test accuracy (%)")
    assert "protocol global" in curves["title"] and "n = 2 seeds" in curves["title"]
    assert curves["bands"] == 4  # a 95 % band per setting
    assert (
        sorted(curves["legend"])
        == sorted(curves["series"])
        == [f"algorithm={a}, uplink_snr_db={s} (n=2)" for a in ("fedavg", "fedcl") for s in (0, 10)]
    )
    for alg in ("fedavg", "fedcl"):
        for snr in (0, 10):
            x, y = curves["series"][f"algorithm={alg}, uplink_snr_db={snr} (n=2)"]
            assert x == [1, 2, 3]
            np.testing.assert_allclose(y, [_fake_mean(alg, snr, t) for t in range(3)])

    # From test_acc_by_snr: one curve per algorithm over the three evaluation SNRs,
    # each point the mean of 4 runs (2 uplink SNRs x 2 seeds).
    assert _names(make_plots([fake_sweep], out, "snr")) == {"snr.png", "snr.pdf"}
    snr = _content(drawn[-1])
    assert snr["xlabel"] == "evaluation SNR (dB)" and snr["ylabel"] == "final test accuracy (%)"
    assert sorted(snr["legend"]) == sorted(snr["series"]) == ["algorithm=fedavg", "algorithm=fedcl"]
    for alg in ("fedavg", "fedcl"):
        last = np.mean([_fake_mean(alg, s, 2) for s in (0, 10)])
        x, y = snr["series"][f"algorithm={alg}"]
        assert x == [-5.0, 5.0, 20.0]
        np.testing.assert_allclose(y, [last - 20, last - 10, last])
    # Without test_acc_by_snr the points come from the runs' uplink SNR.
    for d in fake_sweep.iterdir():
        summary = json.loads((d / "summary.json").read_text())
        del summary["final_test_acc_by_snr"]
        (d / "summary.json").write_text(json.dumps(summary))
    make_plots([fake_sweep], tmp_path / "figs2", "snr")
    snr = _content(drawn[-1])
    assert snr["xlabel"] == "uplink SNR (dB)"
    for alg in ("fedavg", "fedcl"):
        x, y = snr["series"][f"algorithm={alg}"]
        assert x == [0.0, 10.0]
        np.testing.assert_allclose(y, [_fake_mean(alg, s, 2) for s in (0, 10)])
    assert capsys.readouterr().out.count("curves.") == 2


def test_plot_tsne(tmp_path, drawn):
    from semfed.plot import make_plots

    run = tmp_path / "run"
    _fake_run(run, "fedcl", 0, 5.0, [0.4, 0.5])
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    feats = rng.normal(size=(120, 8)) + labels[:, None] * 3.0
    np.savez(run / "features.npz", features=feats, labels=labels, snr_db=np.array([5.0, 5.0]))
    assert _names(make_plots([run], tmp_path / "figs", "tsne")) == {"tsne.png", "tsne.pdf"}
    (ax,) = drawn[-1].axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["class 0", "class 1", "class 2"]
    assert [len(c.get_offsets()) for c in ax.collections] == [40, 40, 40]  # every point drawn
    assert "SNR 5 dB" in ax.get_title() and "120 points" in ax.get_title()
    # well-separated classes stay apart: each class's centre is nearer its own points
    centres = np.array([c.get_offsets().mean(axis=0) for c in ax.collections])
    for i, c in enumerate(ax.collections):
        dist = np.linalg.norm(c.get_offsets()[:, None, :] - centres[None], axis=-1)
        assert (dist.argmin(axis=1) == i).mean() > 0.9


def test_plot_tsne_panels_one_per_scheme_scored_over_seeds(tmp_path, drawn):
    """Fig. 4: a panel per scheme drawn from its first seed; titles carry the k-NN
    accuracy and silhouette over all its seeds (mean [95 % interval])."""
    from semfed.plot import make_plots

    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), 30)
    knn = {("fedcl", 0): 0.9, ("fedcl", 1): 0.8, ("fedavg", 0): 0.5, ("fedavg", 1): 0.5}
    for (alg, seed), k in knn.items():
        run = tmp_path / "sweep" / f"{alg}_{seed}"
        _fake_run(run, alg, seed, 5.0, [0.4])
        spread = 3.0 if alg == "fedcl" else 0.1
        feats = rng.normal(size=(90, 4)) + labels[:, None] * spread
        np.savez(run / "features.npz", features=feats, labels=labels, snr_db=np.array([5.0]))
        summary = json.loads((run / "summary.json").read_text())
        summary.update(feature_knn_acc=k, feature_silhouette=k - 0.5)
        (run / "summary.json").write_text(json.dumps(summary))
    names = _names(make_plots([tmp_path / "sweep"], tmp_path / "figs", "tsne"))
    # One figure per scheme (its first seed) and the panels.
    assert names == {
        *(f"tsne_{a}_0.{e}" for a in ("fedavg", "fedcl") for e in ("png", "pdf")),
        "tsne_panels.png",
        "tsne_panels.pdf",
    }
    panels = drawn[-1].axes
    titles = sorted(ax.get_title() for ax in panels)
    assert titles[0].startswith("algorithm=fedavg") and "5-NN acc 0.500 [0.500, 0.500]" in titles[0]
    # fedcl: mean 0.85, t(0.975, 1) = 12.706, s = 0.0707: half-width 0.635.
    assert "5-NN acc 0.850 [0.215, 1.485]" in titles[1] and "(n = 2)" in titles[1]
    assert [len(c.get_offsets()) for c in panels[0].collections] == [30, 30, 30]


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


def test_plot_cost_spreads_settings_of_the_same_cost(fake_sweep, tmp_path, drawn):
    """FedCL at 0 and 10 dB sends the same symbols: its two points are drawn at
    load / sqrt(1.08) (the higher mean) and load * sqrt(1.08), labels stacked."""
    from semfed.plot import COST_DODGE, make_plots

    make_plots([fake_sweep], tmp_path / "figs", "cost", where={"algorithm.name": "fedcl"})
    cost = _content(drawn[-1])
    high, low = (cost["series"][k] for k in sorted(cost["series"], key=lambda k: "=0" in k))
    np.testing.assert_allclose(high[0], [4000.0 / COST_DODGE**0.5])
    np.testing.assert_allclose(low[0], [4000.0 * COST_DODGE**0.5])
    assert high[1][0] > low[1][0]
    labels = sorted(drawn[-1].axes[0].texts, key=lambda t: -t.xyann[1])
    assert [t.xyann for t in labels] == [(8, 4), (8, -5)]
    assert "uplink_snr_db=10" in labels[0].get_text()


def test_plot_vs_speed_is_one_curve_per_spacing(tmp_path, drawn):
    """link.speed_kmh sets min_speed_kmh and max_speed_kmh too; they differ with it but
    must not split the curve."""
    from semfed.plot import make_plots

    root = tmp_path / "speeds"
    for scs in (15, 120):
        for speed in (0, 500):
            for seed in (0, 1):
                accs = [0.5 - speed / 10_000 * (scs == 15) + 0.01 * seed] * 2
                extra = (f"link.speed_kmh={speed}", f"link.subcarrier_spacing_khz={scs}")
                _fake_run(root / f"{scs}_{speed}_{seed}", "fedcl", seed, 10.0, accs, *extra)
    make_plots([root], tmp_path / "figs", "vs", x="link.speed_kmh")
    vs = _content(drawn[-1])
    assert vs["xlabel"] == "UE speed (km/h)"
    assert sorted(vs["series"]) == ["subcarrier_spacing_khz=120", "subcarrier_spacing_khz=15"]
    x, y = vs["series"]["subcarrier_spacing_khz=15"]
    assert x == [0.0, 500.0]
    np.testing.assert_allclose(y, [50.5, 45.5])


def test_plot_vs_cost_where_by_and_link(fake_sweep, tmp_path, drawn):
    from semfed.plot import communication_load, load_runs, make_plots

    out = tmp_path / "figs"
    made = make_plots([fake_sweep], out, "vs", x="link.uplink_snr_db")
    assert _names(made) == {"vs_uplink_snr_db.png", "vs_uplink_snr_db.pdf"}
    vs = _content(drawn[-1])
    assert vs["xlabel"] == "uplink SNR (dB)" and vs["ylabel"] == "final test accuracy (%)"
    assert sorted(vs["legend"]) == sorted(vs["series"]) == ["algorithm=fedavg", "algorithm=fedcl"]
    for alg in ("fedavg", "fedcl"):
        x, y = vs["series"][f"algorithm={alg}"]
        assert x == [0.0, 10.0]
        np.testing.assert_allclose(y, [_fake_mean(alg, s, 2) for s in (0, 10)])

    made = make_plots([fake_sweep], out, "curves", by="algorithm.name", note="tiny scale")
    assert _names(made) == {
        f"algorithm={a}_curves.{ext}" for a in ("fedavg", "fedcl") for ext in ("png", "pdf")
    }
    for fig, alg in zip(drawn[-2:], ("fedavg", "fedcl"), strict=True):  # one figure per value
        curves = _content(fig)
        assert f"algorithm={alg}" in curves["title"] and "tiny scale" in curves["title"]
        assert sorted(curves["legend"]) == ["uplink_snr_db=0 (n=2)", "uplink_snr_db=10 (n=2)"]
        np.testing.assert_allclose(
            curves["series"]["uplink_snr_db=10 (n=2)"][1],
            [_fake_mean(alg, 10, t) for t in range(3)],
        )

    made = make_plots([fake_sweep], out, "cost", where={"link.uplink_snr_db": 10.0}, prefix="p_")
    assert _names(made) == {"p_cost.png", "p_cost.pdf"}
    cost = _content(drawn[-1])
    assert (
        cost["xlabel"].startswith("communication load") and drawn[-1].axes[0].get_xscale() == "log"
    )
    loads = {r["config"]["algorithm.name"]: communication_load(r) for r in load_runs([fake_sweep])}
    assert loads == {"fedcl": 4000.0, "fedavg": 10.0**6}  # 2 per symbol, 1 per 32 bits
    assert (
        sorted(cost["legend"]) == sorted(cost["series"]) == ["algorithm=fedavg", "algorithm=fedcl"]
    )
    for alg in ("fedavg", "fedcl"):  # one point per setting, at its load
        assert cost["series"][f"algorithm={alg}"][0] == [loads[alg]]
        np.testing.assert_allclose(cost["series"][f"algorithm={alg}"][1], [_fake_mean(alg, 10, 2)])
    snr10 = {"link.uplink_snr_db": 10.0}
    made = make_plots([fake_sweep], out, "cost", cost="airtime", where=snr10, prefix="fig_")
    assert _names(made) == {"fig_cost_airtime.png", "fig_cost_airtime.pdf"}
    airtime = _content(drawn[-1])
    assert airtime["xlabel"].startswith("airtime of the run (s")
    assert "airtime" in airtime["title"] and drawn[-1].axes[0].get_xscale() == "log"
    for alg, seconds in (("fedcl", 0.15), ("fedavg", 2.5)):  # total_airtime_ms / 1000
        assert [round(v, 9) for v in airtime["series"][f"algorithm={alg}"][0]] == [seconds]
    with pytest.raises(UserError, match="--cost"):
        make_plots([fake_sweep], out, "cost", cost="bits")
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
    assert _names(make_plots([link], out, "link")) == {"link.png", "link.pdf"}
    nmse_ax, ber_ax = drawn[-1].axes
    assert nmse_ax.get_ylabel() == "feature NMSE [dB]"
    assert ber_ax.get_ylabel() == "uncoded QPSK bit error rate"
    for ax, want in ((nmse_ax, [0.0, -10.0, -20.0]), (ber_ax, [0.1, 0.01, 0.001])):
        (points,) = ax.containers  # the measured curve, with its theory dashed beside it
        assert points.get_label() == "awgn, perfect CSI, mmse"
        assert list(points.lines[0].get_xdata()) == [0.0, 10.0, 20.0]
        np.testing.assert_allclose(points.lines[0].get_ydata(), want, rtol=1e-9)
        assert [ln.get_label() for ln in ax.get_lines() if ln.get_linestyle() == "--"] == [
            "awgn, perfect CSI, mmse: theory"
        ]
    with pytest.raises(UserError, match=r"no link\.csv"):
        make_plots([tmp_path / "figs"], out, "link")


def test_experiment_only_and_seeds_run_a_part_and_the_rest_later(
    tiny_toml, tmp_path, capsys, monkeypatch
):
    """--only / --seeds run a subset; the others stay pending; a full rerun skips it."""
    import semfed.sweep as sweep_mod

    def fake_run(argv, run_dir, env=None, cwd=None):  # records a finished run, no training
        config = argv[argv.index("--config") + 1]
        sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
        cfg = load_config(config, sets)
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        (Path(run_dir) / "config.toml").write_text(dumps_toml(cfg.to_dict()))
        summary = {"config_hash": cfg.hash(), "final_test_acc": 0.5, "rounds": 1}
        summary.update({f"final_test_acc_{p}": 0.5 for p in ("global", "personal", "masked")})
        (Path(run_dir) / "summary.json").write_text(json.dumps(summary))
        calls.append(Path(run_dir).name)
        return 0, "", 0.1

    calls: list[str] = []
    monkeypatch.setattr(sweep_mod, "execute_run", fake_run)
    spec = tmp_path / "exp.toml"
    spec.write_text(
        'title = "subset"\nconfig = "tiny.toml"\n[grid]\n'
        '"link.uplink_snr_db" = [-5.0, 9.0, 20.0]\n"algorithm.name" = ["fedcl", "fedproto"]\n'
        '[[exclude]]\n"algorithm.name" = "fedproto"\n"link.uplink_snr_db" = 20.0\n'
        "[scale.cpu]\nseeds = 3\n"
        '[[compare]]\nby = "algorithm.name"\npaired = "fedcl"\nname = "c"\n'
        'where = { "link.uplink_snr_db" = 9.0 }\n'
    )
    out = tmp_path / "out"
    argv = ["experiment", str(spec), "--out", str(out)]
    # A part without the compare's paired scheme: the tables wait, the command succeeds.
    assert main([*argv, "--only", "algorithm.name=fedproto", "--seeds", "1"]) == 0
    printed = capsys.readouterr().out
    assert "13 of 15 runs still pending" in printed
    assert "compare tables skipped until more runs finish" in printed
    assert main([*argv, "--only", "link.uplink_snr_db=9,-5", "--seeds", "2"]) == 0
    rows = read_csv(out / "sweep.csv")
    assert len(rows) == 3 * (2 * 3 - 1)  # the whole plan is listed (one point excluded)
    ran = {n for n, r in rows.items() if r["status"] in ("done", "skipped-done")}
    assert ran == set(calls) and len(ran) == 2 * 2 * 2
    assert all(("=9.0" in n or "=-5.0" in n) and "seed=2" not in n for n in ran)
    assert {r["status"] for n, r in rows.items() if n not in ran} == {"pending"}
    printed = capsys.readouterr().out
    assert "7 unfinished runs not selected" in printed
    assert (out / "compare_c_global.csv").is_file()  # both schemes now: the tables are made

    calls.clear()
    assert main(argv) == 0  # the whole scale: only the 7 left are run
    rows = read_csv(out / "sweep.csv")
    assert len(calls) == 7 and not ran & set(calls)
    assert {rows[n]["status"] for n in ran} == {"skipped-done"}

    capsys.readouterr()
    for bad, message in (
        (["--only", "training.rounds=3"], "not a grid key at scale cpu"),
        (["--only", "link.uplink_snr_db=7"], "not one of the scale's values (-5.0, 9.0, 20.0)"),
        (["--only", "algorithm.name"], "expected KEY=V1,V2"),
        (["--seeds", "4"], "--seeds 4: expected 1 to 3"),
        (["--plots-only", "--seeds", "1"], "takes no --only or --seeds"),
        (
            ["--only", "algorithm.name=fedproto", "--only", "link.uplink_snr_db=20"],
            "matches none of the sweep's runs",
        ),
    ):
        assert main([*argv, *bad]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_plot_snr_paired(tmp_path, drawn):
    """Differences 1, 2, 3 points over three paired seeds: mean 2, 95 % interval
    2 -/+ t(0.975, 2) * 1 / sqrt(3) = 2 -/+ 4.3027 * 0.57735 = [-0.484, 4.484], at
    every evaluation SNR. A fourth FedCL seed has no FedAvg pair and is left out."""
    from semfed.errors import UserError
    from semfed.plot import make_plots

    root = tmp_path / "sweep"
    for seed in range(3):
        _fake_run(root / f"fedavg_{seed}", "fedavg", seed, 10.0, [0.3, 0.40])
        _fake_run(root / f"fedcl_{seed}", "fedcl", seed, 10.0, [0.3, 0.41 + 0.01 * seed])
    _fake_run(root / "fedcl_3", "fedcl", 3, 10.0, [0.3, 0.9])
    for d in root.iterdir():  # per protocol, as semfed train writes it (and compare reads it)
        summary = json.loads((d / "summary.json").read_text())
        summary["final_test_acc_global_by_snr"] = summary["final_test_acc_by_snr"]
        (d / "summary.json").write_text(json.dumps(summary))
    made = make_plots([root], tmp_path / "figs", "snr", paired="fedavg")
    assert _names(made) == {"snr.png", "snr.pdf", "snr_paired.png", "snr_paired.pdf"}
    (ax,) = drawn[-1].axes
    assert ax.get_ylabel() == "minus algorithm=fedavg (points)"
    assert "over 3 pairs" in ax.get_title()
    (container,) = ax.containers
    assert container.get_label() == "algorithm=fedcl"
    line, _, (bars,) = container.lines
    assert list(line.get_xdata()) == [-5.0, 5.0, 20.0]
    np.testing.assert_allclose(line.get_ydata(), [2.0, 2.0, 2.0], atol=1e-9)
    half = 4.302653 / np.sqrt(3.0)
    for seg in bars.get_segments():
        np.testing.assert_allclose(seg[:, 1], [2.0 - half, 2.0 + half], atol=1e-5)

    with pytest.raises(UserError, match="have fedavg, fedcl"):
        make_plots([root], tmp_path / "o", "snr", paired="fedprox")
    with pytest.raises(UserError, match="--kind snr only"):
        make_plots([root], tmp_path / "o", "curves", paired="fedavg")
