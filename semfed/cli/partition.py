"""``semfed partition``: show (and save) how the config splits the data among clients."""

from __future__ import annotations

import argparse

from semfed.cli import add_config_arguments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "partition",
        help="print the per-client data split of a config",
        description="Load the dataset, split it as the config says and print one row per "
        "client: its classes and samples per class in the train and test splits.",
    )
    add_config_arguments(p)
    p.add_argument("--json", metavar="OUT", help="also write the split as JSON to OUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semfed.config import load_config
    from semfed.data import load_dataset
    from semfed.io import write_json_atomic
    from semfed.partition import format_table, make_partition

    config = load_config(args.config, args.overrides)
    data = load_dataset(config.data, progress=config.output.progress)
    partition = make_partition(data.y_train, data.y_test, data.num_classes, config.partition)
    summary = partition.summary(data.y_train, data.y_test)
    print(
        f"{data.name} from {data.source}: {len(data.y_train)} train / {len(data.y_test)} test "
        f"images, {data.num_classes} classes; {partition.num_clients} clients, "
        f"{sum(c.num_train for c in partition.clients)} training samples in all"
    )
    print(format_table(summary, data.class_names))
    if args.json:
        write_json_atomic(args.json, summary)
        print(f"wrote {args.json}")
    return 0
