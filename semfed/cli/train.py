"""``semfed train``: one run of the configured algorithm, with results, checkpoints and resume."""

from __future__ import annotations

import argparse
import json

from semfed.cli import add_config_arguments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train FedCL (Algorithm 1) or a baseline (algorithm.name) over the radio link",
        description="Run the rounds of the config, evaluate every evaluation.every rounds and "
        "write config.toml, metrics.jsonl, summary.json, checkpoints/ and tb/ to --out.",
    )
    add_config_arguments(p)
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument(
        "--dump-features",
        action="store_true",
        help="save received test features and labels to DIR/features.npz at the end (t-SNE)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semfed.config import load_config
    from semfed.runtime import announce_device

    if args.resume and args.overwrite:
        from semfed.errors import UserError

        raise UserError("--resume and --overwrite exclude each other")
    config = load_config(args.config, args.overrides)
    announce_device(config.link.jit_compile)  # before anything imports TensorFlow
    from semfed.fedcl import TrainingDiverged
    from semfed.train import run_training

    try:
        summary = run_training(
            config,
            args.out,
            resume=args.resume,
            overwrite=args.overwrite,
            dump_features=args.dump_features,
        )
    except TrainingDiverged as err:
        from semfed.errors import UserError

        raise UserError(f"{err}; last good state saved in {args.out}/diverged") from None
    print(json.dumps(summary, indent=2))
    return 0
