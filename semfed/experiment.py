"""Experiments: one TOML file is a sweep at two scales plus the figures made from it.

An experiment file (``experiments/*.toml``) names a base run config, a grid,
conditional overrides, per-scale settings and plots::

    title = "Fig. 3(b): accuracy vs m"
    config = "configs/paper.toml"          # relative to this file
    set = {"link.channel" = "tdl-a"}        # for every scale
    [grid]
    "algorithm.name" = ["fedcl", "fedproto", "fedavg"]
    "partition.ways" = [2, 3, 5]
    [when."algorithm.name=fedavg"]         # extra settings for matching runs
    "model.encoders" = "homogeneous"
    [[exclude]]                            # grid points left out (all keys must match)
    "algorithm.name" = "fedavg"
    "model.encoders" = "heterogeneous"
    [scale.cpu]                            # under an hour on two CPU cores
    seeds = 1
    note = "CPU scale: 10 rounds, encoder width 16, 1 seed"
    set = {"training.rounds" = 10}
    [scale.full]                           # the paper's setting
    seeds = 3
    [[plot]]
    kind = "vs"
    x = "partition.ways"

``semfed experiment FILE --scale cpu`` runs the sweep in ``OUT/runs`` (resumable,
failures recorded, local or Ray backend: :mod:`semfed.sweep`), copies
``sweep.csv`` to ``OUT`` and draws every plot into ``OUT/plots`` with the
scale's note in the titles. ``OUT`` defaults to
``experiments/results/<file stem>/<scale>``. ``--only KEY=V1,V2`` and ``--seeds N``
run a part of the scale's sweep first (the headline point, the first seeds); the
rest stays pending in ``sweep.csv`` and a later run of the whole scale skips what
is finished.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semfed.config import ConfigError
from semfed.errors import UserError
from semfed.plot import KINDS
from semfed.sweep import SweepRun, run_sweep, same_value, split_values

TOP_KEYS = {
    "title",
    "description",
    "config",
    "set",
    "grid",
    "when",
    "exclude",
    "scale",
    "plot",
    "compare",
    "dump_features",
}
SCALE_KEYS = {"seeds", "note", "set", "grid"}
PLOT_KEYS = {"kind", "x", "metric", "where", "by", "name", "protocol", "cost", "paired"}
COMPARE_KEYS = {"by", "paired", "where", "name", "metric", "protocols", "snr"}
PROTOCOLS = ("global", "personal", "masked")
SIMPLE = re.compile(r"^[A-Za-z0-9_.+\-]+$")


class ExperimentError(ConfigError):
    """An experiment file that cannot be used; names the file and the key."""


def toml_text(value: Any) -> str:
    """A TOML value as text a ``--set`` / ``--grid`` item reads back to the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        if SIMPLE.match(value) and value not in ("true", "false") and not _is_number(value):
            return value
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_text(v) for v in value) + "]"
    raise ExperimentError(f"cannot use {value!r} as a config value")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass
class Scale:
    seeds: int | None = None
    note: str = ""
    overrides: list[str] = field(default_factory=list)
    grid: dict[str, list[Any]] = field(default_factory=dict)  # replaces grid entries


@dataclass
class Experiment:
    path: Path
    title: str
    config: Path
    overrides: list[str]  # for every scale, before the scale's own
    grid: dict[str, list[Any]]
    when: list[tuple[str, str, list[str]]]
    scales: dict[str, Scale]
    plots: list[dict[str, Any]]
    dump_features: bool = False
    exclude: list[dict[str, str]] = field(default_factory=list)
    compares: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.stem

    def grid_for(self, scale: str) -> list[tuple[str, list[str]]]:
        merged = {**self.grid, **self.scales[scale].grid}
        return [(k, [toml_text(v) for v in vs]) for k, vs in merged.items()]


def _overrides(table: Any, where: str) -> list[str]:
    if not isinstance(table, dict):
        raise ExperimentError(f"{where}: expected a table of config keys")
    return [f"{k}={toml_text(v)}" for k, v in table.items()]


def _grid(table: Any, where: str) -> dict[str, list[Any]]:
    if not isinstance(table, dict):
        raise ExperimentError(f"{where}: expected a table of key = [values]")
    out = {}
    for k, v in table.items():
        if not isinstance(v, list) or not v:
            raise ExperimentError(f"{where}.{k}: expected a non-empty list of values")
        out[k] = v
    return out


def load_experiment(path: str | Path) -> Experiment:
    """Read and check an experiment file (the runs' configs are checked by the sweep)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise ExperimentError(f"{path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ExperimentError(f"{path}: not valid TOML: {err}") from None
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise ExperimentError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    if "config" not in data:
        raise ExperimentError(f"{path}: 'config' (the base run config) is required")
    config = (path.parent / data["config"]).resolve()
    if not config.is_file():
        raise ExperimentError(f"{path}: config {data['config']!r} not found ({config})")
    grid = _grid(data.get("grid", {}), "grid")
    when = []
    for cond, table in data.get("when", {}).items():
        if "=" not in cond:
            raise ExperimentError(f'{path}: when.{cond!r}: expected "key=value"')
        key, value = cond.split("=", 1)
        when.append((key.strip(), value.strip(), _overrides(table, f"when.{cond}")))
    exclude = []
    for i, rule in enumerate(data.get("exclude", [])):
        if not isinstance(rule, dict) or not rule:
            raise ExperimentError(f"{path}: exclude[{i}]: expected a table of grid key = value")
        for key in rule:
            if key not in grid:
                raise ExperimentError(f"{path}: exclude[{i}].{key}: not a grid key")
        exclude.append({k: toml_text(v) for k, v in rule.items()})
    scales = {}
    for name, table in data.get("scale", {}).items():
        extra = set(table) - SCALE_KEYS
        if extra:
            raise ExperimentError(f"{path}: scale.{name}: unknown key(s) {', '.join(extra)}")
        seeds = table.get("seeds")
        if seeds is not None and (not isinstance(seeds, int) or seeds < 1):
            raise ExperimentError(f"{path}: scale.{name}.seeds: expected an integer >= 1")
        scales[name] = Scale(
            seeds=seeds,
            note=str(table.get("note", "")),
            overrides=_overrides(table.get("set", {}), f"scale.{name}.set"),
            grid=_grid(table.get("grid", {}), f"scale.{name}.grid"),
        )
    scales.setdefault("full", Scale())
    plots = data.get("plot", [])
    for i, p in enumerate(plots):
        extra = set(p) - PLOT_KEYS
        if extra:
            raise ExperimentError(f"{path}: plot[{i}]: unknown key(s) {', '.join(extra)}")
        if p.get("kind") not in KINDS:
            raise ExperimentError(f"{path}: plot[{i}].kind: expected one of {', '.join(KINDS)}")
        if "paired" in p and (p["kind"] != "snr" or not isinstance(p["paired"], str)):
            raise ExperimentError(
                f'{path}: plot[{i}].paired: a setting\'s value as text (e.g. "tdl-a", '
                f'"0/0"), with kind = "snr" only'
            )
    compares = data.get("compare", [])
    for i, c in enumerate(compares):
        extra = set(c) - COMPARE_KEYS
        if extra:
            raise ExperimentError(f"{path}: compare[{i}]: unknown key(s) {', '.join(extra)}")
        if not isinstance(c.get("by"), str):
            raise ExperimentError(f"{path}: compare[{i}].by: a config key is required")
        snr = c.get("snr")
        if snr is not None and (isinstance(snr, bool) or not isinstance(snr, int | float)):
            raise ExperimentError(
                f"{path}: compare[{i}].snr: expected a number (an evaluation.snr_db value), "
                f"got {snr!r}"
            )
        for proto in c.get("protocols", PROTOCOLS):
            if proto not in PROTOCOLS:
                raise ExperimentError(
                    f"{path}: compare[{i}].protocols: {proto!r} is not one of "
                    f"{', '.join(PROTOCOLS)}"
                )
    return Experiment(
        path=path,
        title=str(data.get("title", path.stem)),
        config=config,
        overrides=_overrides(data.get("set", {}), "set"),
        grid=grid,
        when=when,
        scales=scales,
        plots=plots,
        dump_features=bool(data.get("dump_features", False)),
        exclude=exclude,
        compares=compares,
    )


def default_out(exp: Experiment, scale: str) -> Path:
    """``<experiments>/results/<stem>/<scale>``; ``<experiments>`` is the folder of
    the file, or its parent for files in a subfolder (``experiments/studies``)."""
    root = exp.path.parent
    if not (root / "configs").is_dir() and (root.parent / "configs").is_dir():
        root = root.parent
    return root / "results" / exp.name / scale


def plot_note(exp: Experiment, scale: str, runs: list[dict[str, Any]]) -> str:
    """The plots' title note: the file's title and the scale's note, and, while a
    sweep is part-way, how many of the scale's seeds have finished runs (the note
    describes the plan; the titles' ``n`` counts what is drawn)."""
    from semfed.plot import _seeds

    s = exp.scales[scale]
    note = s.note or scale + " scale"
    done = len({_seeds(r) for r in runs})
    if s.seeds is not None and done < s.seeds:
        note += f"; {done} of {s.seeds} seeds finished so far"
    return f"{exp.title} [{note}]"


def make_experiment_plots(exp: Experiment, scale: str, out: Path) -> list[Path]:
    from semfed.plot import _select, load_runs, make_plots

    runs = load_runs([out / "runs"])
    note = plot_note(exp, scale, runs)
    made = []
    for i, p in enumerate(exp.plots):
        prefix = p.get("name", f"{i}_")
        if p.get("where") and not _select(runs, p["where"]):
            # A series this scale does not run (e.g. heterogeneous encoders at medium).
            print(f"plot {prefix}{p['kind']}: no run at this scale matches {p['where']}; skipped")
            continue
        made += make_plots(
            [out / "runs"],
            out / "plots",
            p["kind"],
            x=p.get("x"),
            metric=p.get("metric", "final"),
            protocol=p.get("protocol"),
            cost=p.get("cost", "load"),
            paired=p.get("paired"),
            where=p.get("where"),
            by=p.get("by"),
            note=note,
            prefix=prefix,
        )
    return made


def make_experiment_compares(
    exp: Experiment, out: Path, log: Callable[[str], None] = print
) -> list[Path]:
    """``semfed compare`` for every ``[[compare]]`` of the file, under each of its
    protocols: ``OUT/compare_<name>_<protocol>.csv`` (a cluster metric has no
    protocol: ``OUT/compare_<name>.csv``), with the convergence columns for
    accuracy at the training SNR. ``snr`` compares the final accuracy at that
    evaluation SNR (``evaluation.snr_db`` a list), as ``semfed compare --snr``."""
    from semfed.comparison import (
        CLUSTER_METRICS,
        format_statistics,
        statistics_for,
        write_statistics_csv,
    )

    made = []
    for i, c in enumerate(exp.compares):
        name = c.get("name", f"{i}")
        metric = c.get("metric", "final")
        protocols = [None] if metric in CLUSTER_METRICS else c.get("protocols", PROTOCOLS)
        for protocol in protocols:
            _, varying, rows = statistics_for(
                [out / "runs"],
                c["by"],
                paired=c.get("paired"),
                metric=metric,
                protocol=protocol,
                where=c.get("where"),
                with_convergence=metric not in CLUSTER_METRICS and c.get("snr") is None,
                snr=c.get("snr"),
            )
            stem = f"compare_{name}" + (f"_{protocol}" if protocol else "")
            at = f" at {c['snr']:g} dB" if c.get("snr") is not None else ""
            log(f"{stem}: {metric}{at}" + (f", protocol {protocol}" if protocol else ""))
            log(format_statistics(varying, c["by"], rows, c.get("paired")))
            write_statistics_csv(out / f"{stem}.csv", varying, c["by"], rows)
            made.append(out / f"{stem}.csv")
    return made


def _scale_differences(exp: Experiment, scale: str) -> list[tuple[str, Any, Any]]:
    """(key, this scale's value, medium's value) for every config key the two scales
    set differently, from the first planned run of each (seeds and grid keys aside)."""
    from semfed.config import load_config
    from semfed.plot import _flatten
    from semfed.sweep import SEED_KEYS, plan_runs

    def first(name: str) -> dict[str, Any]:
        sc = exp.scales[name]
        runs = plan_runs(
            exp.config,
            exp.grid_for(name),
            [*exp.overrides, *sc.overrides],
            1,
            exp.when,
            exclude=exp.exclude,
        )
        return _flatten(load_config(exp.config, runs[0].overrides).to_dict())

    this, medium = first(scale), first("medium")
    grid_keys = {k for k, _ in exp.grid_for(scale)} | {k for k, _ in exp.grid_for("medium")}
    return [
        (k, this.get(k), medium.get(k))
        for k in sorted(set(this) | set(medium))
        if this.get(k) != medium.get(k)
        and k not in SEED_KEYS
        and k not in grid_keys
        and not k.startswith("output.")
    ]


def against_medium(exp: Experiment, scale: str, out: Path) -> list[str]:
    """Lines setting this scale's compare tables (global protocol) beside the committed
    medium-scale ones: each mean, the medium interval, whether it lies inside, and
    the settings in which the two scales differ (the reason numbers may not agree).
    Empty when there is nothing to set beside."""
    import csv

    from semfed.comparison import CONVERGENCE_COLUMNS, STAT_COLUMNS

    if scale == "medium" or "medium" not in exp.scales:
        return []
    medium_dir = default_out(exp, "medium")
    lines: list[str] = []
    for i, c in enumerate(exp.compares):
        name = c.get("name", f"{i}")
        suffix = "" if c.get("metric") in ("feature_silhouette", "feature_knn_acc") else "_global"
        ours, ref = out / f"compare_{name}{suffix}.csv", medium_dir / f"compare_{name}{suffix}.csv"
        if not ours.is_file() or not ref.is_file():
            continue
        with ref.open() as fh:
            ref_rows = list(csv.DictReader(fh))
        with ours.open() as fh:
            our_rows = list(csv.DictReader(fh))
        stat_fields = {*STAT_COLUMNS, *CONVERGENCE_COLUMNS}
        fixed = [k for k in (ref_rows[0] if ref_rows else {}) if k not in stat_fields]

        def key(row: dict[str, str], fixed: list[str] = fixed) -> tuple[str, ...]:
            return tuple(row.get(k, "") for k in fixed)

        medium = {key(r): r for r in ref_rows}
        if not lines:
            diffs = _scale_differences(exp, scale)
            lines.append(f"Against the medium scale ({medium_dir}):")
            if diffs:
                lines.append(
                    f"  the {scale} scale differs from it in "
                    + ", ".join(f"{k} ({a} vs {b})" for k, a, b in diffs)
                    + ": its numbers are not expected inside the medium intervals."
                )
            else:
                lines.append(
                    f"  the {scale} scale has the medium setting: its means should "
                    "lie inside the medium intervals."
                )
        inside = total = 0
        for r in our_rows:
            m = medium.get(key(r))
            if m is None or not r.get("mean") or not m.get("ci95_low"):
                continue
            lo, hi, mean = float(m["ci95_low"]), float(m["ci95_high"]), float(r["mean"])
            ok = lo <= mean <= hi
            inside += ok
            total += 1
            label = ", ".join(f"{k}={v}" for k, v in zip(fixed, key(r), strict=True))
            lines.append(
                f"  {name}: {label}: {scale} {mean:.4f}, medium {float(m['mean']):.4f} "
                f"[{lo:.4f}, {hi:.4f}]: {'inside' if ok else 'outside'}"
            )
        if total:
            lines.append(f"  {name}: {inside} of {total} means inside the medium intervals")
    return lines


def run_selector(
    exp: Experiment, scale: str, only: Sequence[str] = (), seeds: int | None = None
) -> Callable[[SweepRun], bool] | None:
    """Which of the scale's runs to run now: a part of its sweep, never other runs.

    ``only``: ``KEY=V1,V2`` items, KEY a grid key of the scale and each V one of its
    values (compared as parsed values, so ``9`` picks ``9.0``); ``seeds``: the first N
    of the scale's seeds. The runs left out stay pending, with the same names and
    configs, so a later run of the whole scale skips what this one finished.
    """
    if not only and seeds is None:
        return None
    grid = dict(exp.grid_for(scale))
    chosen: dict[str, list[str]] = {}
    for item in only:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not raw.strip():
            raise ExperimentError(f"--only {item!r}: expected KEY=V1,V2,...")
        if key not in grid:
            raise ExperimentError(
                f"--only {key}: not a grid key at scale {scale} (grid: {', '.join(grid)})"
            )
        if key in chosen:
            raise ExperimentError(f"--only {key} given twice")
        values = []
        for v in split_values(raw):
            match = [g for g in grid[key] if same_value(key, g, v)]
            if not match:
                raise ExperimentError(
                    f"--only {key}={v}: not one of the scale's values ({', '.join(grid[key])})"
                )
            values.extend(match)
        chosen[key] = values
    available = exp.scales[scale].seeds
    if seeds is not None:
        if available is None:
            raise ExperimentError(f"--seeds: scale {scale} does not set seeds")
        if not 1 <= seeds <= available:
            raise ExperimentError(f"--seeds {seeds}: expected 1 to {available} (scale {scale})")

    def select(run: SweepRun) -> bool:
        if seeds is not None and (run.seed is None or run.seed >= seeds):
            return False
        return all(run.grid.get(k) in vs for k, vs in chosen.items())

    return select


def run_experiment(
    exp: Experiment,
    scale: str,
    out: str | Path | None = None,
    *,
    workers: int = 1,
    backend: str = "local",
    ray_address: str | None = None,
    plots_only: bool = False,
    only: Sequence[str] = (),
    seeds: int | None = None,
    redo_stale: bool = False,
    log: Callable[[str], None] = print,
) -> tuple[list[SweepRun], list[Path]]:
    """Run the experiment's sweep at ``scale`` (unless ``plots_only``), then its plots.

    ``only`` (``KEY=V1,V2`` items) and ``seeds`` (the first N seeds) run a part of
    the scale's sweep first, e.g. the headline SNR; see :func:`run_selector`.
    ``redo_stale``: as in :func:`semfed.sweep.run_sweep`.
    """
    if scale not in exp.scales:
        raise ExperimentError(
            f"{exp.path}: no scale {scale!r} (has {', '.join(sorted(exp.scales))})"
        )
    s = exp.scales[scale]
    select = run_selector(exp, scale, only, seeds)
    if plots_only and select is not None:
        raise ExperimentError(
            "--plots-only draws from every finished run: it takes no --only or --seeds"
        )
    out = Path(out) if out is not None else default_out(exp, scale)
    runs: list[SweepRun] = []
    if not plots_only:
        log(f"{exp.title}: {scale} scale -> {out}")
        runs = run_sweep(
            exp.config,
            exp.grid_for(scale),
            out / "runs",
            overrides=[*exp.overrides, *s.overrides],
            seeds=s.seeds,
            workers=workers,
            dump_features=exp.dump_features,
            log=log,
            backend=backend,
            ray_address=ray_address,
            when=exp.when,
            exclude=exp.exclude,
            select=select,
            redo_stale=redo_stale,
        )
        shutil.copyfile(out / "runs" / "sweep.csv", out / "sweep.csv")
    elif not (out / "runs").is_dir():
        raise ExperimentError(f"--plots-only: {out / 'runs'} does not exist; run it first")
    pending = sum(r.status == "pending" for r in runs)
    if pending:
        log(
            f"{pending} of {len(runs)} runs still pending: the plots and tables below are "
            "from the finished runs only (n in each); run again without --only/--seeds "
            "for the rest"
        )
    made = make_experiment_plots(exp, scale, out)
    if exp.compares and not any(r.status == "failed" for r in runs):
        try:
            made += make_experiment_compares(exp, out, log)
        except UserError as err:
            if not pending:
                raise
            # A part of the sweep may lack what a table needs (its paired scheme).
            log(f"compare tables skipped until more runs finish: {err}")
        for line in against_medium(exp, scale, out):
            log(line)
    return runs, made


__all__ = ["Experiment", "ExperimentError", "load_experiment", "run_experiment", "toml_text"]
