"""The figure of a measured MCS table: block error rate vs SNR per candidate, the 10 % line.

What this module may touch: an :class:`~phy.mcs.McsTable` and matplotlib (Agg).
"""

from __future__ import annotations

from pathlib import Path

from phy.config import LinkConfig
from phy.mcs import TARGET_BLER, Mcs, McsTable

# What a block error rate of 0 is drawn at on the log axis (no block lost of those sent).
FLOOR = 1e-3


def plot_table(table: McsTable, path: str | Path, config: LinkConfig) -> Path:
    """Draw every candidate's block error rate [log] against SNR [dB], with 95 %
    intervals where measured, points without a lost block at :data:`FLOOR`, and
    the 10 % target dashed; writes a PNG.

    Input
    -----
    table : McsTable
    path : str or Path
    config : LinkConfig
        For the title (channel, CSI, equalizer, grid).

    Output
    ------
    : Path of the PNG
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    for mcs in table.candidates:
        rows = sorted(
            (r for r in table.rows if _mcs_of(r) == mcs), key=lambda r: float(r["snr_db"])
        )
        snr = [float(r["snr_db"]) for r in rows]
        bler = [max(float(r["bler"]), FLOOR) for r in rows]
        low = [_number(r.get("bler_low"), b) for r, b in zip(rows, bler, strict=True)]
        high = [_number(r.get("bler_high"), b) for r, b in zip(rows, bler, strict=True)]
        yerr = [
            [max(b - max(lo, FLOOR), 0.0) for b, lo in zip(bler, low, strict=True)],
            [max(hi - b, 0.0) for b, hi in zip(bler, high, strict=True)],
        ]
        ax.errorbar(snr, bler, yerr=yerr, marker="o", ms=3, capsize=2, label=mcs.label)
    ax.axhline(TARGET_BLER, color="k", ls="--", lw=1, label=f"target {TARGET_BLER:.0%}")
    ax.set_yscale("log")
    ax.set_ylim(FLOOR / 1.5, 1.2)
    ax.set_xlabel("SNR (Es/N0 per data RE) [dB]")
    ax.set_ylabel("block error rate")
    ax.set_title(
        f"MCS table: {config.channel}, {config.csi} CSI, {config.num_subcarriers} subcarriers, "
        f"{config.ldpc_iterations or 20} BP iterations\n"
        f"(0 lost drawn at {FLOOR:g}; bars: 95 % intervals over slots)",
        fontsize=9,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _mcs_of(row: dict[str, object]) -> Mcs:
    return Mcs(str(row["modulation"]), float(row["code_rate"]))


def _number(value: object, default: float) -> float:
    return default if value in (None, "") else float(value)
