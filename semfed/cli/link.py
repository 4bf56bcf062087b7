"""``semfed link``: a link-level study of the OFDM radio (no learning).

Example::

    semfed link --channel awgn,rayleigh,tdl-a --csi perfect,ls --snr=-5:25:5 --out runs/link

prints a table and writes ``DIR/link.csv`` and ``DIR/link.png``. Settings not
given on the command line come from ``--config`` (section ``[link]``) and
``--set link.key=value``. Where a closed form exists (AWGN and Rayleigh with
perfect CSI, :mod:`phy.theory`) it is in the CSV (``theory_nmse``,
``theory_ber_qpsk``) and dashed on the plot; every point has a 95 % interval
over its independent slots (``*_low``, ``*_high``, ``slots``, ``ber_slots``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semfed.cli import add_config_arguments


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "link",
        help="link-level study: feature NMSE, post-equalisation SNR, QPSK BER vs SNR",
        description="Sweep channel models, CSI and equalizers over SNRs on the configured "
        "OFDM link; print a table and write DIR/link.csv and DIR/link.png, with the closed "
        "form dashed where one exists (AWGN, Rayleigh with perfect CSI) and 95 % intervals "
        "over independent slots.",
    )
    add_config_arguments(parser, required=False)
    parser.add_argument(
        "--channel", metavar="NAMES", help="comma list of channel models (default: the config's)"
    )
    parser.add_argument("--csi", metavar="NAMES", help="comma list of perfect, ls")
    parser.add_argument("--equalizer", metavar="NAMES", help="comma list of mmse, lmmse, zf")
    parser.add_argument(
        "--snr",
        default="-5:25:5",
        metavar="RANGE",
        help="Es/N0 per data RE [dB] as start:stop:step (stop included) or a comma list; "
        "write --snr=-5:25:5 when it starts with a minus (default -5:25:5)",
    )
    parser.add_argument(
        "--samples", type=int, default=4096, help="feature vectors per point (default 4096)"
    )
    parser.add_argument(
        "--feature-dim", type=int, help="d, even (default: the config's model.feature_dim)"
    )
    parser.add_argument("--seed", type=int, default=0, help="Sionna random seed (default 0)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semfed.config import load_config
    from semfed.errors import UserError

    config = load_config(args.config, args.overrides)
    base = config.link
    channels = _names(args.channel) if args.channel else [base.channel]
    csis = _names(args.csi) if args.csi else [base.csi]
    equalizers = _names(args.equalizer) if args.equalizer else [base.equalizer]
    feature_dim = args.feature_dim if args.feature_dim is not None else config.model.feature_dim
    if args.samples < 1:
        raise UserError(f"--samples = {args.samples} is not allowed: an integer >= 1")

    # TensorFlow and Sionna load only once the arguments are known to be sane.
    from semfed.progress import progress_over
    from semfed.runtime import announce_device

    announce_device(base.jit_compile)
    from phy import study
    from phy.seeding import set_seed

    snrs = study.parse_snr_list(args.snr)
    configs = study.study_configs(base, channels, csis, equalizers)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(args.seed)

    def progress(points):
        return progress_over(points, desc="link study", unit="point")

    rows = study.run_study(
        configs,
        snrs,
        args.samples,
        feature_dim,
        progress=None if args.no_progress else progress,
    )
    print(study.format_table(rows))
    csv_path = study.write_csv(rows, out / "link.csv")
    png_path = study.plot_study(rows, out / "link.png", base, feature_dim)
    print(f"wrote {csv_path} and {png_path}")
    return 0
