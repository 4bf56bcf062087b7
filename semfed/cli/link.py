"""``semfed link``: a link-level study of the OFDM radio (no learning).

Example::

    semfed link --channel awgn,rayleigh,tdl-a --csi perfect,ls --snr=-5:25:5 --out runs/link

prints a table and writes ``DIR/link.csv`` and ``DIR/link.png``. Settings not
given on the command line come from ``--config`` (section ``[link]``) and
``--set link.key=value``. A link key may take a comma list
(``--set link.subcarrier_spacing_khz=15,30,60,120``): the study runs every
combination, and the CSV gets one column per varied key. Where a closed
form exists (AWGN and Rayleigh with perfect CSI, :mod:`phy.theory`) it is in
the CSV (``theory_nmse``, ``theory_ber_qpsk``) and dashed on the plot; every
point has a 95 % interval over its independent slots (``*_low``, ``*_high``,
``slots``, ``ber_slots``).

With the digital scheme (``--set link.scheme=digital``, :mod:`phy.digital`) the
study measures the block error rate and the coded bit error rate too (columns
``scheme``, ``modulation``, ``code_rate``, ``quant_bits``, ``bler``,
``ber_coded``) and adds the analog link of the same channel, so that the
figure shows the digital curves beside the analog ones::

    semfed link --set link.scheme=digital --set link.modulation=qpsk,16qam \\
        --set link.code_rate=0.5 --snr=-5:20:1 --out runs/digital

With a cell drop (``--topology umi``, the same as ``--set link.topology=umi``;
a comma list draws each scenario) it also writes, beside the link curves, the
drop a training run of the config would get (K = ``partition.num_clients``
users from ``partition.seed``, :mod:`semfed.cell`): ``DIR/drop.png`` (map of
the users coloured by uplink SNR, the BS and the sector; the CDF of the users'
uplink and downlink SNR) and ``DIR/drop.csv`` (one row per user), one pair per
varied setting that changes the drop (``drop_<key>=<value>.png``)::

    semfed link --topology umi --set partition.num_clients=20 --out runs/umi

``--mcs-table`` measures instead the table that ``link.mcs = "auto"`` chooses
from (:mod:`phy.mcs`: block error rate vs SNR of every candidate MCS on the
configured link), or takes it from the cache where training looks for it, and
writes ``DIR/mcs_table.csv`` (with ``.json``: the settings it belongs to) and
``DIR/mcs_table.png``::

    semfed link --config experiments/configs/paper.toml --mcs-table --out runs/mcs
"""

from __future__ import annotations

import argparse
from pathlib import Path

from phy.config import TOPOLOGY_KEYS
from semfed.cli import add_config_arguments


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def split_varied(overrides: list[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """``--set`` items as (fixed items, [(link key, values)] for comma lists).

    Only ``link.*`` keys may take a list; a list value in brackets
    (``link.pilot_ofdm_symbol_indices=[2, 11]``) is one value.
    """
    from semfed.errors import UserError
    from semfed.sweep import split_values

    fixed, varied = [], []
    for item in overrides:
        key, _, raw = item.partition("=")
        values = split_values(raw) if raw else [raw]
        if len(values) == 1:
            fixed.append(item)
            continue
        key = key.strip()
        if not key.startswith("link."):
            raise UserError(f"--set {item}: only link.* keys may take a comma list here")
        if any(not v for v in values):
            raise UserError(f"--set {item}: empty value in the list")
        if key in (k for k, _ in varied):
            raise UserError(f"--set {key}: given twice as a list")
        varied.append((key, values))
    return fixed, varied


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "link",
        help="link-level study: feature NMSE, post-equalisation SNR, QPSK BER (and the "
        "digital scheme's block and coded bit error rates) vs SNR",
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
        "--mcs-table",
        action="store_true",
        help="measure (or take from the cache) the block-error table that link.mcs = auto "
        "chooses from, for the configured link, and write DIR/mcs_table.csv and .png",
    )
    parser.add_argument(
        "--snr",
        default=None,
        metavar="RANGE",
        help="Es/N0 per data RE [dB] as start:stop:step (stop included) or a comma list; "
        "write --snr=-5:25:5 when it starts with a minus (default -5:25:5; with "
        "--mcs-table the table's own grid, phy.mcs.DEFAULT_SNRS_DB)",
    )
    parser.add_argument(
        "--samples", type=int, default=4096, help="feature vectors per point (default 4096)"
    )
    parser.add_argument(
        "--feature-dim", type=int, help="d, even (default: the config's model.feature_dim)"
    )
    parser.add_argument(
        "--topology",
        metavar="NAMES",
        help="comma list of umi, uma, rma: drop the config's K users in that 38.901 sector "
        "(link.topology) and write its map and SNR CDF (DIR/drop*.png, DIR/drop*.csv)",
    )
    parser.add_argument("--seed", type=int, default=0, help="Sionna random seed (default 0)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def write_mcs_table(config, out: Path) -> int:
    """``semfed link --mcs-table``: the cached (or newly measured) MCS table of
    ``config.link`` in each direction whose channel differs, copied to ``out``
    with its settings and a plot."""
    import json

    from semfed.runtime import announce_device

    announce_device(config.link.jit_compile)
    from phy.mcs import table_settings
    from phy.mcs_figure import plot_table
    from semfed.radio import measured_mcs_table

    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for direction in ("uplink", "downlink"):
        table, cached = measured_mcs_table(config.link, direction, config.data.cache_dir)
        if cached in paths.values():
            continue  # the downlink's channel is the uplink's: one table
        paths[direction] = cached
        stem = "mcs_table" if direction == "uplink" else "mcs_table_downlink"
        table.write_csv(out / f"{stem}.csv")
        settings = table_settings(config.link, direction)
        (out / f"{stem}.json").write_text(json.dumps(settings, indent=1, sort_keys=True) + "\n")
        plot_table(table, out / f"{stem}.png", config.link)
        print(format_choices(table))
        print(f"wrote {out / stem}.csv, .json and .png (cached as {cached})")
    return 0


def format_choices(table) -> str:
    """Each candidate's 10 % threshold in a line per MCS: the lowest grid SNR from
    which the table's block error rate stays below 10 %."""
    from phy.mcs import TARGET_BLER

    lines = [f"{'MCS':<14} {'bits/symbol':>11} {'BLER < 10 % from':>17}"]
    for mcs in table.candidates:
        snrs = sorted({float(r["snr_db"]) for r in table.rows})
        above = [s for s in snrs if table.bler(mcs, s) < TARGET_BLER]
        ok = [s for s in above if all(table.bler(mcs, t) < TARGET_BLER for t in snrs if t >= s)]
        when = f"{min(ok):g} dB" if ok else "never on the grid"
        lines.append(f"{mcs.label:<14} {mcs.efficiency:>11.3g} {when:>17}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import itertools

    from phy.config import LinkConfig
    from semfed.config import load_config, parse_override
    from semfed.errors import UserError

    overrides = list(args.overrides)
    if args.topology:
        overrides.append(f"link.topology={args.topology}")
    fixed, varied = split_varied(overrides)
    config = load_config(args.config, fixed)
    if args.mcs_table:
        if varied or args.snr or args.channel or args.csi or args.equalizer:
            raise UserError(
                "--mcs-table measures the configured link on its own SNR grid: give the "
                "link with --config / --set (one value a key), not --snr, --channel, --csi, "
                "--equalizer or comma lists"
            )
        return write_mcs_table(config, Path(args.out))
    args.snr = args.snr or "-5:25:5"
    base = config.link
    # Every combination of the list-valued keys, each loaded and checked like one --set.
    variants: list[tuple[dict[str, object], LinkConfig]] = [({}, base)]
    if varied:
        variants = []
        for combo in itertools.product(*(values for _, values in varied)):
            items = [f"{key}={v}" for (key, _), v in zip(varied, combo, strict=True)]
            labels = {
                key.split(".", 1)[1]: parse_override(i)[1]
                for (key, _), i in zip(varied, items, strict=True)
            }
            variants.append((labels, load_config(args.config, [*fixed, *items]).link))
    # Not given: each variant's own (a list --set of link.csi varies it).
    channels = _names(args.channel) if args.channel else None
    csis = _names(args.csi) if args.csi else None
    equalizers = _names(args.equalizer) if args.equalizer else None
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
    configs, labels = [], []
    for label, link_config in variants:
        for c in study.study_configs(
            link_config,
            channels or [link_config.channel],
            csis or [link_config.csi],
            equalizers or [link_config.equalizer],
        ):
            configs.append(c)
            labels.append(label)
    # A digital study is drawn beside the analog link of the same grid and channel.
    configs, labels = study.with_analog_reference(configs, labels)
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
        varied=labels,
    )
    print(study.format_table(rows))
    csv_path = study.write_csv(rows, out / "link.csv")
    png_path = study.plot_study(rows, out / "link.png", base, feature_dim)
    print(f"wrote {csv_path} and {png_path}")
    for path in _draw_drops(config, variants, out):
        print(f"wrote {path} and {path.with_suffix('.csv')}")
    return 0


def _draw_drops(config, variants, out: Path) -> list[Path]:
    """The map and SNR CDF of every distinct cell drop among ``variants``, as a run of
    ``config`` would draw it (:func:`semfed.cell.drop_seed`)."""
    import csv

    from phy.drop_figure import drop_figure
    from phy.link_budget import default_max_distance_m
    from phy.topology import BS_HEIGHT_M, DROP_COLUMNS, cell_drop, drop_rows
    from semfed.cell import drop_seed

    k = config.partition.num_clients
    done, made = set(), []
    for labels, link_config in variants:
        if not link_config.has_topology:
            continue
        budget = link_config.link_budget
        # Keys the drop does not depend on (channel, CSI, ...) give the same drop.
        relevant = {key: v for key, v in labels.items() if key in _DROP_KEYS}
        key = tuple(sorted(relevant.items()))
        if key in done:
            continue
        done.add(key)
        drop = cell_drop(link_config, k, drop_seed(config))
        stem = "drop" + "".join(f"_{name}={value}" for name, value in key)
        with (out / f"{stem}.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=DROP_COLUMNS)
            writer.writeheader()
            writer.writerows(drop_rows(drop))
        title = (
            f"{budget.scenario.upper()} sector, {link_config.carrier_frequency_ghz:g} GHz, "
            f"partition.seed = {config.partition.seed}; UE {budget.ue_tx_power_dbm:g} dBm, "
            f"BS {budget.bs_tx_power_dbm:g} dBm over {k} sub-bands of "
            f"{drop.bandwidth_hz / 1e6:.3g} MHz, noise figure BS "
            f"{budget.bs_noise_figure_db:g} / UE {budget.ue_noise_figure_db:g} dB; "
            f"path loss, shadow fading and O2I loss of 38.901"
        )
        if budget.max_distance_m != default_max_distance_m(budget.scenario):
            title += f"; sector {budget.max_distance_m:g} m"
        made.append(
            drop_figure(
                drop.users.positions_m,
                drop.uplink_snr_db,
                drop.downlink_snr_db,
                drop.users.los,
                drop.users.indoor,
                max_distance_m=budget.max_distance_m,
                min_distance_m=budget.min_distance_m,
                bs_height_m=BS_HEIGHT_M[budget.scenario],
                path=out / f"{stem}.png",
                title=title,
            )
        )
    return made


# The link keys a cell drop depends on: its place draws and its link budget
# (topology_snr only chooses which SNRs a run uses, not the drop).
_DROP_KEYS = (
    frozenset({"topology", "carrier_frequency_ghz", "rb_per_user", "fft_size"})
    | frozenset({"subcarrier_spacing_khz", *TOPOLOGY_KEYS})
) - {"topology_snr"}
