"""Link study: figures of merit over channels x CSI x equalizers x SNRs, as CSV and plot.

This is what ``semfed link`` runs; it only needs a :class:`LinkConfig` to start
from. One :class:`~phy.link.Link` is built (and compiled once) per
(channel, CSI, equalizer) combination and swept over the SNRs. Every point
carries its 95 % Monte-Carlo interval (over independent slots) and, where one
exists, the closed form (:mod:`phy.theory`) at the same SNR.

A config whose uplink is digital (``link.scheme = "digital"``) is measured as a
:class:`~phy.digital.DigitalLink`: its feature NMSE is after dequantization, and
its rows add the block and coded bit error rates (:func:`phy.measure.measure_blocks`).
:func:`with_analog_reference` adds the analog link of the same grid and channel,
so that the digital curves are drawn beside the analog ones.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from phy import theory
from phy.config import DigitalSettings, LinkConfig, LinkConfigError
from phy.digital import DigitalLink, build_link
from phy.link import Link
from phy.link_figure import link_figure
from phy.measure import measure, measure_blocks

# What phy.measure returns beside the three figures of merit: intervals and slot counts.
INTERVAL_COLUMNS: tuple[str, ...] = (
    "feature_nmse_low",
    "feature_nmse_high",
    "ber_qpsk_low",
    "ber_qpsk_high",
    "slots",
    "ber_slots",
)
# What phy.measure.measure_blocks adds for a digital link: intervals and blocks sent.
BLOCK_INTERVAL_COLUMNS: tuple[str, ...] = (
    "bler_low",
    "bler_high",
    "ber_coded_low",
    "ber_coded_high",
    "blocks",
)
# The digital scheme's keys of LinkConfig (unset for an analog link).
DIGITAL_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(DigitalSettings))

COLUMNS: tuple[str, ...] = (
    "channel",
    "csi",
    "equalizer",
    # Transmission scheme; the digital scheme's settings (empty for analog rows).
    "scheme",
    "modulation",
    "code_rate",
    "quant_bits",
    "snr_db",
    "feature_nmse",
    "feature_nmse_db",
    "post_eq_snr_db",
    "ber_qpsk",
    # Digital rows: block error rate and bit error rate of the decoded payload.
    "bler",
    "ber_coded",
    # Closed forms at the same SNR; empty where none exists (phy.theory).
    "theory_nmse",
    "theory_ber_qpsk",
    # 95 % Monte-Carlo intervals (phy.confidence) and the independent slots
    # (channel realisations) the NMSE and the BER rest on.
    *INTERVAL_COLUMNS,
    *BLOCK_INTERVAL_COLUMNS,
)


def parse_snr_list(text: str) -> list[float]:
    """SNRs from ``start:stop:step`` (stop included) or a comma list.

    Input
    -----
    text : str
        e.g. ``"-5:25:5"`` or ``"0,10,20"``.

    Output
    ------
    : list of float
    """
    text = text.strip()
    try:
        if ":" in text:
            start, stop, step = (float(p) for p in text.split(":"))
            if not all(map(math.isfinite, (start, stop, step))) or step <= 0 or stop < start:
                raise ValueError
            count = math.floor((stop - start) / step + 1e-9) + 1
            return [round(start + i * step, 10) for i in range(count)]
        values = [float(p) for p in text.split(",") if p.strip()]
        if not values or not all(math.isfinite(v) for v in values):
            raise ValueError
        return values
    except ValueError:
        raise LinkConfigError(
            "snr_db",
            text,
            "finite numbers: start:stop:step with step > 0 and stop >= start, or a comma list",
        ) from None


def study_configs(
    base: LinkConfig,
    channels: Sequence[str],
    csis: Sequence[str],
    equalizers: Sequence[str],
) -> list[LinkConfig]:
    """Every (channel, CSI, equalizer) variant of ``base``, validated.

    Raises :class:`LinkConfigError` for an unknown name.
    """
    return [
        dataclasses.replace(base, channel=channel, csi=csi, equalizer=equalizer)
        for channel in channels
        for csi in csis
        for equalizer in equalizers
    ]


def analog_reference(config: LinkConfig) -> LinkConfig:
    """``config`` with the analog scheme and every digital key unset."""
    unset = dict.fromkeys(("scheme", "uplink_scheme", "downlink_scheme", "mcs", *DIGITAL_KEYS))
    return dataclasses.replace(config, **unset)


def with_analog_reference(
    configs: Sequence[LinkConfig], varied: Sequence[dict[str, object]]
) -> tuple[list[LinkConfig], list[dict[str, object]]]:
    """Put the analog link of every digital config's grid and channel before them.

    Input
    -----
    configs : sequence of LinkConfig
    varied : sequence of dict, one per config (see :func:`run_study`)

    Output
    ------
    : (configs, varied), the analog references first (once each, left out
        where the study already has that analog link), their labels without
        the digital keys
    """
    present = {analog_reference(c) for c in configs if c.scheme_of("uplink") == "analog"}
    references, labels = [], []
    for config, label in zip(configs, varied, strict=True):
        ref = analog_reference(config)
        if config.scheme_of("uplink") == "digital" and ref not in present:
            present.add(ref)
            references.append(ref)
            labels.append({k: v for k, v in label.items() if k not in DIGITAL_KEYS})
    return [*references, *configs], [*labels, *varied]


def run_study(
    configs: Sequence[LinkConfig],
    snrs_db: Sequence[float],
    num_samples: int,
    feature_dim: int = 64,
    progress: Callable[[Iterable], Iterable] | None = None,
    varied: Sequence[dict[str, object]] | None = None,
) -> list[dict[str, object]]:
    """Measure every config at every SNR (one user, uplink).

    Input
    -----
    configs : sequence of LinkConfig
    snrs_db : sequence of float
    num_samples : int
        Feature vectors (and QPSK samples) per point.
    feature_dim : int
    progress : callable wrapping an iterable (e.g. ``tqdm``), optional
        Receives the iterable of (config, SNR) points.
    varied : sequence of dict, optional
        One per config: the values of the keys a list ``--set`` varies
        (``{"subcarrier_spacing_khz": 30.0}``), copied into its rows.

    Output
    ------
    : list of dict with the keys of :data:`COLUMNS` (and of ``varied``)
    """
    labels = list(varied) if varied is not None else [{} for _ in configs]
    if len(labels) != len(configs):
        raise ValueError(f"varied: {len(labels)} entries for {len(configs)} configs")
    points = [(i, snr) for i in range(len(configs)) for snr in snrs_db]
    links: dict[LinkConfig, Link] = {}
    rows = []
    for i, snr in progress(points) if progress else points:
        config = configs[i]
        if config not in links:
            links.clear()  # one compiled link alive at a time
            links[config] = build_link(config, feature_dim)
        link = links[config]
        result = measure(link, snr, num_samples)
        blocks = measure_blocks(link, snr) if isinstance(link, DigitalLink) else {}
        nmse = result["feature_nmse"]
        rows.append(
            {
                "channel": config.channel,
                "csi": config.csi,
                "equalizer": config.equalizer,
                **labels[i],
                **scheme_columns(config),
                "snr_db": snr,
                "feature_nmse": nmse,
                "feature_nmse_db": 10 * math.log10(nmse) if nmse > 0 else -math.inf,
                "post_eq_snr_db": result["post_eq_snr_db"],
                "ber_qpsk": result["ber_qpsk"],
                "bler": blocks.get("bler"),
                "ber_coded": blocks.get("ber_coded"),
                **theory_columns(config, snr),
                **{key: result[key] for key in INTERVAL_COLUMNS},
                **{key: blocks.get(key) for key in BLOCK_INTERVAL_COLUMNS},
            }
        )
    return rows


def scheme_columns(config: LinkConfig) -> dict[str, object]:
    """``scheme`` of the uplink and, for the digital one, ``modulation``,
    ``code_rate`` and ``quant_bits`` (None for analog)."""
    scheme = config.scheme_of("uplink")
    settings = config.digital if scheme == "digital" else None
    return {
        "scheme": scheme,
        "modulation": settings and settings.modulation,
        "code_rate": settings and settings.code_rate,
        "quant_bits": settings and settings.quant_bits,
    }


def theory_columns(config: LinkConfig, snr_db: float) -> dict[str, float | None]:
    """``theory_nmse`` and ``theory_ber_qpsk`` of ``config`` at one SNR (None: no closed form).

    Input
    -----
    config : LinkConfig
    snr_db : float

    Output
    ------
    : dict with the two keys, float or None
    """
    if config.scheme_of("uplink") == "digital":
        # Quantization and lost blocks have no closed form here; uncoded QPSK still does.
        nmse = None
    else:
        nmse = theory.feature_nmse(
            config.channel,
            config.csi,
            config.equalizer,
            snr_db,
            channel_normalization=config.channel_normalization,
            bs_antennas=config.bs_antennas,
        )
    ber = theory.qpsk_ber(
        config.channel,
        config.csi,
        snr_db,
        channel_normalization=config.channel_normalization,
        bs_antennas=config.bs_antennas,
    )
    return {
        "theory_nmse": None if nmse is None else float(nmse),
        "theory_ber_qpsk": None if ber is None else float(ber),
    }


def varied_keys(rows: Sequence[dict[str, object]]) -> list[str]:
    """The columns of ``rows`` beyond :data:`COLUMNS` (the keys a list ``--set`` varied)."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in COLUMNS and k not in keys]
    return keys


def write_csv(rows: Sequence[dict[str, object]], path: str | Path) -> Path:
    """Write the study rows with the header :data:`COLUMNS`, one column per varied
    key inserted after ``equalizer``."""
    path = Path(path)
    fields = [*COLUMNS[:3], *varied_keys(rows), *COLUMNS[3:]]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def format_table(rows: Sequence[dict[str, object]]) -> str:
    """The rows as an aligned text table (theory: "-" where no closed form exists;
    with digital rows, their MCS, block and coded bit error rates)."""

    def maybe(value: object, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    extra = varied_keys(rows)
    digital = any(r.get("scheme") == "digital" for r in rows)
    header = "".join(f"{k[:14]:>15} " for k in extra)
    header += f"{'channel':<9} {'csi':<8} {'equalizer':<9} "
    if digital:
        header += f"{'scheme':<8} {'MCS':<16} "
    header += f"{'SNR dB':>7} {'NMSE':>10} "
    header += f"{'theory':>10} {'NMSE dB':>8} {'postEq dB':>9} {'BER QPSK':>10} {'theory':>10}"
    if digital:
        header += f" {'BLER':>9} {'BER coded':>10}"
    lines = [header]
    for r in rows:
        line = "".join(f"{r.get(k)!s:>15} " for k in extra)
        line += f"{r['channel']:<9} {r['csi']:<8} {r['equalizer']:<9} "
        if digital:
            mcs = (
                f"{r['quant_bits']}b {r['modulation']} {r['code_rate']:g}"
                if r.get("scheme") == "digital"
                else "-"
            )
            line += f"{r.get('scheme', 'analog')!s:<8} {mcs:<16} "
        line += (
            f"{r['snr_db']:>7.1f} "
            f"{r['feature_nmse']:>10.4g} {maybe(r.get('theory_nmse'), '.4g'):>10} "
            f"{r['feature_nmse_db']:>8.2f} {r['post_eq_snr_db']:>9.2f} "
            f"{r['ber_qpsk']:>10.3e} {maybe(r.get('theory_ber_qpsk'), '.3e'):>10}"
        )
        if digital:
            line += f" {maybe(r.get('bler'), '.3g'):>9} {maybe(r.get('ber_coded'), '.3e'):>10}"
        lines.append(line)
    return "\n".join(lines)


def describe(base: LinkConfig, feature_dim: int) -> str:
    """The grid and channel settings the study shares, in two lines (a figure's title)."""
    pilots = (
        f"pilots on symbols {list(base.pilot_ofdm_symbol_indices)}, {base.interpolation} interp."
        if base.pilot_pattern == "kronecker"
        else "no pilots"
    )
    return (
        f"OFDM link, d = {feature_dim}: {base.num_subcarriers} subcarriers x "
        f"{base.num_ofdm_symbols} symbols, {base.subcarrier_spacing_khz:g} kHz, "
        f"CP {base.cyclic_prefix_length}, {pilots}, {base.domain} domain,\n"
        f"DS {base.delay_spread_ns:g} ns, {base.carrier_frequency_ghz:g} GHz, "
        f"{base.max_speed_kmh:g} km/h. Dashed: theory; bars: 95 % intervals over "
        "independent slots"
    )


def plot_study(
    rows: Sequence[dict[str, object]], path: str | Path, base: LinkConfig, feature_dim: int
) -> Path:
    """Feature NMSE [dB] and QPSK BER (log) against SNR, one curve per combination,
    theory dashed where it exists (:func:`phy.link_figure.link_figure`).

    Writes a PNG with matplotlib's Agg backend.
    """
    import matplotlib.pyplot as plt

    fig = link_figure(rows, describe(base, feature_dim), varied_keys(rows))
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
