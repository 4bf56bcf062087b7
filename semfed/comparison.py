"""Comparisons of runs: single runs side by side, and statistics across seeds.

What ``semfed compare`` and the experiment files' ``[[compare]]`` tables print:
per group of runs that differ only in their seeds and one compared key, n, mean,
standard deviation and 95 % Student-t interval of a metric, the paired
difference against a reference value with its interval and p-value, and
optionally the convergence of the seed-mean curve (:mod:`semfed.convergence`).
Unfair selections (runs that differ in more than seeds, duplicate seeds, paired
runs on different splits) raise :class:`~semfed.errors.UserError`.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from semfed.errors import UserError
from semfed.plot import IGNORED_PREFIXES
from semfed.sweep import SEED_KEYS

COLUMNS = (
    ("run", "run"),
    ("algorithm", "algorithm"),
    ("final_test_acc", "final acc"),
    ("oracle_best_test_acc", "oracle best acc"),
    ("rounds", "rounds"),
    ("total_uplink_symbols", "uplink symbols"),
    ("total_downlink_symbols", "downlink symbols"),
    ("total_param_bits", "param bits"),
)

# Sections a compared run may differ in.
FREE_SECTIONS = ("algorithm", "output")
METRICS = ("final", "oracle_best")
# Summary values of runs with dumped features (semfed.clustering): Fig. 4's numbers.
CLUSTER_METRICS = ("feature_silhouette", "feature_knn_acc")
PROTOCOLS = ("global", "personal", "masked")
STAT_COLUMNS = (
    "n",
    "mean",
    "std",
    "ci95_low",
    "ci95_high",
    "diff_mean",
    "diff_ci95_low",
    "diff_ci95_high",
    "p_value",
)
CONVERGENCE_COLUMNS = ("last_round", "change_last_10", "converged", "converged_from")


# ---------------------------------------------------------------- single runs


def load_run(path: str | Path) -> dict[str, Any]:
    """A finished run's resolved config (as a dict) and summary."""
    from semfed.config import ConfigError, load_config

    path = Path(path)
    summary_path, config_path = path / "summary.json", path / "config.toml"
    if not config_path.is_file() or not summary_path.is_file():
        raise UserError(f"{path} is not a finished run (no config.toml or summary.json)")
    try:
        config = load_config(config_path).to_dict()
    except ConfigError as err:
        raise UserError(f"{config_path}: {err}") from None
    return {"path": path, "config": config, "summary": json.loads(summary_path.read_text())}


def check_comparable(runs: list[dict[str, Any]]) -> None:
    """Raise :class:`UserError` unless every run shares partition, seeds and config
    outside ``algorithm.*``."""
    from semfed.train import config_differences

    ref = runs[0]
    for other in runs[1:]:
        where = f"{ref['path']} and {other['path']}"
        fp_a = ref["summary"].get("partition_fingerprint")
        fp_b = other["summary"].get("partition_fingerprint")
        if fp_a != fp_b:
            raise UserError(
                f"cannot compare {where}: their partitions differ "
                f"(partition_fingerprint {fp_a} vs {fp_b})"
            )
        for section in ("training", "partition"):
            seed_a = ref["config"].get(section, {}).get("seed")
            seed_b = other["config"].get(section, {}).get("seed")
            if seed_a != seed_b:
                raise UserError(
                    f"cannot compare {where}: their seeds differ "
                    f"({section}.seed {seed_a} vs {seed_b})"
                )
        diff = [
            key
            for key in config_differences(ref["config"], other["config"])
            if key.split(".")[0] not in FREE_SECTIONS
        ]
        if diff:
            raise UserError(
                f"cannot compare {where}: their configs differ in {', '.join(diff)} "
                "(only algorithm.* may differ)"
            )


def table_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in runs:
        row = {key: r["summary"].get(key) for key, _ in COLUMNS}
        row["run"] = str(r["path"])
        rows.append(row)
    return rows


def _cell(value: Any, digits: int = 4) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _format(cells: list[list[str]], text_columns: int) -> str:
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i < text_columns else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_table(rows: list[dict[str, Any]]) -> str:
    cells = [[title for _, title in COLUMNS]]
    cells += [[_cell(r.get(key)) for key, _ in COLUMNS] for r in rows]
    return _format(cells, text_columns=2)  # run, algorithm left; numbers right


# ---------------------------------------------------------------- across seeds


def _value_text(v: Any) -> str:
    from semfed.plot import _fmt

    return _fmt(v)


def parse_where(items: list[str]) -> dict[str, Any]:
    """``["model.encoders=homogeneous"]`` -> ``{"model.encoders": "homogeneous"}``
    (values read as ``--set`` values)."""
    from semfed.config import ConfigError, parse_override

    out = {}
    for item in items:
        try:
            keys, value = parse_override(item)
        except ConfigError:
            raise UserError(f"--where {item!r}: expected KEY=VALUE") from None
        out[".".join(keys)] = value
    return out


def _metric_value(
    run: dict[str, Any], metric: str, protocol: str | None, snr: float | None = None
) -> float | None:
    s = run["summary"]
    if metric in CLUSTER_METRICS:
        return None if s.get(metric) is None else float(s[metric])
    if protocol is None:
        protocol = run["config"].get("evaluation.protocol", "global")
    if snr is None:
        value = s.get(f"{metric}_test_acc_{protocol}")
        return None if value is None else float(value)
    by_snr = s.get(f"{metric}_test_acc_{protocol}_by_snr") or {}
    found = [v for label, v in by_snr.items() if float(label) == snr]
    if not found:
        raise UserError(
            f"--snr {snr:g}: {run['path']} has no {metric} accuracy at that evaluation SNR "
            f"(has {', '.join(by_snr) or 'none'})"
        )
    return None if found[0] is None else float(found[0])


def compared_value(run: dict[str, Any], keys: list[str]) -> str:
    """The value of the compared key(s) in ``run``'s config, parts joined by "/"."""
    return "/".join(_value_text(run["config"][k]) if k in run["config"] else "unset" for k in keys)


def seed_statistics(
    runs: list[dict[str, Any]],
    by: str,
    *,
    paired: str | None = None,
    metric: str = "final",
    protocol: str | None = None,
    seed_keys: tuple[str, ...] = SEED_KEYS,
    with_convergence: bool = False,
    snr: float | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows of statistics over seeds for ``runs`` (from :func:`semfed.plot.load_runs`).

    ``by`` is a config key or a comma list of keys (:func:`compared_value`);
    ``snr`` takes the final accuracy at that evaluation SNR.

    Returns (the keys that tell groups apart, rows); each row holds those keys,
    ``by`` and :data:`STAT_COLUMNS` (and :data:`CONVERGENCE_COLUMNS` with
    ``with_convergence``: :mod:`semfed.convergence` on the seed-mean curve).
    Raises :class:`UserError` on an unfair or ambiguous selection.
    """
    from semfed.statistics import mean_interval, paired_difference

    if metric not in METRICS + CLUSTER_METRICS:
        raise UserError(
            f"--metric {metric!r}: expected one of {', '.join(METRICS + CLUSTER_METRICS)}"
        )
    by_keys = [k.strip() for k in by.split(",") if k.strip()]
    for r in runs:
        if not any(k in r["config"] for k in by_keys):
            raise UserError(f"--by {by}: {r['path']} has no config key {by}")
    ignored = {*seed_keys, *by_keys}
    # load_runs has filled the keys an older run's config lacks with their defaults.

    def setting(r: dict[str, Any]) -> tuple:
        return tuple(
            sorted(
                (k, _value_text(v))
                for k, v in r["config"].items()
                if k not in ignored and not k.startswith(IGNORED_PREFIXES)
            )
        )

    groups: dict[tuple, dict[str, dict[tuple, dict[str, Any]]]] = defaultdict(dict)
    for r in runs:
        if metric == "final" and "final_test_acc_global" not in r["summary"]:
            raise UserError(
                f"{r['path']}: summary.json has no per-protocol final accuracy "
                "(a run from an older semfed: rerun it)"
            )
        value = compared_value(r, by_keys)
        seeds = tuple(r["config"].get(k) for k in seed_keys)
        members = groups[setting(r)].setdefault(value, {})
        if seeds in members:
            raise UserError(
                f"{members[seeds]['path']} and {r['path']} have the same seeds "
                f"({', '.join(f'{k}={s}' for k, s in zip(seed_keys, seeds, strict=True))}) "
                f"and {by}={value}: duplicate runs"
            )
        members[seeds] = r
    all_values = sorted({v for g in groups.values() for v in g})
    settings = [dict(s) for s in groups]
    keys = sorted({k for s in settings for k in s})
    varying = [k for k in keys if len({s.get(k) for s in settings}) > 1]
    for g in groups.values():
        if len(all_values) > 1 and set(g) != set(all_values):
            missing = [v for v in all_values if v not in g]
            raise UserError(
                f"cannot compare {by}={', '.join(missing)} with {by}={', '.join(sorted(g))}: "
                f"their runs differ in {', '.join(varying) or 'their configs'}, not only in "
                "seeds (select comparable runs with --where KEY=VALUE)"
            )
    if paired is not None and paired not in all_values:
        raise UserError(
            f"--paired {paired}: no run has {by}={paired} (has {', '.join(all_values)})"
        )
    rows = []
    for s, g in zip(settings, groups.values(), strict=True):
        ref = g.get(paired) if paired is not None else None
        for value in sorted(g, key=lambda v: (v != paired, v)):
            members = g[value]
            vals = {seeds: _metric_value(r, metric, protocol, snr) for seeds, r in members.items()}
            finite = [v for v in vals.values() if v is not None]
            row: dict[str, Any] = {k: s.get(k, "") for k in varying}
            row[by] = value
            row.update(dict.fromkeys(STAT_COLUMNS, None))
            if finite:
                iv = mean_interval(finite)
                row.update(n=iv.n, mean=iv.mean, std=iv.std, ci95_low=iv.low, ci95_high=iv.high)
            else:
                row["n"] = 0
            if with_convergence:
                row.update(_convergence_columns(list(members.values()), protocol))
            if ref is not None and value != paired:
                common = sorted(k for k in vals if k in ref and vals[k] is not None)
                ref_vals = {k: _metric_value(ref[k], metric, protocol, snr) for k in common}
                common = [k for k in common if ref_vals[k] is not None]
                for k in common:
                    fa = members[k]["summary"].get("partition_fingerprint")
                    fb = ref[k]["summary"].get("partition_fingerprint")
                    if fa != fb:
                        raise UserError(
                            f"cannot pair {members[k]['path']} with {ref[k]['path']}: their "
                            f"partitions differ (partition_fingerprint {fa} vs {fb})"
                        )
                if common:
                    d = paired_difference([vals[k] for k in common], [ref_vals[k] for k in common])
                    row.update(
                        diff_n=d.n,
                        diff_mean=d.mean,
                        diff_ci95_low=d.low,
                        diff_ci95_high=d.high,
                        p_value=d.p_value,
                    )
            rows.append(row)
    return varying, rows


def _convergence_columns(members: list[dict[str, Any]], protocol: str | None) -> dict[str, Any]:
    from semfed.convergence import WINDOW, convergence, mean_curve

    curves = []
    for r in members:
        key = f"test_acc_{protocol or r['config'].get('evaluation.protocol', 'global')}"
        curves.append({m["round"]: m[key] for m in r.get("metrics", []) if key in m})
    curve = mean_curve(curves)
    if not curve:
        return dict.fromkeys(CONVERGENCE_COLUMNS)
    c = convergence(curve, WINDOW)
    return {
        "last_round": c.last_round,
        "change_last_10": c.change,
        "converged": "yes" if c.converged else "no",
        "converged_from": c.converged_from,
    }


def format_statistics(
    varying: list[str], by: str, rows: list[dict[str, Any]], paired: str | None
) -> str:
    head = [*varying, by, "n", "mean", "std", "95% interval"]
    if paired is not None:
        head += [f"diff vs {paired}", "95% interval of diff", "p"]
    conv = bool(rows) and "converged" in rows[0]
    if conv:
        head += ["last round", "change over 10", "converged", "from round"]
    cells = [head]
    for r in rows:
        line = [_cell(r.get(k)) for k in varying] + [str(r[by]), str(r["n"])]
        line += [_cell(r["mean"]), _cell(r["std"]), _interval(r["ci95_low"], r["ci95_high"])]
        if paired is not None:
            line += [
                _cell(r["diff_mean"]),
                _interval(r["diff_ci95_low"], r["diff_ci95_high"]),
                _cell(r["p_value"], 3),
            ]
        if conv:
            line += [_cell(r[k]) for k in CONVERGENCE_COLUMNS]
        cells.append(line)
    return _format(cells, text_columns=len(varying) + 1)


def _interval(low: Any, high: Any) -> str:
    if low is None or (isinstance(low, float) and math.isnan(low)):
        return "-"
    return f"[{low:.4f}, {high:.4f}]"


def write_table_csv(path: str, fields: list[str], rows: list[dict[str, Any]]) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    k: ""
                    if row.get(k) is None or (isinstance(row[k], float) and math.isnan(row[k]))
                    else row[k]
                    for k in fields
                }
            )
    print(f"wrote {out}")


def statistics_for(
    paths: list[str | Path],
    by: str,
    *,
    paired: str | None = None,
    metric: str = "final",
    protocol: str | None = None,
    where: dict[str, Any] | None = None,
    seed_keys: tuple[str, ...] = SEED_KEYS,
    with_convergence: bool = False,
    snr: float | None = None,
) -> tuple[list[dict[str, Any]], list[str], list[dict[str, Any]]]:
    """Load the finished runs under ``paths``, keep those matching ``where`` and
    return (runs, varying keys, rows) of :func:`seed_statistics`."""
    from semfed.plot import _select, load_runs

    runs = [r for r in load_runs(paths) if (r["path"] / "summary.json").is_file()]
    runs = _select(runs, where or {})
    if not runs:
        raise UserError("no finished run (with summary.json) matches")
    varying, rows = seed_statistics(
        runs,
        by,
        paired=paired,
        metric=metric,
        protocol=protocol,
        seed_keys=seed_keys,
        with_convergence=with_convergence,
        snr=snr,
    )
    return runs, varying, rows


def write_statistics_csv(
    path: str | Path, varying: list[str], by: str, rows: list[dict[str, Any]]
) -> None:
    """The rows of :func:`seed_statistics` as CSV (convergence columns when present)."""
    extra = list(CONVERGENCE_COLUMNS) if rows and "converged" in rows[0] else []
    write_table_csv(str(path), [*varying, by, *STAT_COLUMNS, *extra], rows)
