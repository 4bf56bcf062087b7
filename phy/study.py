"""Link study: figures of merit over channels x CSI x equalizers x SNRs, as CSV and plot.

This is what ``semfed link`` runs; it only needs a :class:`LinkConfig` to start
from. One :class:`~phy.link.Link` is built (and compiled once) per
(channel, CSI, equalizer) combination and swept over the SNRs.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from phy.config import LinkConfig, LinkConfigError
from phy.link import Link
from phy.measure import measure

COLUMNS: tuple[str, ...] = (
    "channel",
    "csi",
    "equalizer",
    "snr_db",
    "feature_nmse",
    "feature_nmse_db",
    "post_eq_snr_db",
    "ber_qpsk",
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
            if step <= 0 or stop < start:
                raise ValueError
            count = math.floor((stop - start) / step + 1e-9) + 1
            return [round(start + i * step, 10) for i in range(count)]
        values = [float(p) for p in text.split(",") if p.strip()]
        if not values:
            raise ValueError
        return values
    except ValueError:
        raise LinkConfigError(
            "snr_db", text, "start:stop:step with step > 0 and stop >= start, or a comma list"
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


def run_study(
    configs: Sequence[LinkConfig],
    snrs_db: Sequence[float],
    num_samples: int,
    feature_dim: int = 64,
    progress: Callable[[Iterable], Iterable] | None = None,
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

    Output
    ------
    : list of dict with the keys of :data:`COLUMNS`
    """
    points = [(config, snr) for config in configs for snr in snrs_db]
    links: dict[LinkConfig, Link] = {}
    rows = []
    for config, snr in progress(points) if progress else points:
        if config not in links:
            links.clear()  # one compiled link alive at a time
            links[config] = Link(config, feature_dim)
        result = measure(links[config], snr, num_samples)
        nmse = result["feature_nmse"]
        rows.append(
            {
                "channel": config.channel,
                "csi": config.csi,
                "equalizer": config.equalizer,
                "snr_db": snr,
                "feature_nmse": nmse,
                "feature_nmse_db": 10 * math.log10(nmse) if nmse > 0 else -math.inf,
                "post_eq_snr_db": result["post_eq_snr_db"],
                "ber_qpsk": result["ber_qpsk"],
            }
        )
    return rows


def write_csv(rows: Sequence[dict[str, object]], path: str | Path) -> Path:
    """Write the study rows with the header :data:`COLUMNS`."""
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def format_table(rows: Sequence[dict[str, object]]) -> str:
    """The rows as an aligned text table."""
    header = f"{'channel':<9} {'csi':<8} {'equalizer':<9} {'SNR dB':>7} {'NMSE':>10} "
    header += f"{'NMSE dB':>8} {'postEq dB':>9} {'BER QPSK':>10}"
    lines = [header]
    for r in rows:
        lines.append(
            f"{r['channel']:<9} {r['csi']:<8} {r['equalizer']:<9} {r['snr_db']:>7.1f} "
            f"{r['feature_nmse']:>10.4g} {r['feature_nmse_db']:>8.2f} "
            f"{r['post_eq_snr_db']:>9.2f} {r['ber_qpsk']:>10.3e}"
        )
    return "\n".join(lines)


def plot_study(
    rows: Sequence[dict[str, object]], path: str | Path, base: LinkConfig, feature_dim: int
) -> Path:
    """Feature NMSE [dB] and QPSK BER (log) against SNR, one curve per combination.

    Writes a PNG with matplotlib's Agg backend.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[tuple[str, str, str], list[dict[str, object]]] = {}
    for r in rows:
        curves.setdefault((r["channel"], r["csi"], r["equalizer"]), []).append(r)
    fig, (ax_nmse, ax_ber) = plt.subplots(1, 2, figsize=(12, 4.8))
    for (channel, csi, equalizer), points in curves.items():
        points = sorted(points, key=lambda r: r["snr_db"])
        snr = [r["snr_db"] for r in points]
        label = f"{channel}, {csi} CSI, {equalizer}"
        ax_nmse.plot(snr, [r["feature_nmse_db"] for r in points], marker="o", label=label)
        ber = [r["ber_qpsk"] if r["ber_qpsk"] > 0 else math.nan for r in points]
        ax_ber.semilogy(snr, ber, marker="o", label=label)
    ax_nmse.set_xlabel("SNR Es/N0 per data RE [dB]")
    ax_nmse.set_ylabel("feature NMSE [dB]")
    ax_nmse.set_title(f"Feature NMSE (d = {feature_dim})")
    ax_ber.set_xlabel("SNR Es/N0 per data RE [dB]")
    ax_ber.set_ylabel("QPSK bit error rate")
    ax_ber.set_title("Uncoded QPSK BER")
    for ax in (ax_nmse, ax_ber):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    pilots = (
        f"pilots on symbols {list(base.pilot_ofdm_symbol_indices)}, {base.interpolation} interp."
        if base.pilot_pattern == "kronecker"
        else "no pilots"
    )
    fig.suptitle(
        f"OFDM link: {base.num_subcarriers} subcarriers x {base.num_ofdm_symbols} symbols, "
        f"{base.subcarrier_spacing_khz:g} kHz, CP {base.cyclic_prefix_length}, {pilots}, "
        f"{base.domain} domain, DS {base.delay_spread_ns:g} ns, "
        f"{base.carrier_frequency_ghz:g} GHz, {base.max_speed_kmh:g} km/h",
        fontsize=9,
    )
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
