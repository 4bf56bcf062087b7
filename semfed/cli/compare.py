"""``semfed compare``: runs side by side, or statistics across seeds with paired differences.

Two modes:

* ``semfed compare RUN_DIR ...``: a table of single runs that differ only in
  ``algorithm.*`` (one seed each; an anecdote, not a result). Runs are refused
  (one line, naming what differs) when their partitions, seeds or any config key
  outside ``algorithm.*`` differ.
* ``semfed compare SWEEP_DIR ... --by KEY [--paired VALUE]``: runs grouped by
  every config key except the seed keys and ``KEY``; for each group and value of
  ``KEY``: n, mean, standard deviation and 95 % Student-t interval of the final
  accuracy over seeds, and with ``--paired`` the paired difference of every
  other value against ``VALUE`` (this row minus the paired row, seed by seed),
  its 95 % interval and the paired t-test's p-value (:mod:`semfed.statistics`).
  Refused when the runs of different ``KEY`` values differ in anything but
  seeds (select a fair subset with ``--where``), when two runs share a seed, or
  when paired runs were trained on different splits. ``KEY`` may be a comma list
  (``--by link.scheme,link.modulation``): the compared value is the combination,
  its parts joined by "/" ("unset" for a key a run's config leaves unset).
  ``--snr DB`` compares the final accuracy at one evaluation SNR
  (``evaluation.snr_db`` a list) instead of the first.
"""

from __future__ import annotations

import argparse

from semfed.comparison import (
    CLUSTER_METRICS,
    COLUMNS,
    METRICS,
    PROTOCOLS,
    check_comparable,
    format_statistics,
    format_table,
    load_run,
    parse_where,
    statistics_for,
    table_rows,
    write_statistics_csv,
    write_table_csv,
)
from semfed.errors import UserError
from semfed.sweep import SEED_KEYS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="runs side by side, or mean, 95 %% interval and paired differences across seeds "
        "(--by)",
        description="Without --by: final accuracy, rounds and communication totals of single "
        "runs that differ only in algorithm.* (refuses unfair comparisons). With --by KEY: "
        "runs (sweep directories or run directories) grouped by every config key except the "
        "seed keys and KEY; per group and value of KEY the number of seeds n, mean, standard "
        "deviation and 95 % Student-t interval, and with --paired VALUE the paired difference "
        "of every other value against VALUE (row minus paired row, seed by seed) with its "
        "95 % interval and paired t-test p-value.",
    )
    p.add_argument(
        "runs", nargs="+", metavar="DIR", help="run directories (semfed train --out) or sweeps"
    )
    p.add_argument(
        "--by",
        metavar="KEY",
        help="the compared config key, e.g. algorithm.name; a comma list compares the "
        "combinations, named by their values joined by / (unset: a key the config leaves unset)",
    )
    p.add_argument(
        "--paired",
        metavar="VALUE",
        help="with --by: the value of KEY the others are compared against, seed by seed",
    )
    p.add_argument(
        "--metric",
        choices=METRICS + CLUSTER_METRICS,
        default="final",
        help="final: mean of the last evaluation.final_window evaluations (default); "
        "oracle_best: the best evaluated round, selected on the test set (optimistic); "
        "feature_silhouette, feature_knn_acc: how the received test features cluster by "
        "class (runs with dumped features, Fig. 4)",
    )
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help="with --by: the evaluation protocol (default: each run's evaluation.protocol)",
    )
    p.add_argument(
        "--snr",
        metavar="DB",
        type=float,
        help="with --by: the final accuracy at this evaluation SNR (evaluation.snr_db a list)",
    )
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --by: keep only runs whose config has this value (repeatable)",
    )
    p.add_argument(
        "--seed-keys",
        default=",".join(SEED_KEYS),
        metavar="KEYS",
        help="with --by: the config keys that tell seeds apart (default: "
        "training.seed,partition.seed)",
    )
    p.add_argument(
        "--convergence",
        action="store_true",
        help="with --by: also the seed-mean curve's change over the last 10 rounds, whether "
        "it is under 1 point (converged) and the round from which it stays so",
    )
    p.add_argument("--csv", metavar="OUT", help="also write the table as CSV to OUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.by is None:
        if args.metric in CLUSTER_METRICS:
            raise UserError(f"--metric {args.metric} needs --by KEY")
        if args.convergence:
            raise UserError("--convergence needs --by KEY")
        for option in ("paired", "protocol", "snr"):
            if getattr(args, option) is not None:
                raise UserError(f"--{option} needs --by KEY")
        if args.where:
            raise UserError("--where needs --by KEY")
        runs = [load_run(p) for p in args.runs]
        check_comparable(runs)
        rows = table_rows(runs)
        if args.metric == "oracle_best":
            print("note: oracle best accuracy is selected on the test set (optimistic)")
        print(format_table(rows))
        if args.csv:
            write_table_csv(args.csv, [key for key, _ in COLUMNS], rows)
        return 0

    seed_keys = tuple(k.strip() for k in args.seed_keys.split(",") if k.strip())
    runs, varying, rows = statistics_for(
        args.runs,
        args.by,
        paired=args.paired,
        metric=args.metric,
        protocol=args.protocol,
        where=parse_where(args.where),
        seed_keys=seed_keys,
        with_convergence=args.convergence,
        snr=args.snr,
    )
    protocols = {args.protocol or r["config"].get("evaluation.protocol", "global") for r in runs}
    what = (
        f"{args.metric} of the received test features (by class)"
        if args.metric in CLUSTER_METRICS
        else f"{args.metric} test accuracy"
        + (f" at evaluation SNR {args.snr:g} dB" if args.snr is not None else "")
        + f", protocol {', '.join(sorted(protocols))}"
    )
    print(
        f"{what}; "
        "mean and 95 % Student-t interval over seeds"
        + (f"; diff = row minus {args.by}={args.paired}, paired by seed" if args.paired else "")
    )
    print(format_statistics(varying, args.by, rows, args.paired))
    if args.csv:
        write_statistics_csv(args.csv, varying, args.by, rows)
    return 0
