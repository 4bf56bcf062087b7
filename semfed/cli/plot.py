"""``semfed plot``: figures (PNG and PDF) from run and sweep directories."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="accuracy vs round, accuracy vs SNR, or t-SNE of received features (PNG and PDF)",
        description="Plot from run directories (semfed train --out) or sweep directories "
        "(semfed sweep --out). curves: test accuracy vs round, one curve per setting, mean "
        "and min-max band over seeds. snr: final accuracy vs SNR, one curve per setting "
        "(usually the algorithm), from test_acc_by_snr or a sweep over link.uplink_snr_db. "
        "tsne: t-SNE of DIR/features.npz (--dump-features) coloured by class.",
    )
    p.add_argument("dirs", nargs="+", metavar="RUN_OR_SWEEP_DIR")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the figures")
    p.add_argument("--kind", default="curves", choices=("curves", "snr", "tsne"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semfed.plot import make_plots

    for path in make_plots(args.dirs, args.out, args.kind):
        print(path)
    return 0
