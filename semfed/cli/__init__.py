"""The ``semfed`` command.

Each subcommand lives in its own module exposing ``register(subparsers)``, which
adds a parser whose ``func`` default takes the parsed arguments and returns an
exit status. Known errors (bad config, missing data) end with a one-line message
and status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from semfed import __version__
from semfed.errors import USER_ERRORS, UserError

SUBCOMMANDS = (
    "partition",
    "link",
    "train",
    "compare",
    "sweep",
    "plot",
    "experiment",
    "bench",
    "info",
)

__all__ = ["UserError", "add_config_arguments", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semfed",
        description="Federated contrastive learning for personalized semantic "
        "communication over a simulated OFDM link (Sionna).",
    )
    parser.add_argument("--version", action="version", version=f"semfed {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show TensorFlow's own start-up and log messages (hidden by default)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"semfed.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"semfed.cli.{name}":
                continue  # subcommand not built yet
            raise
        module.register(sub)
    return parser


def add_config_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """``--config FILE`` and repeatable ``--set section.key=value``."""
    parser.add_argument("--config", required=required, metavar="FILE", help="TOML run config")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.rounds=5 (repeatable)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    from semfed.runtime import configure_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    # Before any command imports TensorFlow; see semfed.runtime for why this alone
    # is not enough and how the start-up messages are kept off the terminal.
    configure_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        print(f"semfed {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"semfed {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
