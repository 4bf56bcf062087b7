"""Sweeps: the cartesian grid of ``semfed train`` runs, resumable and failure-tolerant.

Each run is a separate ``python -m semfed train`` process in its own directory
``OUT/<name>`` (``link.uplink_snr_db=0.0__seed=0``), so a crash cannot take the
sweep down. Rerunning the same sweep skips runs whose ``summary.json`` carries the
run's config hash and resumes (``--resume``) runs that have a ``config.toml``. A
failed run is recorded (``OUT/<name>/error.txt``: the last lines of its stderr) and
the others go on. ``OUT/sweep.csv`` summarises every run and is rewritten
atomically after each one finishes.

Seeds (``--seeds N``) set ``training.seed`` to 0..N-1 only: ``partition.seed`` is
kept, so every seed of a sweep trains on the same split.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semfed.config import ConfigError, load_config, parse_override
from semfed.io import write_json_atomic, write_text_atomic

ERROR_TAIL_LINES = 20
MAX_NAME = 150
STATUSES = ("done", "failed", "skipped-done", "pending")


class SweepError(ConfigError):
    """A sweep that cannot be set up (bad grid, name clash)."""


@dataclass
class SweepRun:
    name: str
    grid: dict[str, str]  # grid key -> value as written on the command line
    seed: int | None
    overrides: list[str]  # --set items of this run (base overrides first)
    status: str = "pending"
    final_test_acc: float | None = None
    best_test_acc: float | None = None
    rounds: int | None = None
    wall_s: float | None = None
    config_hash: str | None = None
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def split_values(text: str) -> list[str]:
    """Split ``v1,v2,[a,b]`` on the commas outside brackets and quotes."""
    out, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def parse_grid(specs: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``["link.uplink_snr_db=0,10"]`` -> ``[("link.uplink_snr_db", ["0", "10"])]``.

    Each value is checked to parse as a ``--set`` value (TOML, else a bare string).
    """
    grid: list[tuple[str, list[str]]] = []
    seen = set()
    for spec in specs:
        if "=" not in spec:
            raise SweepError(f"--grid {spec!r}: expected section.key=v1,v2,...")
        key, raw = spec.split("=", 1)
        key = key.strip()
        if not key or "." not in key:
            raise SweepError(f"--grid {spec!r}: expected section.key=v1,v2,...")
        if key in seen:
            raise SweepError(f"--grid {key} given twice")
        seen.add(key)
        values = split_values(raw)
        if any(v == "" for v in values):
            raise SweepError(f"--grid {spec!r}: empty value")
        for v in values:
            parse_override(f"{key}={v}")
        grid.append((key, values))
    return grid


def sanitize(text: str) -> str:
    """A file-name-safe version of ``text`` (letters, digits, ``._=+-``)."""
    return re.sub(r"[^A-Za-z0-9._=+\-]+", "_", text).strip("_") or "run"


def run_name(grid: dict[str, str], seed: int | None) -> str:
    parts = [f"{k}={v}" for k, v in grid.items()]
    if seed is not None:
        parts.append(f"seed={seed}")
    name = sanitize("__".join(parts)) if parts else "run"
    if len(name) > MAX_NAME:
        import hashlib

        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME - 10]}__{digest}"
    return name


def _known_keys(data: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for k, v in data.items():
        if isinstance(v, dict):
            keys |= _known_keys(v, f"{prefix}{k}.")
        else:
            keys.add(f"{prefix}{k}")
    return keys


def plan_runs(
    config_path: str | Path,
    grid: list[tuple[str, list[str]]],
    overrides: Sequence[str] = (),
    seeds: int | None = None,
) -> list[SweepRun]:
    """The runs of the grid (x seeds), in a stable order, with unique names."""
    base = load_config(config_path, overrides)  # the base must be valid on its own
    known = _known_keys(base.to_dict())
    for key, _ in grid:
        if key not in known:
            raise SweepError(f"--grid {key}: unknown config key")
        if key == "training.seed" and seeds is not None:
            raise SweepError("--grid training.seed and --seeds exclude each other")
    if seeds is not None and seeds < 1:
        raise SweepError(f"--seeds {seeds}: expected >= 1")
    seed_list: list[int | None] = list(range(seeds)) if seeds is not None else [None]
    runs, names = [], {}
    keys = [k for k, _ in grid]
    for combo in itertools.product(*[vals for _, vals in grid]):
        values = dict(zip(keys, combo, strict=True))
        for seed in seed_list:
            name = run_name(values, seed)
            if name in names:
                raise SweepError(f"runs {names[name]} and {values} get the same name {name!r}")
            names[name] = values
            run_over = [*overrides, *(f"{k}={v}" for k, v in values.items())]
            if seed is not None:
                run_over.append(f"training.seed={seed}")
            runs.append(SweepRun(name=name, grid=values, seed=seed, overrides=run_over))
    return runs


def csv_text(runs: Sequence[SweepRun], grid_keys: Sequence[str]) -> str:
    buf = io.StringIO()
    fields = [
        "run",
        *grid_keys,
        "seed",
        "status",
        "final_test_acc",
        "best_test_acc",
        "rounds",
        "wall_s",
        "config_hash",
        "error",
    ]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in runs:
        row = {
            "run": r.name,
            **r.grid,
            "seed": "" if r.seed is None else r.seed,
            "status": r.status,
            "final_test_acc": r.final_test_acc,
            "best_test_acc": r.best_test_acc,
            "rounds": r.rounds,
            "wall_s": None if r.wall_s is None else round(r.wall_s, 2),
            "config_hash": r.config_hash,
            "error": r.error.strip().splitlines()[-1] if r.error.strip() else "",
        }
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def _read_summary(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / "summary.json").read_text())
    except (OSError, ValueError):
        return None


def _take_summary(run: SweepRun, summary: dict[str, Any]) -> None:
    run.final_test_acc = summary.get("final_test_acc")
    run.best_test_acc = summary.get("best_test_acc")
    run.rounds = summary.get("rounds")
    run.wall_s = summary.get("wall_s")


def _stderr_tail(text: str, lines: int = ERROR_TAIL_LINES) -> str:
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:]) + "\n" if kept else ""


def run_sweep(
    config_path: str | Path,
    grid: list[tuple[str, list[str]]],
    out: str | Path,
    *,
    overrides: Sequence[str] = (),
    seeds: int | None = None,
    workers: int = 1,
    dump_features: bool = False,
    log: Callable[[str], None] = print,
) -> list[SweepRun]:
    """Run (or continue) the sweep; returns every run with its status."""
    if workers < 1:
        raise SweepError(f"--workers {workers}: expected >= 1")
    out = Path(out)
    runs = plan_runs(config_path, grid, overrides, seeds)
    grid_keys = [k for k, _ in grid]
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        out / "sweep.json",
        {
            "config": str(config_path),
            "grid": {k: v for k, v in grid},
            "overrides": list(overrides),
            "seeds": seeds,
            "runs": [r.name for r in runs],
        },
    )
    lock = threading.Lock()
    counts = {"done": 0, "failed": 0, "skipped-done": 0}
    total = len(runs)

    def write_csv() -> None:
        write_text_atomic(out / "sweep.csv", csv_text(runs, grid_keys))

    def finished(run: SweepRun, note: str = "") -> None:
        with lock:
            counts[run.status] += 1
            write_csv()
            n = sum(counts.values())
            acc = "" if run.final_test_acc is None else f" final_acc={run.final_test_acc:.4f}"
            log(
                f"[{n}/{total}] {run.status} {run.name}{acc}{note} "
                f"(done {counts['done']}, skipped {counts['skipped-done']}, "
                f"failed {counts['failed']}, left {total - n})"
            )

    # Decide up front what is finished; validate each run's config.
    todo: list[tuple[SweepRun, bool]] = []
    for run in runs:
        run_dir = out / run.name
        try:
            run.config_hash = load_config(config_path, run.overrides).hash()
        except ConfigError as err:
            run.status, run.error = "failed", f"invalid config: {err}\n"
            write_text_atomic(run_dir / "error.txt", run.error)
            continue
        summary = _read_summary(run_dir)
        if summary is not None and summary.get("config_hash") == run.config_hash:
            run.status = "skipped-done"
            _take_summary(run, summary)
            continue
        todo.append((run, (run_dir / "config.toml").is_file()))
    with lock:
        write_csv()
    for run in runs:
        if run.status != "pending":
            finished(run, ": " + run.error.strip() if run.status == "failed" else "")

    def execute(item: tuple[SweepRun, bool]) -> None:
        run, resume = item
        run_dir = out / run.name
        run_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "semfed", "train", "--config", str(config_path)]
        for o in [*run.overrides, "output.progress=false"]:
            cmd += ["--set", o]
        cmd += ["--out", str(run_dir)]
        if resume:
            cmd.append("--resume")
        if dump_features:
            cmd.append("--dump-features")
        with lock:
            log(f"start {run.name}{' (resume)' if resume else ''}")
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        t0 = time.time()
        with open(run_dir / "stdout.log", "w") as fo, open(run_dir / "stderr.log", "w+") as fe:
            rc = subprocess.run(cmd, stdout=fo, stderr=fe, env=env, check=False).returncode
            fe.seek(0)
            err_text = fe.read()
        wall = time.time() - t0
        summary = _read_summary(run_dir)
        if rc == 0 and summary is not None and summary.get("config_hash") == run.config_hash:
            run.status = "done"
            run.error = ""
            _take_summary(run, summary)
            (run_dir / "error.txt").unlink(missing_ok=True)
        else:
            run.status = "failed"
            run.wall_s = wall
            run.error = _stderr_tail(err_text) or f"semfed train exited with status {rc}\n"
            write_text_atomic(run_dir / "error.txt", run.error)
        note = ""
        if run.status == "failed":
            note = ": " + run.error.strip().splitlines()[-1]
        finished(run, note)

    if todo:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(execute, todo))
    return runs


__all__ = ["SweepError", "SweepRun", "parse_grid", "plan_runs", "run_sweep", "split_values"]
