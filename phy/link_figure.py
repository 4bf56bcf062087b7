"""The link study's figure: measured points with their intervals, and theory where it exists.

What this module may touch: matplotlib (Agg) and :mod:`phy.theory`; it imports
neither TensorFlow nor Sionna, so ``semfed plot --kind link`` can redraw a
``link.csv`` without them.

Left panel: feature NMSE [dB]; right panel: uncoded QPSK BER (log). One colour
per curve (channel, CSI, equalizer, scheme and MCS, and the source study when
several are drawn together). With digital rows (``scheme`` = "digital") a
middle panel shows their block error rate, and the right panel their coded
bit error rate beside the uncoded QPSK BER of the analog rows' channel.
Measured points carry their 95 % intervals as error bars
(``*_low`` / ``*_high`` columns, when present). Where :mod:`phy.theory` has a
closed form, it is drawn as a dashed line of the same colour and the points
stand alone; elsewhere the points are joined and the legend says "simulated".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from phy import theory

SNR_LABEL = "SNR Es/N0 per data RE [dB]"
# BER axis floor: the AWGN theory falls to 1e-70 at 25 dB, far below any measurement.
BER_FLOOR = 1e-7
# Up to this many curves each panel has its own legend; more share one under the panels.
FEW_CURVES = 6
MARKERS = ("o", "s", "^", "D", "v")


def _number(value: Any) -> float:
    """A CSV cell or a row value as a float; empty, None and unparsable cells are NaN."""
    if value is None or value == "":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _has_theory(points: Sequence[Mapping[str, Any]], key: str) -> bool | None:
    """Whether the rows carry theory in ``key``; None when they have no such column."""
    if all(key not in p for p in points):
        return None
    return any(not math.isnan(_number(p.get(key))) for p in points)


def _theory_curves(
    channel: str, csi: str, equalizer: str, points: Sequence[Mapping[str, Any]]
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    """Dense theory curves (NMSE linear, BER) over the points' SNR range, or None each.

    The rows' theory columns decide whether a closed form applied (they know the
    channel normalisation); rows written before those columns existed fall back
    to the names.
    """
    snrs = [_number(p["snr_db"]) for p in points]
    grid = np.linspace(min(snrs), max(snrs), 121)
    nmse = theory.feature_nmse(channel, csi, equalizer, grid)
    ber = theory.qpsk_ber(channel, csi, grid)
    if _has_theory(points, "theory_nmse") is False:
        nmse = None
    if _has_theory(points, "theory_ber_qpsk") is False:
        ber = None
    return nmse, ber, grid


def _db(x: Iterable[float]) -> np.ndarray:
    x = np.asarray(list(x), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, 10.0 * np.log10(x), np.nan)


def link_figure(rows: Iterable[Mapping[str, Any]], title: str = "", varied: Sequence[str] = ()):
    """Draw the study's rows; returns the matplotlib Figure (the caller saves and closes it).

    Input
    -----
    rows : iterable of mappings
        As in ``link.csv`` (strings) or :func:`phy.study.run_study` (numbers):
        ``channel``, ``csi``, ``equalizer``, ``snr_db``, ``feature_nmse``,
        ``ber_qpsk``; optional ``feature_nmse_low``/``_high``,
        ``ber_qpsk_low``/``_high``, ``theory_nmse``, ``theory_ber_qpsk`` and
        ``source`` (a prefix of the curve's name).
    title : str
        The figure's suptitle.
    varied : sequence of str
        Further columns that tell curves apart (keys a list ``--set`` varied);
        each curve's name ends with ``key=value`` for them.

    Output
    ------
    : matplotlib.figure.Figure with two Axes: NMSE [dB], then BER
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(rows)
    with_digital = any(r.get("scheme") == "digital" for r in rows)
    curves: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for r in rows:
        extra = ", ".join(f"{k}={r.get(k)}" for k in varied)
        key = (
            str(r.get("source") or ""),
            r["channel"],
            r["csi"],
            r["equalizer"],
            extra,
            _scheme_name(r) if with_digital else "",
        )
        curves.setdefault(key, []).append(r)
    if with_digital:
        fig, (ax_nmse, ax_bler, ax_ber) = plt.subplots(1, 3, figsize=(17, 4.8))
    else:
        fig, (ax_nmse, ax_ber) = plt.subplots(1, 2, figsize=(12, 4.8))
    lowest_ber = math.inf
    open_below: list[tuple[float, float, str]] = []  # NMSE intervals reaching 0
    # In the rows' order (the study's loops), so a varied number keeps its order.
    for index, (key, points) in enumerate(curves.items()):
        source, channel, csi, equalizer, extra, scheme = key
        points = sorted(points, key=lambda p: _number(p["snr_db"]))
        color = f"C{index % 10}"
        # Past ten curves the marker tells them apart.
        marker = MARKERS[(index // 10) % len(MARKERS)]
        name = f"{channel}, {csi} CSI, {equalizer}" + (f", {extra}" if extra else "")
        name = ": ".join([*([source] if source else []), name])
        name += f", {scheme}" if scheme else ""
        snr = np.array([_number(p["snr_db"]) for p in points])
        nmse_theory, ber_theory, grid = _theory_curves(channel, csi, equalizer, points)
        digital = points[0].get("scheme") == "digital"

        nmse = np.array([_number(p["feature_nmse"]) for p in points])
        nmse_db = _db(nmse)
        low = np.array([_number(p.get("feature_nmse_low")) for p in points])
        high = np.array([_number(p.get("feature_nmse_high")) for p in points])
        # NaN (no interval, or a low end of 0, which has no dB value) draws no bar.
        below = np.nan_to_num(nmse_db - _db(low), nan=0.0)
        above = np.nan_to_num(_db(high) - nmse_db, nan=0.0)
        open_below += [(x, y, color) for x, y, lo in zip(snr, nmse_db, low, strict=True) if lo == 0]
        _draw(ax_nmse, snr, nmse_db, below, above, color, name, nmse_theory is not None, marker)
        if nmse_theory is not None:
            ax_nmse.plot(grid, _db(nmse_theory), "--", color=color, label=f"{name}: theory")

        if digital:
            _draw_rate(ax_bler, snr, points, "bler", color, name, marker)
            # The coded BER; the uncoded QPSK BER of the channel is the analog rows'.
            lowest_ber = min(
                lowest_ber, _draw_rate(ax_ber, snr, points, "ber_coded", color, name, marker)
            )
            continue
        ber = np.array([_number(p["ber_qpsk"]) for p in points])
        ber = np.where(ber > 0, ber, np.nan)  # no errors seen: nothing to draw on a log axis
        low = np.array([_number(p.get("ber_qpsk_low")) for p in points])
        high = np.array([_number(p.get("ber_qpsk_high")) for p in points])
        below = np.nan_to_num(ber - low, nan=0.0)
        above = np.nan_to_num(high - ber, nan=0.0)
        _draw(ax_ber, snr, ber, below, above, color, name, ber_theory is not None, marker)
        if ber_theory is not None:
            ax_ber.semilogy(grid, ber_theory, "--", color=color, label=f"{name}: theory")
        drawn = np.concatenate([ber, np.where(np.isnan(ber), np.nan, low)])
        drawn = drawn[drawn > 0]
        if drawn.size:
            lowest_ber = min(lowest_ber, float(drawn.min()))
    ax_ber.set_yscale("log")
    ax_ber.set_ylim(max(BER_FLOOR, 0.3 * lowest_ber) if math.isfinite(lowest_ber) else None, 0.6)
    # An interval that reaches 0 has no end in dB: its bar runs to the bottom.
    bottom, top = ax_nmse.get_ylim()
    for x, y, color in open_below:
        ax_nmse.vlines(x, bottom, y, color=color, linewidth=1.0)
    ax_nmse.set_ylim(bottom, top)

    ax_nmse.set_ylabel("feature NMSE [dB]")
    ax_nmse.set_title("Feature NMSE")
    ax_ber.set_ylabel("uncoded QPSK bit error rate")
    ax_ber.set_title("Uncoded QPSK BER")
    axes = [ax_nmse, ax_ber]
    if with_digital:
        ax_nmse.set_title("Feature NMSE (digital: after dequantization)")
        ax_ber.set_ylabel("bit error rate")
        ax_ber.set_title("BER: uncoded QPSK (analog), decoded payload (digital)", fontsize=10)
        ax_bler.set_yscale("log")
        ax_bler.set_ylim(top=1.5)
        ax_bler.set_ylabel("block error rate")
        ax_bler.set_title("Block error rate of the digital scheme")
        # The same SNR range as the NMSE panel: past the cliff the rate is 0 and draws
        # nothing on a log axis, which must not shrink the panel to the cliff.
        ax_bler.set_xlim(ax_nmse.get_xlim())
        axes.insert(1, ax_bler)
    for ax in axes:
        ax.set_xlabel(SNR_LABEL)
        ax.grid(True, which="both", alpha=0.3)
    bottom = _legends(fig, axes, len(curves))
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0.0, bottom, 1.0, 1.0))
    return fig


def _legends(fig, axes, n_curves: int) -> float:
    """Each curve once, theory as one entry: in each panel for a few curves, else one
    legend of several columns under the panels (the figure grows to hold it). Returns
    the fraction of the figure's height the panels must leave free at the bottom."""
    from matplotlib.lines import Line2D

    def entries(ax):
        handles, labels = ax.get_legend_handles_labels()
        kept = [(h, lab) for h, lab in zip(handles, labels, strict=True) if "theory" not in lab]
        if any(lab.endswith(": theory") for lab in labels):
            kept.append((Line2D([], [], color="grey", ls="--"), "theory (dashed, same colour)"))
        return [h for h, _ in kept], [lab for _, lab in kept]

    if n_curves <= FEW_CURVES:
        for ax in axes:
            ax.legend(*entries(ax), fontsize=7)
        return 0.0
    handles, labels = entries(axes[0])
    columns = 3 if len(axes) > 2 else 2
    rows = math.ceil(len(labels) / columns)
    width, height = fig.get_size_inches()
    extra = 0.16 * rows + 0.3
    fig.set_size_inches(width, height + extra)
    fig.legend(handles, labels, loc="lower center", ncol=columns, fontsize=7, frameon=False)
    return extra / (height + extra)


def _scheme_name(row: Mapping[str, Any]) -> str:
    """ "analog", or "digital: 4 bit, 16qam, rate 0.5" from a row's scheme columns."""
    if row.get("scheme") != "digital":
        return "analog"
    return (
        f"digital: {row.get('quant_bits')} bit, {row.get('modulation')}, "
        f"rate {_number(row.get('code_rate')):g}"
    )


def _draw_rate(
    ax, snr: np.ndarray, points, key: str, color: str, name: str, marker: str = "o"
) -> float:
    """An error rate ``key`` with its ``_low``/``_high`` interval on a log axis; returns
    the lowest value drawn (inf when none)."""
    rate = np.array([_number(p.get(key)) for p in points])
    rate = np.where(rate > 0, rate, np.nan)  # no errors seen: nothing to draw on a log axis
    low = np.array([_number(p.get(f"{key}_low")) for p in points])
    high = np.array([_number(p.get(f"{key}_high")) for p in points])
    # Clipped at 0: at a rate of exactly 0 or 1 the Wilson end equals it up to rounding.
    below = np.maximum(np.nan_to_num(rate - low, nan=0.0), 0.0)
    above = np.maximum(np.nan_to_num(high - rate, nan=0.0), 0.0)
    _draw(ax, snr, rate, below, above, color, name, False, marker)
    drawn = rate[rate > 0]
    return float(drawn.min()) if drawn.size else math.inf


def _draw(
    ax, x, y, below, above, color: str, name: str, with_theory: bool, marker: str = "o"
) -> None:
    """Measured points with their interval bars; joined only when no theory is drawn."""
    label = name if with_theory else f"{name}: simulated"
    ax.errorbar(
        x,
        y,
        yerr=np.vstack([below, above]),
        fmt=marker if with_theory else f"{marker}-",
        color=color,
        markersize=4,
        capsize=3,
        label=label,
    )
