"""Figures from run and sweep directories (matplotlib, Agg backend; PNG and PDF).

* ``curves``: test accuracy vs round, one curve per distinct setting; runs that
  differ only in their seeds are grouped (mean line, 95 % Student-t band).
* ``snr``: final accuracy vs SNR, one curve per setting (usually the algorithm):
  from ``test_acc_by_snr`` (evaluation at several SNRs) when the runs have it,
  else from runs that differ in ``link.uplink_snr_db`` (a sweep); mean and 95 %
  interval over seeds as error bars.
* ``vs``: final (or oracle best) accuracy vs any config key ``x``
  (``partition.ways`` for accuracy vs m), one curve per other setting, mean and
  95 % interval over seeds as error bars.
* ``cost``: final accuracy vs the communication cost of the whole run, one point
  per setting: ``cost="load"`` (default) the real values sent (two per channel
  symbol, one per 32 parameter bits), ``cost="airtime"`` the seconds on the air
  (``total_airtime_ms``: OFDMA slots of the busiest client, uplink and downlink,
  :mod:`phy.airtime`; the baselines' payloads at ``link.baseline_bits_per_symbol``).
* ``link``: feature NMSE and QPSK BER vs SNR from ``semfed link --out DIR``
  (``DIR/link.csv``), one curve per channel, CSI and equalizer.
* ``tsne``: t-SNE of the received test features (``features.npz`` from
  ``--dump-features``) coloured by class, one figure per run.

Every kind takes ``note`` (appended to the title: the scale of a CPU-size
run), ``where`` (keep runs whose config has these values), ``by`` (one
figure per value of a config key) and ``protocol`` (the evaluation protocol:
global, personal or masked; default each run's ``evaluation.protocol``).
Titles say the protocol and n, the number of seeds.
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from semfed.errors import UserError
from semfed.sweep import SEED_KEYS  # runs differing only in these are seeds of one setting

KINDS = ("curves", "snr", "vs", "cost", "link", "tsne")
COSTS = ("load", "airtime")
TSNE_MAX_POINTS = 2000
# Keys that never define a distinct setting.
# output: where a run went; drop: a cell drop a run resolved from its seed (semfed.cell).
IGNORED_PREFIXES = ("output.", "drop.")
SNR_KEYS = ("link.uplink_snr_db", "link.downlink_snr_db", "evaluation.snr_db")


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = tuple(v) if isinstance(v, list) else v
    return out


def _is_run(path: Path) -> bool:
    return any((path / f).is_file() for f in ("metrics.jsonl", "summary.json", "features.npz"))


@functools.cache
def _defaults(topology: bool) -> dict[str, Any]:
    """Every key a run config writes, at its default, flattened (``link.channel``);
    read-only (callers merge it into a new dict). ``topology``: for a cell-drop run,
    whose config leaves out the keys the drop decides (the SNRs), so they are never
    filled in; its topology keys themselves come from the run's own config."""
    from semfed.config import load_config

    overrides = ["link.topology=umi"] if topology else []
    return _flatten(load_config(None, overrides).to_dict())


def load_runs(paths: list[str | Path]) -> list[dict[str, Any]]:
    """Every run in ``paths``: a run directory, a sweep directory of run directories, or
    an experiment's result folder (``experiments/results/<name>/<scale>``, whose sweep is
    its ``runs/``)."""
    runs = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise UserError(f"{p} is not a directory")
        found = [p] if _is_run(p) else sorted(d for d in p.iterdir() if d.is_dir() and _is_run(d))
        if not found and (p / "runs").is_dir():
            found = sorted(d for d in (p / "runs").iterdir() if d.is_dir() and _is_run(d))
        if not found:
            raise UserError(
                f"{p} holds no run (no metrics.jsonl, summary.json or features.npz in it, "
                "its subdirectories or its runs/ folder)"
            )
        for d in found:
            config: dict[str, Any] = {}
            if (d / "config.toml").is_file():
                # A key an older run's config.toml lacks (written before the key
                # existed) had today's default value: fill it in, so that such a run
                # groups and pairs with a newer one of the same setting everywhere
                # (plots, compare, verdicts).
                raw = _flatten(tomllib.loads((d / "config.toml").read_text()))
                topology = raw.get("link.topology") not in (None, "none")
                config = {**_defaults(topology), **raw}
            metrics = []
            if (d / "metrics.jsonl").is_file():
                text = (d / "metrics.jsonl").read_text()
                metrics = [json.loads(line) for line in text.splitlines() if line.strip()]
            summary = {}
            if (d / "summary.json").is_file():
                summary = json.loads((d / "summary.json").read_text())
            runs.append({"path": d, "config": config, "metrics": metrics, "summary": summary})
    return runs


# Keys a set key decides: they say nothing of their own (link.speed_kmh sets both ends
# of the speed range), so a run that sets it is grouped and labelled by it alone.
DERIVED_KEYS = {"link.speed_kmh": ("link.min_speed_kmh", "link.max_speed_kmh")}


def _setting(run: dict[str, Any], drop: tuple[str, ...] = ()) -> tuple:
    config = run["config"]
    derived = {d for k, ds in DERIVED_KEYS.items() if config.get(k) is not None for d in ds}
    return tuple(
        sorted(
            (k, v)
            for k, v in config.items()
            if k not in SEED_KEYS
            and k not in drop
            and k not in derived
            and not k.startswith(IGNORED_PREFIXES)
        )
    )


def _short(key: str) -> str:
    return {"algorithm.name": "algorithm"}.get(key, key.split(".")[-1])


def _fmt(v: Any) -> str:
    if isinstance(v, bool):  # as written in configs and on the command line
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, tuple):
        return "[" + ",".join(_fmt(x) for x in v) + "]"
    return str(v)


def group_runs(
    runs: list[dict[str, Any]], drop: tuple[str, ...] = ()
) -> tuple[list[tuple[str, list[dict[str, Any]]]], dict[str, Any]]:
    """Runs grouped by setting (all config keys but the seed and ``drop``), with a
    label naming the keys that differ between groups, and the keys common to all."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        groups[_setting(r, drop)].append(r)
    settings = [dict(s) for s in groups]
    all_keys = sorted(set().union(*settings)) if settings else []
    varying = [k for k in all_keys if len({_fmt(s.get(k)) for s in settings}) > 1]
    varying.sort(key=lambda k: (k != "algorithm.name", k))
    common = {k: settings[0].get(k) for k in all_keys if k not in varying}
    labelled = []
    for setting, members in groups.items():
        s = dict(setting)
        if varying:
            label = ", ".join(f"{_short(k)}={_fmt(s.get(k))}" for k in varying)
        else:
            label = str(s.get("algorithm.name", members[0]["path"].name))
        labelled.append((label, members))
    labelled.sort(key=lambda item: item[0])
    return labelled, common


def _seeds(run: dict[str, Any]) -> tuple:
    return tuple(run["config"].get(k) for k in SEED_KEYS)


def title_for(
    common: dict[str, Any],
    runs: list[dict[str, Any]],
    head: str,
    note: str = "",
    protocol: str | None = None,
) -> str:
    parts = []
    for key, name in (
        ("data.name", "data"),
        ("algorithm.name", "algorithm"),
        ("partition.num_clients", "K"),
        ("partition.ways", "m"),
        ("link.channel", "channel"),
        ("link.uplink_snr_db", "uplink SNR (dB)"),
        ("training.rounds", "rounds"),
    ):
        if key in common:
            parts.append(f"{name}={_fmt(common[key])}")
    if protocol is not None:
        parts.append(f"protocol {protocol}")
    # n per drawn setting: a part-way sweep may have fewer seeds at some points.
    per_setting: dict[tuple, set[tuple]] = {}
    for r in runs:
        per_setting.setdefault(_setting(r), set()).add(_seeds(r))
    ns = sorted({len(s) for s in per_setting.values()}) or [0]
    n = str(ns[0]) if len(ns) == 1 else f"{ns[0]} to {ns[-1]}"
    parts.append(f"n = {n} seed{'s' if n != '1' else ''}")
    return head + _part_lines(parts) + _note_lines(note)


def _part_lines(parts: list[str], width: int = 78) -> str:
    """``parts`` joined by commas, as extra title lines no wider than ``width`` that
    never break inside a part."""
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + 2 + len(part) <= width:
            lines[-1] += ", " + part
        else:
            lines.append(part)
    return "".join("\n" + line for line in lines)


def _note_lines(note: str, width: int = 78) -> str:
    """``note``, wrapped to the figure's width, as extra title lines."""
    import textwrap

    return "".join("\n" + line for line in textwrap.wrap(note, width))


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    return plt, fig, ax


def _legend(ax) -> None:
    """The legend inside the axes when it is short; below them, in two columns, when
    it has more than four entries (inside, it would hide curves and intervals)."""
    if len(ax.get_legend_handles_labels()[1]) <= 4:
        ax.legend(fontsize=8)
    else:
        # Anchored a fixed 30 points under the axes, clear of the tick labels and the
        # x label whatever the axes' height (an axes fraction moved with the title).
        from matplotlib.transforms import offset_copy

        below = offset_copy(ax.transAxes, fig=ax.figure, y=-30, units="points")
        ax.legend(
            fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=below, ncol=2
        )


def _save(plt, fig, out: Path, stem: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    paths = []
    for ext in ("png", "pdf"):
        path = out / f"{stem}.{ext}"
        # "tight": a legend below the axes (_legend) is kept whole.
        fig.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _intervals(samples: list[list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point: mean and 95 % Student-t interval over its samples (NaN for one)."""
    from semfed.statistics import mean_interval

    ivs = [mean_interval(v) for v in samples]
    return tuple(np.array([getattr(i, f) for i in ivs]) for f in ("mean", "low", "high"))


def _mean_band(ax, x, ys: np.ndarray, label: str) -> None:
    mean, low, high = _intervals([list(col) for col in ys.T])
    (line,) = ax.plot(x, mean, marker="o", markersize=3, label=label)
    if ys.shape[0] > 1:
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)


def _error_bars(ax, xs: list[float], samples: list[list[float]], label: str) -> None:
    mean, low, high = _intervals(samples)
    yerr = np.nan_to_num(np.array([mean - low, high - mean]))
    ax.errorbar(xs, mean, yerr=yerr, marker="o", markersize=4, capsize=3, label=label)


def _protocol(runs: list[dict[str, Any]], protocol: str | None) -> str:
    """The protocol to show: ``protocol`` or the runs' own ``evaluation.protocol``."""
    if protocol is not None:
        return protocol
    found = {r["config"].get("evaluation.protocol", "global") for r in runs}
    if len(found) > 1:
        raise UserError(
            f"the runs use different evaluation.protocol ({', '.join(sorted(found))}): "
            "choose one with --protocol"
        )
    return found.pop() if found else "global"


def _acc_key(metrics: dict[str, Any], protocol: str) -> str:
    key = f"test_acc_{protocol}"
    return key if key in metrics else "test_acc"


def plot_curves(
    runs: list[dict[str, Any]], out: Path, note: str = "", protocol: str | None = None
) -> list[Path]:
    runs = [r for r in runs if any("test_acc" in m for m in r["metrics"])]
    if not runs:
        raise UserError("no run has test accuracies (metrics.jsonl with test_acc)")
    protocol = _protocol(runs, protocol)
    groups, common = group_runs(runs)
    plt, fig, ax = _figure()
    for label, members in groups:
        series = [
            {m["round"]: m[_acc_key(m, protocol)] for m in r["metrics"] if "test_acc" in m}
            for r in members
        ]
        rounds = sorted(set.intersection(*(set(s) for s in series)))
        if not rounds:
            continue
        ys = np.array([[s[t] * 100 for t in rounds] for s in series])
        n = f" (n={len(members)})" if len(members) > 1 else ""
        _mean_band(ax, np.array(rounds) + 1, ys, label + n)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("communication round")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    _legend(ax)
    head = "Test accuracy vs round (mean, 95 % interval over seeds)"
    ax.set_title(title_for(common, runs, head, note, protocol), fontsize=9)
    return _save(plt, fig, out, "curves")


def _snr_points(run: dict[str, Any], protocol: str) -> tuple[list[tuple[float, float]], str]:
    """(SNR, final accuracy) points of a run and where they come from."""
    summary = run["summary"]
    by_snr = summary.get(f"final_test_acc_{protocol}_by_snr")
    if by_snr is None:
        by_snr = summary.get("final_test_acc_by_snr")
    points = []
    if by_snr:
        for label, acc in by_snr.items():
            try:
                points.append((float(label), float(acc)))
            except (TypeError, ValueError):
                continue
        if points:
            return points, "evaluation"
    acc = _final_acc(run, "final", protocol)
    snr = run["config"].get("link.uplink_snr_db")
    if acc is not None and isinstance(snr, int | float):
        return [(float(snr), float(acc))], "uplink"
    return [], ""


def plot_snr(
    runs: list[dict[str, Any]],
    out: Path,
    note: str = "",
    protocol: str | None = None,
    paired: str | None = None,
) -> list[Path]:
    """Final accuracy vs SNR, one curve per setting (``snr``); with ``paired`` also
    every other setting's paired difference from that one (``snr_paired``)."""
    protocol = _protocol(runs, protocol)
    pts = {id(r): _snr_points(r, protocol) for r in runs}
    runs = [r for r in runs if pts[id(r)][0]]
    if not runs:
        raise UserError(
            "no SNR results: need test_acc_by_snr in metrics.jsonl (evaluation.snr_db a list) "
            "or finished runs with a scalar link.uplink_snr_db"
        )
    sources = {pts[id(r)][1] for r in runs}
    groups, common = group_runs(runs, drop=SNR_KEYS)
    for key in SNR_KEYS:
        common.pop(key, None)
    plt, fig, ax = _figure()
    for label, members in groups:
        acc_by: dict[float, list[float]] = defaultdict(list)
        for r in members:
            for snr, acc in pts[id(r)][0]:
                acc_by[snr].append(acc * 100)
        snrs = sorted(acc_by)
        _error_bars(ax, snrs, [acc_by[s] for s in snrs], label)
    what = "evaluation SNR" if sources == {"evaluation"} else "SNR"
    if sources == {"uplink"}:
        what = "uplink SNR"
    ax.set_xlabel(f"{what} (dB)")
    ax.set_ylabel("final test accuracy (%)")
    ax.grid(alpha=0.3)
    _legend(ax)
    head = f"Final accuracy vs {what} (mean, 95 % interval over seeds)"
    ax.set_title(title_for(common, runs, head, note, protocol), fontsize=9)
    made = _save(plt, fig, out, "snr")
    if paired is not None:
        made += _plot_snr_paired(runs, pts, groups, common, out, note, protocol, paired, what)
    return made


def _plot_snr_paired(
    runs: list[dict[str, Any]],
    pts: dict[int, tuple[list[tuple[float, float]], str]],
    groups: list[tuple[str, list[dict[str, Any]]]],
    common: dict[str, Any],
    out: Path,
    note: str,
    protocol: str,
    paired: str,
    what: str,
) -> list[Path]:
    """Each setting minus the ``paired`` one, in points, per SNR: the paired difference
    of :func:`semfed.comparison.seed_statistics` (pairs: same seeds, same values of
    every other key; mean and 95 % paired-t interval). ``paired`` names the reference
    by its values of the keys that tell the settings apart, in the legend's order,
    joined by "/" (as ``semfed compare --paired``)."""
    from semfed.comparison import compared_value, seed_statistics

    varying = sorted(
        {k for r in runs for k, _ in _setting(r, SNR_KEYS) if k not in common},
        key=lambda k: (k != "algorithm.name", k),
    )
    if not varying:
        raise UserError("--paired: the runs have one setting only; nothing to pair")
    values = sorted({compared_value(r, varying) for r in runs})
    if paired not in values:
        keys = "/".join(_short(k) for k in varying)
        raise UserError(f"--paired {paired!r}: no such setting of {keys}; have {', '.join(values)}")
    by = ",".join(varying)
    # (SNR, row) per compared value: one table per evaluation SNR, or one table whose
    # rows tell the uplink SNRs apart.
    points: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
    if {pts[id(r)][1] for r in runs} == {"evaluation"}:
        for x in sorted({x for r in runs for x, _ in pts[id(r)][0]}):
            for row in seed_statistics(runs, by, paired=paired, protocol=protocol, snr=x)[1]:
                points[row[by]].append((x, row))
    else:
        uplink = runs[0]["config"].get("link.uplink_snr_db")
        for row in seed_statistics(runs, by, paired=paired, protocol=protocol)[1]:
            points[row[by]].append((float(row.get("link.uplink_snr_db", uplink)), row))
    plt, fig, ax = _figure()
    ax.axhline(0.0, color="0.5", linewidth=0.8)
    ref_label, n_pairs = "", set()
    for i, (label, members) in enumerate(groups):  # colours as in the accuracy plot
        value = compared_value(members[0], varying)
        if value == paired:
            ref_label = label
            continue
        series = sorted(((x, r) for x, r in points[value] if r.get("diff_n")), key=lambda t: t[0])
        if not series:
            continue
        n_pairs |= {row["diff_n"] for _, row in series}
        mean = np.array([100 * row["diff_mean"] for _, row in series])
        low = np.array([100 * row["diff_ci95_low"] for _, row in series])
        high = np.array([100 * row["diff_ci95_high"] for _, row in series])
        yerr = np.nan_to_num(np.array([mean - low, high - mean]))
        style = {"marker": "o", "markersize": 4, "capsize": 3, "color": f"C{i % 10}"}
        ax.errorbar([x for x, _ in series], mean, yerr=yerr, label=label, **style)
    if not n_pairs:
        raise UserError(f"--paired {paired!r}: no run of another setting has a pair in it")
    ax.set_xlabel(f"{what} (dB)")
    ax.set_ylabel(f"minus {ref_label} (points)")
    ax.grid(alpha=0.3)
    _legend(ax)
    n = "/".join(str(v) for v in sorted(n_pairs))
    head = f"Paired difference in final accuracy vs {what} (mean, 95 % interval over {n} pairs)"
    ax.set_title(title_for(common, runs, head, note, protocol), fontsize=9)
    return _save(plt, fig, out, "snr_paired")


def _tsne_embedding(run: dict[str, Any], max_points: int):
    """(2-D t-SNE embedding, labels, SNRs) of a run's ``features.npz``."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    with np.load(run["path"] / "features.npz") as npz:
        if "features" not in npz or "labels" not in npz:
            raise UserError(f"{run['path']}/features.npz lacks features or labels")
        feats = np.asarray(npz["features"], np.float32).reshape(len(npz["labels"]), -1)
        labels = np.asarray(npz["labels"])
        snr = np.asarray(npz["snr_db"]) if "snr_db" in npz else None
    rng = np.random.default_rng(0)
    if len(labels) > max_points:
        keep = np.sort(rng.choice(len(labels), max_points, replace=False))
        feats, labels = feats[keep], labels[keep]
    if len(labels) < 5:
        raise UserError(f"{run['path']}/features.npz has too few points for t-SNE")
    perplexity = min(30.0, (len(labels) - 1) / 3)
    # One thread: OpenMP spinning on a busy machine costs far more than it saves.
    with threadpool_limits(limits=1):
        tsne = TSNE(n_components=2, random_state=0, init="pca", perplexity=perplexity)
        emb = tsne.fit_transform(feats)
    return emb, labels, snr


def _scatter(plt, ax, emb, labels, legend: bool = True) -> None:
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for i, c in enumerate(classes):
        sel = labels == c
        ax.scatter(emb[sel, 0], emb[sel, 1], s=6, color=cmap(i % cmap.N), label=f"class {c}")
    ax.set_xlabel("t-SNE dimension 1 (a.u.)")
    ax.set_ylabel("t-SNE dimension 2 (a.u.)")
    if legend:
        ax.legend(fontsize=7, markerscale=2, ncol=2 if len(classes) > 10 else 1)


def _score_text(runs: list[dict[str, Any]]) -> str:
    """k-NN accuracy and silhouette of the received features: mean [95 % interval] over
    the runs (seeds) that recorded them."""
    from semfed.statistics import mean_interval

    parts = []
    for key, name in (("feature_knn_acc", "5-NN acc"), ("feature_silhouette", "silhouette")):
        values = [float(r["summary"][key]) for r in runs if r["summary"].get(key) is not None]
        if not values:
            continue
        if len(values) == 1:
            parts.append(f"{name} {values[0]:.3f}")
        else:
            iv = mean_interval(values)
            parts.append(f"{name} {iv.mean:.3f} [{iv.low:.3f}, {iv.high:.3f}]")
    return ", ".join(parts) + (f" (n = {len(runs)})" if len(runs) > 1 and parts else "")


def plot_tsne(
    runs: list[dict[str, Any]], out: Path, note: str = "", max_points: int = TSNE_MAX_POINTS
):
    """One t-SNE figure per run of the first seed and, for several settings, one
    figure with a panel per setting (Fig. 4: one per scheme); each panel's title
    gives the k-NN accuracy and silhouette of the received features over all seeds.
    """
    runs = [r for r in runs if (r["path"] / "features.npz").is_file()]
    if not runs:
        raise UserError("no features.npz (run semfed train with --dump-features)")
    # Seeds of one setting: the figures draw the first seed, the titles score them all.
    settings: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        settings.setdefault(_setting(r), []).append(r)
    for members in settings.values():
        members.sort(key=lambda r: tuple(str(r["config"].get(k)) for k in SEED_KEYS))
    drawn = [members[0] for members in settings.values()]
    names = [r["path"].name for r in drawn]
    unique = len(set(names)) == len(names)
    stems = [
        "tsne" if len(drawn) == 1 else f"tsne_{n}" if unique else f"tsne_{i}_{n}"
        for i, n in enumerate(names)
    ]
    paths = []
    embeddings = []
    for idx, (r, members) in enumerate(zip(drawn, settings.values(), strict=True)):
        emb, labels, snr = _tsne_embedding(r, max_points)
        embeddings.append((emb, labels))
        plt, fig, ax = _figure()
        _scatter(plt, ax, emb, labels)
        cfg = r["config"]
        bits = [str(cfg.get("algorithm.name") or r["summary"].get("algorithm") or "")]
        if snr is not None and snr.size:
            bits.append(f"SNR {_fmt(float(np.mean(snr)))} dB")
        if "link.channel" in cfg:
            bits.append(f"channel={cfg['link.channel']}")
        bits.append(f"{len(labels)} points")
        scores = _score_text(members)
        ax.set_title(
            f"t-SNE of received features, {r['path'].name}\n"
            + ", ".join(b for b in bits if b)
            + (f"\n{scores}" if scores else "")
            + _note_lines(note),
            fontsize=9,
        )
        paths += _save(plt, fig, out, stems[idx])
    if len(drawn) > 1:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        varying = _varying_keys(drawn)
        fig, axes = plt.subplots(1, len(drawn), figsize=(4.6 * len(drawn), 4.8), squeeze=False)
        for ax, r, members, (emb, labels) in zip(
            axes[0], drawn, settings.values(), embeddings, strict=True
        ):
            _scatter(plt, ax, emb, labels, legend=ax is axes[0][-1])
            label = ", ".join(f"{_short(k)}={_fmt(r['config'].get(k))}" for k in varying)
            ax.set_title(f"{label}\n{_score_text(members)}", fontsize=8)
        fig.suptitle(
            "t-SNE of received test features (first seed drawn; the same test samples and "
            "channel draws)" + _note_lines(note, 140),
            fontsize=9,
        )
        paths += _save(plt, fig, out, "tsne_panels")
    return paths


def _varying_keys(runs: list[dict[str, Any]]) -> list[str]:
    keys = sorted({k for r in runs for k in r["config"]})
    return [
        k
        for k in keys
        if k not in SEED_KEYS
        and not k.startswith(IGNORED_PREFIXES)
        and len({_fmt(r["config"].get(k)) for r in runs}) > 1
    ] or ["algorithm.name"]


def _final_acc(run: dict[str, Any], metric: str = "final", protocol: str = "global"):
    """The run's final (window mean) or oracle-best accuracy under ``protocol``."""
    s = run["summary"]
    acc = s.get(f"{metric}_test_acc_{protocol}")
    if acc is None and run["config"].get("evaluation.protocol", "global") == protocol:
        acc = s.get(f"{metric}_test_acc")
    return None if acc is None else float(acc)


def _numeric(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    return None


def plot_vs(
    runs: list[dict[str, Any]],
    out: Path,
    x: str,
    metric: str = "final",
    note: str = "",
    protocol: str | None = None,
) -> list[Path]:
    """Final (or oracle best) accuracy vs config key ``x``, one curve per other setting."""
    protocol = _protocol(runs, protocol)
    pts = {}
    for r in runs:
        xv, acc = _numeric(r["config"].get(x)), _final_acc(r, metric, protocol)
        if xv is not None and acc is not None:
            pts[id(r)] = (xv, acc * 100)
    runs = [r for r in runs if id(r) in pts]
    if not runs:
        raise UserError(f"no finished run with a numeric {x} in its config")
    groups, common = group_runs(runs, drop=(x,))
    # keys derived from x in the same sweep (constant total: shots = total / ways)
    plt, fig, ax = _figure()
    for label, members in groups:
        acc_by: dict[float, list[float]] = defaultdict(list)
        for r in members:
            xv, acc = pts[id(r)]
            acc_by[xv].append(acc)
        xs = sorted(acc_by)
        _error_bars(ax, xs, [acc_by[v] for v in xs], label)
    what = METRIC_NAMES[metric]
    ax.set_xlabel(AXIS_NAMES.get(x, x))
    ax.set_ylabel(f"{what} test accuracy (%)")
    ax.grid(alpha=0.3)
    _legend(ax)
    head = f"{what.capitalize()} accuracy vs {AXIS_NAMES.get(x, x)} (mean, 95 % interval)"
    ax.set_title(title_for(common, runs, head, note, protocol), fontsize=9)
    return _save(plt, fig, out, f"vs_{_short(x)}")


METRICS = ("final", "oracle_best")
METRIC_NAMES = {"final": "final", "oracle_best": "oracle best (selected on the test set)"}
AXIS_NAMES = {
    "partition.ways": "m (classes per client)",
    "partition.num_clients": "K (clients)",
    "link.uplink_snr_db": "uplink SNR (dB)",
    "link.ue_tx_power_dbm": "UE transmit power (dBm)",
    "link.downlink_snr_db": "downlink SNR (dB)",
    "link.max_speed_kmh": "UE speed (km/h)",
    "link.speed_kmh": "UE speed (km/h)",
    "link.subcarrier_spacing_khz": "subcarrier spacing (kHz)",
    "link.cyclic_prefix_length": "cyclic prefix (samples)",
    "algorithm.lam": "lambda",
}


def communication_load(run: dict[str, Any]) -> float | None:
    """Real values sent over the whole run: 2 per channel symbol, 1 per 32 parameter bits."""
    s = run["summary"]
    keys = ("total_uplink_symbols", "total_downlink_symbols", "total_param_bits")
    if not all(k in s for k in keys):
        return None
    return 2.0 * (s[keys[0]] + s[keys[1]]) + s[keys[2]] / 32.0


def airtime_s(run: dict[str, Any]) -> float | None:
    """Seconds on the air over the whole run (``total_airtime_ms``), None when not recorded."""
    ms = run["summary"].get("total_airtime_ms")
    return None if ms is None else ms / 1000.0


# Factor between neighbouring points of the same cost on the log x axis.
COST_DODGE = 1.08

# cost -> (what a run costs, x-axis label, what the title calls it, file stem)
_COSTS = {
    "load": (
        communication_load,
        "communication load of the run (real values sent, log scale)",
        "communication load",
        "cost",
    ),
    "airtime": (
        airtime_s,
        "airtime of the run (s, OFDMA: clients in parallel, uplink + downlink; log scale)",
        "airtime",
        "cost_airtime",
    ),
}


def plot_cost(
    runs: list[dict[str, Any]],
    out: Path,
    note: str = "",
    protocol: str | None = None,
    cost: str = "load",
) -> list[Path]:
    """Final accuracy against the run's communication cost (``cost``: ``load`` or
    ``airtime``, see :data:`COSTS`), one point per setting."""
    if cost not in _COSTS:
        raise UserError(f"--cost {cost!r}: expected one of {', '.join(COSTS)}")
    measure, xlabel, what, stem = _COSTS[cost]
    protocol = _protocol(runs, protocol) if runs else "global"
    runs = [r for r in runs if measure(r) and _final_acc(r, "final", protocol)]
    if not runs:
        key = "total_airtime_ms" if cost == "airtime" else "communication totals"
        raise UserError(f"no finished run with {key} in summary.json")
    groups, common = group_runs(runs)
    plt, fig, ax = _figure()
    # Settings of the same cost (FedCL and its ablations send the same symbols) are
    # spread a little along the (log) x axis so that their bars do not hide each
    # other, and their labels are stacked, highest mean first, beside the group.
    same_cost: dict[float, list[tuple[str, list[float]]]] = defaultdict(list)
    for label, members in groups:
        load = float(np.mean([measure(r) for r in members]))
        accs = [_final_acc(r, "final", protocol) * 100 for r in members]
        same_cost[load].append((label, accs))
    for load, members in same_cost.items():
        members.sort(key=lambda p: -float(np.mean(p[1])))
        n = len(members)
        top = float(np.mean(members[0][1]))
        for i, (label, accs) in enumerate(members):
            x = load * COST_DODGE ** (i - (n - 1) / 2)
            _error_bars(ax, [x], [accs], label)
            ax.annotate(
                label,
                (load * COST_DODGE ** ((n - 1) / 2), top),
                fontsize=7,
                xytext=(8, 4 - 9 * i),
                textcoords="offset points",
            )
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("final test accuracy (%)")
    ax.grid(alpha=0.3, which="both")
    _legend(ax)
    head = f"Final accuracy vs {what} (mean, 95 % interval)"
    ax.set_title(title_for(common, runs, head, note, protocol), fontsize=9)
    return _save(plt, fig, out, stem)


def plot_link(paths: list[Path], out: Path, note: str = "") -> list[Path]:
    """Feature NMSE (dB) and QPSK BER vs SNR from ``link.csv`` files, theory dashed
    where a closed form exists, 95 % intervals as bars (:mod:`phy.link_figure`)."""
    import csv

    rows: list[dict[str, str]] = []
    for p in paths:
        f = p / "link.csv" if p.is_dir() else p
        if not f.is_file():
            raise UserError(f"{p}: no link.csv (make one with semfed link --out DIR)")
        with f.open() as fh:
            for r in csv.DictReader(fh):
                # several studies: the directory name tells their curves apart
                rows.append({**r, "source": p.name} if len(paths) > 1 else r)
    if not rows:
        raise UserError("link.csv has no rows")
    from phy.link_figure import link_figure

    title = "Link curves: feature NMSE and BER vs SNR (dashed: theory; bars: 95 % intervals)"
    fig = link_figure(rows, title + _note_lines(note))
    import matplotlib.pyplot as plt  # after link_figure chose the Agg backend

    return _save(plt, fig, out, "link")


def _select(runs: list[dict[str, Any]], where: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not where:
        return runs
    return [r for r in runs if all(_fmt(r["config"].get(k)) == _fmt(v) for k, v in where.items())]


def make_plots(
    paths: list[str | Path],
    out: str | Path,
    kind: str = "curves",
    *,
    x: str | None = None,
    metric: str = "final",
    where: dict[str, Any] | None = None,
    by: str | None = None,
    note: str = "",
    prefix: str = "",
    protocol: str | None = None,
    cost: str = "load",
    paired: str | None = None,
) -> list[Path]:
    """The figures of ``kind`` (PNG and PDF) in ``out``; returns their paths.

    ``x``: the key of kind ``vs``; ``metric``: final or oracle_best (kind ``vs``);
    ``protocol``: global, personal or masked (default: the runs' own);
    ``cost``: load or airtime (kind ``cost``);
    ``paired``: kind ``snr`` also plots every setting's paired difference from
    this one (its values of the keys that differ, joined by "/");
    ``where``: keep runs whose config has these values; ``by``: one figure per
    value of this key; ``note``: appended to every title; ``prefix``: put before
    every file name.
    """
    if kind not in KINDS:
        raise UserError(f"--kind {kind!r}: expected one of {', '.join(KINDS)}")
    if kind == "vs" and not x:
        raise UserError("--kind vs needs --x KEY (e.g. partition.ways)")
    if metric not in METRICS:
        raise UserError(f"--metric {metric!r}: expected one of {', '.join(METRICS)}")
    if protocol is not None and protocol not in ("global", "personal", "masked"):
        raise UserError(f"--protocol {protocol!r}: expected global, personal or masked")
    if cost not in COSTS:
        raise UserError(f"--cost {cost!r}: expected one of {', '.join(COSTS)}")
    if paired is not None and kind != "snr":
        raise UserError(f"--paired works with --kind snr only, not {kind}")
    out = Path(out)
    if kind == "link":
        return _renamed(plot_link([Path(p) for p in paths], out, note), prefix)
    runs = _select(load_runs(paths), where)
    if not runs:
        raise UserError(f"no run matches {where}")
    parts = [("", runs)]
    if by:
        values = sorted({_fmt(r["config"].get(by)) for r in runs})
        parts = [
            (f"{_short(by)}={v}_", [r for r in runs if _fmt(r["config"].get(by)) == v])
            for v in values
        ]
    made = []
    for tag, part in parts:
        if kind == "vs":
            paths_made = plot_vs(part, out, x, metric, note, protocol)
        elif kind == "tsne":
            paths_made = plot_tsne(part, out, note)
        elif kind == "cost":
            paths_made = plot_cost(part, out, note, protocol, cost)
        elif kind == "snr":
            paths_made = plot_snr(part, out, note, protocol, paired)
        else:
            paths_made = plot_curves(part, out, note, protocol)
        made += _renamed(paths_made, prefix + tag)
    return made


def file_stem(prefix: str, stem: str) -> str:
    """``<figure>_<kind>`` without saying a word twice.

    ``prefix`` names the figure (``fig2a_``, ``num_clients=20_``), ``stem`` is what
    the kind saved (``curves``, ``cost``, ``vs_ways``). The kind is left out when
    the prefix already says it: ``cost_`` + ``cost`` is ``cost``, ``cost_heterogeneous_``
    + ``cost`` is ``cost_heterogeneous``, ``fig2a_`` + ``cost`` stays ``fig2a_cost``.
    """
    if not prefix:
        return stem
    kind, _, rest = stem.partition("_")
    if kind in prefix.rstrip("_").split("_"):
        return prefix + rest if rest else prefix.rstrip("_")
    return prefix + stem


def _renamed(paths: list[Path], prefix: str) -> list[Path]:
    if not prefix:
        return paths
    out = []
    for p in paths:
        target = p.with_name(file_stem(prefix, p.stem) + p.suffix)
        p.replace(target)
        out.append(target)
    return out
