"""``semfed plot``: figures (PNG and PDF) from run and sweep directories."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="accuracy vs round, accuracy vs SNR, or t-SNE of received features (PNG and PDF)",
        description="Plot from run directories (semfed train --out), sweep directories "
        "(semfed sweep --out) or an experiment's results (experiments/results/NAME/SCALE). "
        "curves: test accuracy vs round, one curve per setting, mean "
        "and 95 % interval band over seeds. snr: final accuracy vs SNR, one curve per setting "
        "(usually the algorithm), from test_acc_by_snr or a sweep over link.uplink_snr_db. "
        "vs: final accuracy vs any config key (--x partition.ways: accuracy vs m). "
        "cost: final accuracy vs the run's communication load (--cost airtime: vs its "
        "seconds on the air). link: NMSE and BER vs SNR "
        "from semfed link's DIR/link.csv. "
        "tsne: t-SNE of DIR/features.npz (--dump-features) coloured by class.",
    )
    p.add_argument("dirs", nargs="+", metavar="RUN_OR_SWEEP_DIR")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the figures")
    p.add_argument(
        "--kind", default="curves", choices=("curves", "snr", "vs", "cost", "link", "tsne")
    )
    p.add_argument("--x", metavar="KEY", help="config key on the x axis of --kind vs")
    p.add_argument(
        "--cost",
        default="load",
        choices=("load", "airtime"),
        help="x axis of --kind cost: load (real values sent, default) or airtime (seconds "
        "on the air: OFDMA slots of the busiest client, uplink + downlink)",
    )
    p.add_argument(
        "--metric",
        default="final",
        choices=("final", "oracle_best"),
        help="accuracy of --kind vs: final (mean of the last evaluations, default) or "
        "oracle_best (best round, selected on the test set)",
    )
    p.add_argument(
        "--protocol",
        choices=("global", "personal", "masked"),
        help="evaluation protocol to plot (default: the runs' evaluation.protocol)",
    )
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep only runs whose config has this value (repeatable)",
    )
    p.add_argument(
        "--paired",
        metavar="VALUE",
        help="--kind snr: also plot each setting minus this one, paired by seed, in points "
        "(snr_paired); VALUE is the reference's value of the key that tells the settings "
        "apart (several keys: their values joined by '/', in the legend's order)",
    )
    p.add_argument("--by", metavar="KEY", help="one figure per value of this config key")
    p.add_argument("--note", default="", help="a line added to every title (e.g. the scale)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semfed.config import parse_override
    from semfed.plot import make_plots

    where = {}
    for item in args.where:
        keys, value = parse_override(item)
        where[".".join(keys)] = value
    paths = make_plots(
        args.dirs,
        args.out,
        args.kind,
        x=args.x,
        metric=args.metric,
        where=where,
        by=args.by,
        note=args.note,
        protocol=args.protocol,
        cost=args.cost,
        paired=args.paired,
    )
    for path in paths:
        print(path)
    return 0
