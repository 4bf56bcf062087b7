"""The figure of a cell drop: where the users are, and how their SNRs spread.

What this module may touch: matplotlib (Agg) and numpy; it imports neither
TensorFlow nor Sionna (the drop comes in as arrays, from
:func:`phy.topology.cell_drop`).

Left panel: the sector seen from above (BS at the origin, Sionna's 120-degree
sector of a hexagonal cell reaching ``max_distance_m`` on the ground, the
closest distance as an arc), one marker per user coloured by its uplink SNR:
circles outdoor, squares indoor, a thick black edge for line of sight (Sionna
puts every indoor user in NLoS).
Right panel: the empirical CDF of the users' uplink and downlink SNR, each
median dotted.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np


def sector_outline(max_distance_m: float) -> np.ndarray:
    """Corners of the sector Sionna drops users in [m], [5, 2], closed.

    ``drop_uts_in_sector`` spans 0 to 120 degrees, and at every angle reaches the
    cell's hexagon edges, isd / 2 from the BS along 30 and 90 degrees: the rhombus
    with corners at the origin and ``max_distance_m`` (= isd / sqrt(3)) along 0, 60
    and 120 degrees.
    """
    angles = np.radians([0.0, 60.0, 120.0])
    corners = max_distance_m * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    return np.concatenate([[[0.0, 0.0]], corners, [[0.0, 0.0]]])


def drop_figure(
    positions_m: np.ndarray,
    uplink_snr_db: np.ndarray,
    downlink_snr_db: np.ndarray,
    los: np.ndarray,
    indoor: np.ndarray,
    *,
    max_distance_m: float,
    min_distance_m: float,
    bs_height_m: float,
    path: str | Path,
    title: str = "",
) -> Path:
    """Draw the map and the SNR CDF of one drop; write ``path`` (PNG) and its PDF twin.

    Input
    -----
    positions_m : [K, 2] or [K, 3] float
        User positions (x, y[, z]); the BS at the origin.
    uplink_snr_db, downlink_snr_db : [K] float
    los, indoor : [K] bool
    max_distance_m, min_distance_m : float
        The sector's reach on the ground and the closest distance (3D) to the BS.
    bs_height_m : float
    path : str or Path
    title : str
        Above both panels, wrapped to the figure's width.

    Output
    ------
    : Path, the PNG written
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xy = np.asarray(positions_m, float)[:, :2]
    up, down = np.asarray(uplink_snr_db, float), np.asarray(downlink_snr_db, float)
    los, indoor = np.asarray(los, bool), np.asarray(indoor, bool)
    fig, (ax_map, ax_cdf) = plt.subplots(
        1, 2, figsize=(11.5, 5.2), gridspec_kw={"width_ratios": [1.15, 1.0]}
    )

    outline = sector_outline(max_distance_m)
    ax_map.plot(outline[:, 0], outline[:, 1], color="0.4", lw=1.0)
    ground_min = math.sqrt(max(min_distance_m**2 - (bs_height_m - 1.5) ** 2, 0.0))
    if ground_min > 0:
        arc = np.radians(np.linspace(0.0, 120.0, 61))
        ax_map.plot(ground_min * np.cos(arc), ground_min * np.sin(arc), color="0.6", lw=0.8, ls=":")
    norm = matplotlib.colors.Normalize(vmin=float(up.min()), vmax=float(up.max()) + 1e-9)
    for mask, marker in ((~indoor, "o"), (indoor, "s")):
        if not mask.any():
            continue
        ax_map.scatter(
            xy[mask, 0],
            xy[mask, 1],
            c=up[mask],
            cmap="viridis",
            norm=norm,
            marker=marker,
            s=46,
            edgecolors=np.where(los[mask], "black", "none").tolist(),
            linewidths=1.6,
            zorder=3,
        )
    ax_map.scatter([0.0], [0.0], marker="^", s=120, color="crimson", zorder=4)
    ax_map.set_aspect("equal")
    ax_map.set_xlabel("x [m]")
    ax_map.set_ylabel("y [m]")
    ax_map.set_title(f"drop: {len(up)} users, {int(los.sum())} LoS, {int(indoor.sum())} indoor")
    # Legend entries in grey (the colour is the SNR) and one for the LoS edge.
    from matplotlib.lines import Line2D

    def key(marker: str, label: str, edge: str = "none", face: str = "0.7") -> Line2D:
        return Line2D([], [], ls="", marker=marker, ms=7, mfc=face, mec=edge, mew=1.6, label=label)

    handles = [
        Line2D([], [], color="0.4", lw=1.0, label="sector"),
        key("^", "BS", face="crimson"),
        key("o", "outdoor"),
        key("s", "indoor"),
        key("o", "line of sight", edge="black", face="white"),
    ]
    # Below the map, so that it never hides a user.
    ax_map.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=5, fontsize=8
    )
    colorbar = fig.colorbar(
        matplotlib.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax_map, shrink=0.85
    )
    colorbar.set_label("uplink SNR [dB]")

    for values, name, color in ((up, "uplink", "tab:blue"), (down, "downlink", "tab:orange")):
        xs = np.sort(values)
        ys = np.arange(1, len(xs) + 1) / len(xs)
        median = float(np.median(values))
        ax_cdf.step(xs, ys, where="post", color=color, label=f"{name} (median {median:.1f} dB)")
        ax_cdf.axvline(median, color=color, ls=":", lw=1.0)
    ax_cdf.set_xlabel("SNR Es/N0 per data RE [dB]")
    ax_cdf.set_ylabel("fraction of users")
    ax_cdf.set_ylim(0.0, 1.02)
    ax_cdf.grid(alpha=0.3)
    ax_cdf.set_title("CDF of the users' SNR")
    ax_cdf.legend(loc="lower right", fontsize=8)

    if title:
        fig.suptitle("\n".join(textwrap.wrap(title, 120)), fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)
    return path


__all__ = ["drop_figure", "sector_outline"]
