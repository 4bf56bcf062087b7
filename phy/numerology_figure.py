"""Figure of a numerology study: feature NMSE and BER against UE speed.

What this module may touch: a ``link.csv`` written by ``semfed link`` that
varied ``link.carrier_frequency_ghz``, ``link.subcarrier_spacing_khz`` and
``link.speed_kmh`` (the columns of the varied keys); matplotlib. It runs no link.

``semfed link``'s own figure draws one curve per combination against SNR, which
for 2 carriers x 4 spacings x 3 speeds x 2 channels x 2 CSI is 96 curves. Here,
at one SNR, each panel is one (channel, carrier) pair with the speed on the x
axis, one colour per subcarrier spacing, solid for perfect CSI and dashed for LS;
the bars are the CSV's 95 % intervals. Top row: feature NMSE [dB]; bottom row:
uncoded QPSK BER. Usage::

    python -m phy.numerology_figure experiments/results/numerology/link/link.csv \\
        --snr 30 --out experiments/results/numerology/link/numerology_30dB.png
"""

from __future__ import annotations

import argparse
import csv
import math
from collections import defaultdict
from pathlib import Path

# The carrier may be fixed (no column): one column of panels per channel then.
REQUIRED = ("subcarrier_spacing_khz", "speed_kmh")


def read_rows(path: str | Path) -> list[dict[str, str]]:
    """The CSV's rows; raises ValueError when a varied column is missing."""
    with Path(path).open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: no rows")
    missing = [k for k in REQUIRED if k not in rows[0]]
    if missing:
        raise ValueError(
            f"{path}: no column {', '.join(missing)} (vary them with semfed link --set "
            "link.subcarrier_spacing_khz=...,... --set link.speed_kmh=...,...)"
        )
    return rows


def _carrier(row: dict[str, str]) -> float:
    """The row's carrier [GHz], -1 when the study did not vary it."""
    return float(row.get("carrier_frequency_ghz") or -1)


def numerology_figure(rows: list[dict[str, str]], snr_db: float, title: str = ""):
    """Panels of NMSE (top) and BER (bottom) vs speed, one column per (channel, carrier).

    Input
    -----
    rows : list of dict (``semfed link``'s CSV rows, strings)
    snr_db : float
        The rows at this SNR are drawn.
    title : str

    Output
    ------
    : matplotlib Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if math.isclose(float(r["snr_db"]), snr_db)]
    if not rows:
        raise ValueError(f"no rows at SNR {snr_db:g} dB")
    columns = sorted({(r["channel"], _carrier(r)) for r in rows})
    spacings = sorted({float(r["subcarrier_spacing_khz"]) for r in rows})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(
        2, len(columns), figsize=(max(3.6 * len(columns), 8.0), 6.8), squeeze=False, sharex=True
    )
    for j, (channel, carrier) in enumerate(columns):
        series: dict[tuple[float, str], list[dict[str, str]]] = defaultdict(list)
        for r in rows:
            if r["channel"] == channel and _carrier(r) == carrier:
                series[float(r["subcarrier_spacing_khz"]), r["csi"]].append(r)
        for (scs, csi), points in sorted(series.items()):
            points.sort(key=lambda r: float(r["speed_kmh"]))
            x = [float(r["speed_kmh"]) for r in points]
            style = {
                "color": colours[spacings.index(scs) % len(colours)],
                "linestyle": "-" if csi == "perfect" else "--",
                "marker": "o" if csi == "perfect" else "s",
                "markersize": 4,
                "capsize": 2,
                "label": f"{scs:g} kHz, {csi} CSI",
            }
            nmse = [float(r["feature_nmse"]) for r in points]
            low = [float(r["feature_nmse_low"]) for r in points]
            high = [float(r["feature_nmse_high"]) for r in points]
            db = [10 * math.log10(v) for v in nmse]
            err = [
                [d - 10 * math.log10(max(lo, 1e-12)) for d, lo in zip(db, low, strict=True)],
                [10 * math.log10(h) - d for d, h in zip(db, high, strict=True)],
            ]
            axes[0][j].errorbar(x, db, yerr=err, **style)
            ber = [float(r["ber_qpsk"]) for r in points]
            ber_err = [
                [b - float(r["ber_qpsk_low"]) for b, r in zip(ber, points, strict=True)],
                [float(r["ber_qpsk_high"]) - b for b, r in zip(ber, points, strict=True)],
            ]
            axes[1][j].errorbar(x, ber, yerr=ber_err, **style)
        at = f", {carrier:g} GHz" if carrier >= 0 else ""
        axes[0][j].set_title(channel.upper() + at, fontsize=9)
        axes[1][j].set_yscale("log")
        axes[1][j].set_xlabel("UE speed (km/h)")
        for ax in (axes[0][j], axes[1][j]):
            ax.grid(alpha=0.3, which="both")
            ax.set_xticks(sorted({float(r["speed_kmh"]) for r in rows}))
    axes[0][0].set_ylabel("feature NMSE [dB]")
    axes[1][0].set_ylabel("uncoded QPSK bit error rate")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8)
    head = f"Feature NMSE and BER vs UE speed at {snr_db:g} dB (bars: 95 % intervals)"
    fig.suptitle(head + (f"\n{title}" if title else ""), fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m phy.numerology_figure", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("csv", help="link.csv of a numerology study (semfed link)")
    parser.add_argument("--snr", type=float, required=True, help="SNR of the rows to draw [dB]")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--title", default="", help="a second title line")
    args = parser.parse_args(argv)
    fig = numerology_figure(read_rows(args.csv), args.snr, args.title)
    fig.savefig(args.out, dpi=120)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
