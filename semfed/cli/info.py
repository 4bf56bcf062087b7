"""``semfed info``: versions, devices, XLA and bfloat16, data source and cache (offline)."""

from __future__ import annotations

import argparse

from semfed.cli import add_config_arguments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="versions, devices, XLA/bfloat16, data source and cache: paste it into a bug report",
        description="Print the versions of semfed and its main packages, the devices "
        "TensorFlow sees, whether XLA and bfloat16 work here (a tiny compiled function and a "
        "tiny bfloat16 matmul are run), where the data of --config would come from "
        "(data.path, SEMFED_DATA, tensorflow-datasets) and the data cache. Works offline.",
    )
    add_config_arguments(p, required=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semfed.config import load_config
    from semfed.runtime import start_tensorflow

    config = load_config(args.config, args.overrides)
    startup_log = start_tensorflow()
    from semfed.info import format_report, report

    print(format_report(report(config.data, startup_log)), flush=True)
    return 0
