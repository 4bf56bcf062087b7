"""Sweeps: the cartesian grid of ``semfed train`` runs, resumable and failure-tolerant.

Each run is a separate ``python -m semfed train`` process in its own directory
``OUT/<name>`` (``link.uplink_snr_db=0.0__seed=0``), so a crash cannot take the
sweep down. Rerunning the same sweep skips runs whose ``summary.json`` carries the
run's config hash and resumes (``--resume``) runs that have a ``config.toml``; a
directory holding another run (a config a resume may not change) is left alone
and reported, or, with ``redo_stale``, trained again from scratch. A
failed run is recorded (``OUT/<name>/error.txt``: the last lines of its stderr) and
the others go on. ``OUT/sweep.csv`` summarises every run and is rewritten
atomically after each one finishes.

Seeds (``--seeds N``) set every seed key (``training.seed`` and
``partition.seed`` by default; ``seed_keys`` to change) to the seed index
0..N-1, so seeds vary the split as well as the training. Runs with the same
index are paired across the grid: same split, batch order and channel draws.

Backends: ``local`` runs at most ``workers`` runs at once from a thread pool;
``ray`` (the ``distributed`` extra) makes each run a Ray task asking for
``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs, on a local Ray started with
``workers`` CPUs or on the cluster at ``ray_address``. Either way the task is the
same ``semfed train`` process (:func:`execute_run`), and skipping, resuming and
``sweep.csv`` are the same. On a cluster the config file and ``OUT`` must be on a
filesystem shared by every node (the runs write there and the driver reads their
``summary.json``), and every node needs semfed installed.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
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

from semfed.config import ConfigError, RunConfig, load_config, parse_override
from semfed.io import write_json_atomic, write_text_atomic

ERROR_TAIL_LINES = 20
MAX_NAME = 150
STATUSES = ("done", "failed", "skipped-done", "pending")
# What --seeds N sets to the seed index: the split and the training both vary.
SEED_KEYS = ("training.seed", "partition.seed")
PROTOCOL_COLUMNS = tuple(f"final_test_acc_{p}" for p in ("global", "personal", "masked"))
BACKENDS = ("local", "ray")
RAY_MISSING = "the Ray backend needs the 'distributed' extra: pip install 'semfed[distributed]'"
# Environment variables of the driver passed on to Ray tasks (a cluster node has its own).
FORWARD_ENV_PREFIXES = ("SEMFED_", "TF_CPP_")


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
    oracle_best_test_acc: float | None = None
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
    when: Sequence[tuple[str, str, Sequence[str]]] = (),
    seed_keys: Sequence[str] = SEED_KEYS,
    exclude: Sequence[dict[str, str]] = (),
) -> list[SweepRun]:
    """The runs of the grid (x seeds), in a stable order, with unique names.

    Seed-major: every grid point's seed 0 comes first, then every seed 1, ...,
    so a sweep stopped part-way has the same number of seeds for every point.

    ``when``: (grid key, value, overrides): extra ``--set`` items for the runs
    whose grid value of that key equals ``value`` (compared as parsed values),
    e.g. homogeneous encoders for the FedAvg runs of a comparison.
    ``seed_keys``: the config keys ``seeds`` sets to the seed index.
    ``exclude``: grid points left out, each a {grid key: value} that must all match
    (e.g. FedAvg on heterogeneous encoders, which it cannot run).
    """
    base = load_config(config_path, overrides)  # the base must be valid on its own
    # Every field, unset ones (None, left out of to_dict) included.
    known = _known_keys(dataclasses.asdict(base))
    if seeds is not None and not seed_keys:
        raise SweepError("--seed-keys: no key given")
    for key in seed_keys:
        if key not in known:
            raise SweepError(f"--seed-keys {key}: unknown config key")
    for key, _ in grid:
        if key not in known:
            raise SweepError(f"--grid {key}: unknown config key")
        if key in seed_keys and seeds is not None:
            raise SweepError(f"--grid {key} and --seeds exclude each other ({key} is a seed key)")
    grid_keys = {k for k, _ in grid}
    for rule in exclude:
        for key in rule:
            if key not in grid_keys:
                raise SweepError(f"exclude {key}=...: {key} is not a grid key")
    if seeds is not None and seeds < 1:
        raise SweepError(f"--seeds {seeds}: expected >= 1")
    for key, _, _ in when:
        if key not in {k for k, _ in grid}:
            raise SweepError(f"when {key}=...: {key} is not a grid key")
    seed_list: list[int | None] = list(range(seeds)) if seeds is not None else [None]
    runs, names = [], {}
    keys = [k for k, _ in grid]
    points = []
    for combo in itertools.product(*[vals for _, vals in grid]):
        values = dict(zip(keys, combo, strict=True))
        if any(all(same_value(k, values[k], str(v)) for k, v in rule.items()) for rule in exclude):
            continue
        points.append(values)
    for seed in seed_list:
        for values in points:
            name = run_name(values, seed)
            if name in names:
                raise SweepError(f"runs {names[name]} and {values} get the same name {name!r}")
            names[name] = values
            run_over = [*overrides, *(f"{k}={v}" for k, v in values.items())]
            for key, value, extra in when:
                if key in values and same_value(key, values[key], value):
                    run_over.extend(extra)
            if seed is not None:
                run_over.extend(f"{key}={seed}" for key in seed_keys)
            runs.append(SweepRun(name=name, grid=values, seed=seed, overrides=run_over))
    return runs


def same_value(key: str, a: str, b: str) -> bool:
    return parse_override(f"{key}={a}")[1] == parse_override(f"{key}={b}")[1]


def csv_text(runs: Sequence[SweepRun], grid_keys: Sequence[str]) -> str:
    buf = io.StringIO()
    fields = [
        "run",
        *grid_keys,
        "seed",
        "status",
        "final_test_acc",
        *PROTOCOL_COLUMNS,
        "oracle_best_test_acc",
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
            **{c: r.extra.get(c) for c in PROTOCOL_COLUMNS},
            "oracle_best_test_acc": r.oracle_best_test_acc,
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


def _same_run(run_dir: Path, summary: dict[str, Any], config_hash: str | None) -> bool:
    """Whether the finished run in ``run_dir`` is the planned run of ``config_hash``.

    Its summary's hash decides, or else its ``config.toml`` read with today's
    code: a key added to semfed since the run (at its default) then changes
    nothing, while a default that changed since is written in the old file and
    still tells the runs apart.
    """
    if summary.get("config_hash") == config_hash:
        return True
    try:
        old = load_config(run_dir / "config.toml")
        if old.hash() != config_hash:
            return False
        return _drop_still_drawn(old)
    except (ConfigError, OSError):
        return False


def _drop_still_drawn(old: RunConfig) -> bool:
    """Whether a run's recorded cell drop (``[drop]``) is the one drawn today.

    A run read back with today's code resolves today's link-budget defaults, so
    its hash cannot tell that a default changed since; its recorded SNRs can.
    True for runs without ``link.topology``.
    """
    if not old.link.has_topology:
        return True
    from semfed.cell import resolve_drop

    try:
        resolve_drop(old)
    except ConfigError:
        return False
    return True


def _stale_reason(run_dir: Path, planned: RunConfig) -> str | None:
    """Why the run in ``run_dir`` cannot be resumed as the planned run, or None.

    ``planned``: the run's config as the sweep plans it today. A run dir whose
    ``config.toml`` differs in a key a resume may not change (anything but rounds,
    checkpointing, evaluation and output), or whose recorded cell drop is not the
    one drawn today, holds another run: resuming it would be refused.
    """
    from semfed.train import blocking_differences, config_differences

    try:
        old = load_config(run_dir / "config.toml")
    except (ConfigError, OSError) as err:
        return f"its config.toml is unreadable ({str(err).splitlines()[0]})"
    a, b = old.to_dict(), planned.to_dict()
    a.pop("drop", None)
    b.pop("drop", None)
    blocking = blocking_differences(config_differences(a, b))
    if blocking:
        return "its config differs in " + ", ".join(blocking)
    if not _drop_still_drawn(old):
        return (
            "its recorded cell drop ([drop]) differs from the one drawn today "
            "(a link-budget default changed since)"
        )
    return None


def _take_summary(run: SweepRun, summary: dict[str, Any]) -> None:
    run.final_test_acc = summary.get("final_test_acc")
    run.oracle_best_test_acc = summary.get("oracle_best_test_acc")
    run.extra.update({c: summary.get(c) for c in PROTOCOL_COLUMNS})
    run.rounds = summary.get("rounds")
    run.wall_s = summary.get("wall_s")


def _stderr_tail(text: str, lines: int = ERROR_TAIL_LINES) -> str:
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:]) + "\n" if kept else ""


def execute_run(
    argv: Sequence[str],
    run_dir: str | Path,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> tuple[int, str, float]:
    """Run ``python -m semfed ARGV`` with its output in ``run_dir``/std{out,err}.log.

    Returns ``(returncode, stderr_text, wall_s)``. The interpreter and the
    environment are those of the process this runs in (a Ray worker: its GPUs in
    ``CUDA_VISIBLE_DEVICES``), updated with ``env``; ``cwd`` is used when it exists
    there. A top-level function so that Ray can ship it to its workers.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    if full_env.get("SEMFED_VERBOSE", "") in ("", "0"):  # semfed -v: TensorFlow's own log
        full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if cwd is not None and not os.path.isdir(cwd):
        cwd = None
    cmd = [sys.executable, "-m", "semfed", *argv]
    t0 = time.time()
    with open(run_dir / "stdout.log", "w") as fo, open(run_dir / "stderr.log", "w+") as fe:
        # An exception here (a cancelled Ray task: KeyboardInterrupt) kills the process.
        rc = subprocess.run(cmd, stdout=fo, stderr=fe, env=full_env, cwd=cwd, check=False)
        fe.seek(0)
        err_text = fe.read()
    return rc.returncode, err_text, time.time() - t0


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
    backend: str = "local",
    ray_address: str | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
    when: Sequence[tuple[str, str, Sequence[str]]] = (),
    seed_keys: Sequence[str] = SEED_KEYS,
    exclude: Sequence[dict[str, str]] = (),
    on_start: Callable[[], None] | None = None,
    select: Callable[[SweepRun], bool] | None = None,
    redo_stale: bool = False,
) -> list[SweepRun]:
    """Run (or continue) the sweep; returns every run with its status.

    ``when``, ``seed_keys``, ``exclude``: as in :func:`plan_runs`. ``on_start``:
    called once the options and the grid are known to be valid, before anything
    is written or run (``semfed sweep`` prints its device line there).
    ``select``: run only the unfinished runs it accepts (``semfed experiment
    --only``); the others stay ``pending`` in ``sweep.csv``, which still lists every
    run of the plan, and finished ones are still read back.

    A run directory that holds another run (made with a config that differs in
    a key a resume may not change, or with a cell drop that today's defaults no
    longer draw) is ``failed`` with the reason and is left as it is, unless
    ``redo_stale``: then it is trained again from scratch (``--overwrite``).

    ``backend="ray"``: each run is a Ray task with ``cpus_per_run`` CPUs and
    ``gpus_per_run`` GPUs, on a local Ray with ``workers`` CPUs, or, with
    ``ray_address``, on that cluster (``workers`` unused; the config file and
    ``out`` must then be on a filesystem every node shares).
    """
    if workers < 1:
        raise SweepError(f"--workers {workers}: expected >= 1")
    _check_backend(backend, ray_address, cpus_per_run, gpus_per_run, workers)
    out = Path(out)
    runs = plan_runs(config_path, grid, overrides, seeds, when, seed_keys, exclude)
    if select is not None and not any(select(run) for run in runs):
        raise SweepError("the selection (--only, --seeds) matches none of the sweep's runs")
    if on_start is not None:
        on_start()
    grid_keys = [k for k, _ in grid]
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        out / "sweep.json",
        {
            "config": str(config_path),
            "grid": {k: v for k, v in grid},
            "overrides": list(overrides),
            "seeds": seeds,
            "seed_keys": list(seed_keys),
            "exclude": [dict(rule) for rule in exclude],
            "when": [[k, v, list(extra)] for k, v, extra in when],
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
    # Each todo item: the run and how to start it ("new", "resume", "overwrite").
    todo: list[tuple[SweepRun, str]] = []
    for run in runs:
        run_dir = out / run.name
        try:
            planned = load_config(config_path, run.overrides)
            run.config_hash = planned.hash()
        except ConfigError as err:
            run.status, run.error = "failed", f"invalid config: {err}\n"
            write_text_atomic(run_dir / "error.txt", run.error)
            continue
        summary = _read_summary(run_dir)
        if summary is not None and _same_run(run_dir, summary, run.config_hash):
            run.status = "skipped-done"
            _take_summary(run, summary)
            continue
        if not (run_dir / "config.toml").is_file():
            todo.append((run, "new"))
            continue
        stale = _stale_reason(run_dir, planned)
        if stale is None:
            todo.append((run, "resume"))
        elif redo_stale:
            todo.append((run, "overwrite"))
        else:
            run.status = "failed"
            run.error = (
                f"{run_dir} holds another run: {stale}. Left as it is; rerun with "
                "--redo-stale to train it again from scratch, or use another --out\n"
            )
            write_text_atomic(run_dir / "error.txt", run.error)
    if select is not None:
        selected = [item for item in todo if select(item[0])]
        left_out = len(todo) - len(selected)
        todo, total = selected, total - left_out
        if left_out:
            log(f"{left_out} unfinished runs not selected: they stay pending")
    with lock:
        write_csv()
    for run in runs:
        if run.status != "pending":
            finished(run, ": " + run.error.strip() if run.status == "failed" else "")

    config_abs = str(Path(config_path).resolve())

    def train_argv(run: SweepRun, how: str) -> list[str]:
        argv = ["train", "--config", config_abs]
        for o in [*run.overrides, "output.progress=false"]:
            argv += ["--set", o]
        argv += ["--out", str((out / run.name).resolve())]
        if how != "new":
            argv.append(f"--{how}")
        if dump_features:
            argv.append("--dump-features")
        return argv

    def started(run: SweepRun, how: str, verb: str = "start") -> None:
        with lock:
            log(f"{verb} {run.name}{'' if how == 'new' else f' ({how})'}")

    def record(run: SweepRun, rc: int, err_text: str, wall: float) -> None:
        """Bookkeeping of a finished run, whichever backend ran it."""
        run_dir = out / run.name
        summary = _read_summary(run_dir)
        if rc == 0 and summary is not None and _same_run(run_dir, summary, run.config_hash):
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

    if not todo:
        return runs
    if backend == "ray":
        _run_on_ray(
            todo,
            train_argv,
            started,
            record,
            out=out,
            ray_address=ray_address,
            workers=workers,
            cpus_per_run=cpus_per_run,
            gpus_per_run=gpus_per_run,
        )
        return runs

    def execute(item: tuple[SweepRun, str]) -> None:
        run, how = item
        started(run, how)
        record(run, *execute_run(train_argv(run, how), out / run.name))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(execute, todo))
    return runs


def _check_backend(
    backend: str,
    ray_address: str | None,
    cpus_per_run: float,
    gpus_per_run: float,
    workers: int,
) -> None:
    if backend not in BACKENDS:
        raise SweepError(f"--backend {backend}: expected one of {', '.join(BACKENDS)}")
    if backend == "local":
        if ray_address is not None:
            raise SweepError("--ray-address needs --backend ray")
        if cpus_per_run != 1 or gpus_per_run != 0:
            raise SweepError("--cpus-per-run and --gpus-per-run need --backend ray")
        return
    if importlib.util.find_spec("ray") is None:
        raise SweepError(RAY_MISSING)
    if ray_address is not None and not ray_address.strip():
        raise SweepError("--ray-address: empty address")
    if not cpus_per_run >= 0:
        raise SweepError(f"--cpus-per-run {cpus_per_run}: expected >= 0")
    if not gpus_per_run >= 0:
        raise SweepError(f"--gpus-per-run {gpus_per_run}: expected >= 0")
    if ray_address is None and cpus_per_run > workers:
        raise SweepError(
            f"--cpus-per-run {cpus_per_run} exceeds the local Ray's {workers} CPUs (--workers)"
        )


def _run_on_ray(
    todo: Sequence[tuple[SweepRun, str]],
    train_argv: Callable[[SweepRun, str], list[str]],
    started: Callable[..., None],
    record: Callable[[SweepRun, int, str, float], None],
    *,
    out: Path,
    ray_address: str | None,
    workers: int,
    cpus_per_run: float,
    gpus_per_run: float,
) -> None:
    """Each run a Ray task (:func:`execute_run`), recorded as it finishes."""
    try:
        import ray
        from ray.exceptions import RayError
    except ImportError:
        raise SweepError(RAY_MISSING) from None
    # Shut down at the end only what we started: our local Ray is stopped, a
    # cluster is only disconnected from; a Ray the caller started is left alone.
    ours = not ray.is_initialized()
    # These machines are offline, and a sweep has no business reporting usage.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    init: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "ignore_reinit_error": True,
    }
    if ray_address is not None:
        try:
            ray.init(address=ray_address, **init)
        except (ConnectionError, ValueError, RuntimeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SweepError(f"--ray-address {ray_address}: {first}") from None
    else:
        ray.init(address="local", num_cpus=workers, **init)
    refs: dict[Any, SweepRun] = {}
    try:
        if ray_address is None and gpus_per_run > 0:
            have = ray.cluster_resources().get("GPU", 0)
            if have < gpus_per_run:
                raise SweepError(f"--gpus-per-run {gpus_per_run}: the local Ray has {have:g} GPUs")
        task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(execute_run)
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARD_ENV_PREFIXES)}
        env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        cwd = os.getcwd()
        for run, how in todo:
            run_dir = str((out / run.name).resolve())
            refs[task.remote(train_argv(run, how), run_dir, env, cwd)] = run
            started(run, how, "submit")
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                run = refs.pop(ref)
                try:
                    rc, err_text, wall = ray.get(ref)
                except RayError as err:
                    lines = [line for line in str(err).splitlines() if line.strip()]
                    last = lines[-1].strip() if lines else type(err).__name__
                    rc, err_text, wall = -1, f"Ray task failed: {last}\n", 0.0
                record(run, rc, err_text, wall)
    finally:
        if refs:  # interrupted: cancelling makes each task kill its semfed train process
            for ref in refs:
                ray.cancel(ref)
            ray.wait(list(refs), num_returns=len(refs), timeout=10)
        if ours:
            ray.shutdown()


__all__ = [
    "BACKENDS",
    "SEED_KEYS",
    "SweepError",
    "SweepRun",
    "execute_run",
    "parse_grid",
    "plan_runs",
    "run_sweep",
    "split_values",
]
