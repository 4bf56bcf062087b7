"""``semfed sweep``: the cartesian grid of ``semfed train`` runs, resumable, failure-tolerant."""

from __future__ import annotations

import argparse
import sys

from semfed.cli import add_config_arguments
from semfed.sweep import SEED_KEYS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run the cartesian grid of --grid values (x --seeds) as separate semfed train runs",
        description="Run every combination of the --grid values (times --seeds training seeds) "
        "as a separate 'semfed train' process in OUT/<key=value__...__seed=N>. Rerunning the "
        "same command skips finished runs and resumes unfinished ones; a failing run is "
        "recorded (OUT/<run>/error.txt) and the others go on. OUT/sweep.csv summarises every "
        "run. --seeds N sets training.seed and partition.seed to 0..N-1 (--seed-keys to change), "
        "so runs with the same seed index share split, batch order and channel draws. "
        "--backend ray (pip install 'semfed[distributed]') makes each run a Ray task, on a "
        "local Ray or on the cluster at --ray-address; on a cluster the config file and OUT "
        "must be on a filesystem shared by every node, which also need semfed installed.",
    )
    add_config_arguments(p)
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a swept config key and its values, read like --set values; commas inside "
        "[...] belong to one value (repeatable: the grid is the cartesian product)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="run each grid point with every seed key = 0..N-1 (default: the config's seeds)",
    )
    p.add_argument(
        "--seed-keys",
        default=",".join(SEED_KEYS),
        metavar="KEYS",
        help="comma-separated config keys --seeds sets (default: training.seed,partition.seed; "
        "training.seed alone keeps one split for every seed)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="sweep directory")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="runs at once, each a separate process (default 1); with --backend ray, the "
        "CPUs of the local Ray (unused with --ray-address)",
    )
    p.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="local: a pool of --workers processes (default); ray: each run a Ray task "
        "(needs the 'distributed' extra)",
    )
    p.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="with --backend ray: the Ray cluster to run on (e.g. ray://head:10001 or auto); "
        "OUT and the config must be on a filesystem all nodes share (default: a local Ray)",
    )
    p.add_argument(
        "--cpus-per-run",
        type=float,
        default=1,
        metavar="N",
        help="with --backend ray: CPUs each run's Ray task asks for (default 1)",
    )
    p.add_argument(
        "--gpus-per-run",
        type=float,
        default=0,
        metavar="N",
        help="with --backend ray: GPUs each run's Ray task asks for, fractions allowed (default 0)",
    )
    p.add_argument(
        "--redo-stale",
        action="store_true",
        help="train again from scratch the run directories that hold another run (a config "
        "that differs in more than rounds, evaluation or output, or a cell drop today's "
        "defaults no longer draw); without it they are reported as failed and left alone",
    )
    p.add_argument(
        "--dump-features",
        action="store_true",
        help="pass --dump-features to every run (features.npz for semfed plot --kind tsne)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semfed.sweep import parse_grid, run_sweep

    grid = parse_grid(args.grid)
    runs = run_sweep(
        args.config,
        grid,
        args.out,
        overrides=args.overrides,
        seeds=args.seeds,
        workers=args.workers,
        dump_features=args.dump_features,
        log=lambda line: print(line, flush=True),
        backend=args.backend,
        ray_address=args.ray_address,
        cpus_per_run=args.cpus_per_run,
        gpus_per_run=args.gpus_per_run,
        seed_keys=[k.strip() for k in args.seed_keys.split(",") if k.strip()],
        on_start=lambda: _announce_device(args, grid),
        redo_stale=args.redo_stale,
    )
    failed = [r for r in runs if r.status == "failed"]
    print(
        f"sweep: {len(runs)} runs, {len(runs) - len(failed)} finished, {len(failed)} failed; "
        f"{args.out}/sweep.csv",
        flush=True,
    )
    for r in failed:
        print(f"  failed {r.name}: see {args.out}/{r.name}/error.txt", flush=True)
    return 1 if failed else 0


def _announce_device(args: argparse.Namespace, grid: list[tuple[str, list[str]]]) -> None:
    """The device line of the runs (on stderr): this machine's, or each Ray worker's."""
    if args.backend == "ray":
        print(
            f"device: each run on a Ray worker ({args.cpus_per_run:g} CPUs, "
            f"{args.gpus_per_run:g} GPUs per run)",
            file=sys.stderr,
            flush=True,
        )
        return
    from semfed.config import ConfigError, load_config
    from semfed.runtime import announce_device, device_summary, start_tensorflow

    if any(key == "link.jit_compile" for key, _ in grid):
        announce_device(None)
        return
    try:
        jit_compile = load_config(args.config, args.overrides).link.jit_compile
    except ConfigError:  # the sweep reports it run by run
        start_tensorflow()
        print(f"device: {device_summary()}", file=sys.stderr, flush=True)
        return
    announce_device(jit_compile)
