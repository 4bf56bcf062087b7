"""``semfed experiment``: one experiment file -> its sweep at a scale, sweep.csv and plots."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "experiment",
        help="run an experiment file (experiments/*.toml): its sweep at a scale, then its plots",
        description="Run the sweep an experiment file describes (base config, grid, "
        "conditional settings) at one scale (cpu: a quick look on two CPU cores; medium: "
        "the trusted comparison, 5 seeds; full: the paper's setting), then draw its plots. "
        "Outputs: OUT/runs/<run>/ (one semfed train run each), OUT/sweep.csv, "
        "OUT/plots/*.png|pdf. Rerunning skips finished runs and resumes unfinished ones.",
    )
    p.add_argument("file", metavar="EXPERIMENT.toml")
    p.add_argument("--scale", default="cpu", help="a scale the file defines (default cpu)")
    p.add_argument("--out", metavar="DIR", help="default: experiments/results/<file stem>/<scale>")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="runs at once (default 1)")
    p.add_argument("--backend", default="local", choices=("local", "ray"))
    p.add_argument("--ray-address", metavar="ADDR", help="a Ray cluster (with --backend ray)")
    p.add_argument(
        "--plots-only", action="store_true", help="only redraw the plots of finished runs"
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="run only the grid points with these values of a grid key (repeatable); "
        "the rest stay pending and a later run without --only does them",
    )
    p.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="run only the first N of the scale's seeds (the rest stay pending)",
    )
    p.add_argument(
        "--redo-stale",
        action="store_true",
        help="train again from scratch the runs whose directory holds another run (made "
        "with a different config or an older link-budget default); without it they are "
        "reported as failed and left alone",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semfed.experiment import load_experiment, run_experiment

    exp = load_experiment(args.file)
    runs, plots = run_experiment(
        exp,
        args.scale,
        args.out,
        workers=args.workers,
        backend=args.backend,
        ray_address=args.ray_address,
        plots_only=args.plots_only,
        only=args.only,
        seeds=args.seeds,
        redo_stale=args.redo_stale,
        log=lambda line: print(line, flush=True),
    )
    for path in plots:
        print(path, flush=True)
    failed = [r for r in runs if r.status == "failed"]
    if failed:
        print(f"experiment: {len(failed)} of {len(runs)} runs failed (see error.txt)")
    return 1 if failed else 0
