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
``experiments/results/<file stem>/<scale>``.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semfed.config import ConfigError
from semfed.plot import KINDS
from semfed.sweep import SweepRun, run_sweep

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
    "dump_features",
}
SCALE_KEYS = {"seeds", "note", "set", "grid"}
PLOT_KEYS = {"kind", "x", "metric", "where", "by", "name", "protocol", "cost"}
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
    )


def default_out(exp: Experiment, scale: str) -> Path:
    """``<experiments>/results/<stem>/<scale>``; ``<experiments>`` is the folder of
    the file, or its parent for files in a subfolder (``experiments/studies``)."""
    root = exp.path.parent
    if not (root / "configs").is_dir() and (root.parent / "configs").is_dir():
        root = root.parent
    return root / "results" / exp.name / scale


def make_experiment_plots(exp: Experiment, scale: str, out: Path) -> list[Path]:
    from semfed.plot import make_plots

    note = exp.scales[scale].note
    made = []
    for i, p in enumerate(exp.plots):
        prefix = p.get("name", f"{i}_")
        made += make_plots(
            [out / "runs"],
            out / "plots",
            p["kind"],
            x=p.get("x"),
            metric=p.get("metric", "final"),
            protocol=p.get("protocol"),
            cost=p.get("cost", "load"),
            where=p.get("where"),
            by=p.get("by"),
            note=f"{exp.title} [{note or scale + ' scale'}]",
            prefix=prefix,
        )
    return made


def run_experiment(
    exp: Experiment,
    scale: str,
    out: str | Path | None = None,
    *,
    workers: int = 1,
    backend: str = "local",
    ray_address: str | None = None,
    plots_only: bool = False,
    log: Callable[[str], None] = print,
) -> tuple[list[SweepRun], list[Path]]:
    """Run the experiment's sweep at ``scale`` (unless ``plots_only``), then its plots."""
    if scale not in exp.scales:
        raise ExperimentError(
            f"{exp.path}: no scale {scale!r} (has {', '.join(sorted(exp.scales))})"
        )
    s = exp.scales[scale]
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
        )
        shutil.copyfile(out / "runs" / "sweep.csv", out / "sweep.csv")
    elif not (out / "runs").is_dir():
        raise ExperimentError(f"--plots-only: {out / 'runs'} does not exist; run it first")
    return runs, make_experiment_plots(exp, scale, out)


__all__ = ["Experiment", "ExperimentError", "load_experiment", "run_experiment", "toml_text"]
