"""``semfed compare``: runs side by side, or statistics across seeds with paired differences.

Two modes:

* ``semfed compare RUN_DIR ...``: a table of single runs that differ only in
  ``algorithm.*`` (one seed each; an anecdote, not a result). Runs are refused
  (one line, naming what differs) when their partitions, seeds or any config key
  outside ``algorithm.*`` differ.
* ``semfed compare SWEEP_DIR ... --by KEY [--paired VALUE]``: runs grouped by
  every config key except the seed keys and ``KEY``; for each group and value of
  ``KEY``: n, mean, standard deviation and 95 % Student-t interval of the final
  accuracy over seeds, and with ``--paired`` the paired difference of every
  other value against ``VALUE`` (this row minus the paired row, seed by seed),
  its 95 % interval and the paired t-test's p-value (:mod:`semfed.statistics`).
  Refused when the runs of different ``KEY`` values differ in anything but
  seeds (select a fair subset with ``--where``), when two runs share a seed, or
  when paired runs were trained on different splits. ``KEY`` may be a comma list
  (``--by link.scheme,link.modulation``): the compared value is the combination,
  its parts joined by "/" ("unset" for a key a run's config leaves unset).
  ``--snr DB`` compares the final accuracy at one evaluation SNR
  (``evaluation.snr_db`` a list) instead of the first.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from semfed.errors import UserError
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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="runs side by side, or mean, 95 %% interval and paired differences across seeds "
        "(--by)",
        description="Without --by: final accuracy, rounds and communication totals of single "
        "runs that differ only in algorithm.* (refuses unfair comparisons). With --by KEY: "
        "runs (sweep directories or run directories) grouped by every config key except the "
        "seed keys and KEY; per group and value of KEY the number of seeds n, mean, standard "
        "deviation and 95 %% Student-t interval, and with --paired VALUE the paired difference "
        "of every other value against VALUE (row minus paired row, seed by seed) with its "
        "95 %% interval and paired t-test p-value.",
    )
    p.add_argument(
        "runs", nargs="+", metavar="DIR", help="run directories (semfed train --out) or sweeps"
    )
    p.add_argument(
        "--by",
        metavar="KEY",
        help="the compared config key, e.g. algorithm.name; a comma list compares the "
        "combinations, named by their values joined by / (unset: a key the config leaves unset)",
    )
    p.add_argument(
        "--paired",
        metavar="VALUE",
        help="with --by: the value of KEY the others are compared against, seed by seed",
    )
    p.add_argument(
        "--metric",
        choices=METRICS,
        default="final",
        help="final: mean of the last evaluation.final_window evaluations (default); "
        "oracle_best: the best evaluated round, selected on the test set (optimistic)",
    )
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help="with --by: the evaluation protocol (default: each run's evaluation.protocol)",
    )
    p.add_argument(
        "--snr",
        metavar="DB",
        type=float,
        help="with --by: the final accuracy at this evaluation SNR (evaluation.snr_db a list)",
    )
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --by: keep only runs whose config has this value (repeatable)",
    )
    p.add_argument(
        "--seed-keys",
        default=",".join(SEED_KEYS),
        metavar="KEYS",
        help="with --by: the config keys that tell seeds apart (default: "
        "training.seed,partition.seed)",
    )
    p.add_argument("--csv", metavar="OUT", help="also write the table as CSV to OUT")
    p.set_defaults(func=run)


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
    snr: float | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows of statistics over seeds for ``runs`` (from :func:`semfed.plot.load_runs`).

    ``by`` is a config key or a comma list of keys (:func:`compared_value`);
    ``snr`` takes the final accuracy at that evaluation SNR. Returns (the keys
    that tell groups apart, rows); each row holds those keys, ``by`` and
    :data:`STAT_COLUMNS`. Raises :class:`UserError` on an unfair or ambiguous
    selection.
    """
    from semfed.statistics import mean_interval, paired_difference

    if metric not in METRICS:
        raise UserError(f"--metric {metric!r}: expected one of {', '.join(METRICS)}")
    by_keys = [k.strip() for k in by.split(",") if k.strip()]
    for r in runs:
        if not any(k in r["config"] for k in by_keys):
            raise UserError(f"--by {by}: {r['path']} has no config key {by}")
    ignored = {*seed_keys, *by_keys}

    def setting(r: dict[str, Any]) -> tuple:
        return tuple(
            sorted(
                (k, _value_text(v))
                for k, v in r["config"].items()
                if k not in ignored and not k.startswith("output.")
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
                        diff_mean=d.mean,
                        diff_ci95_low=d.low,
                        diff_ci95_high=d.high,
                        p_value=d.p_value,
                    )
            rows.append(row)
    return varying, rows


def format_statistics(
    varying: list[str], by: str, rows: list[dict[str, Any]], paired: str | None
) -> str:
    head = [*varying, by, "n", "mean", "std", "95% interval"]
    if paired is not None:
        head += [f"diff vs {paired}", "95% interval of diff", "p"]
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
        cells.append(line)
    return _format(cells, text_columns=len(varying) + 1)


def _interval(low: Any, high: Any) -> str:
    if low is None or (isinstance(low, float) and math.isnan(low)):
        return "-"
    return f"[{low:.4f}, {high:.4f}]"


def _write_csv(path: str, fields: list[str], rows: list[dict[str, Any]]) -> None:
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


def run(args: argparse.Namespace) -> int:
    if args.by is None:
        for option in ("paired", "protocol", "snr"):
            if getattr(args, option) is not None:
                raise UserError(f"--{option} needs --by KEY")
        if args.where:
            raise UserError("--where needs --by KEY")
        runs = [load_run(p) for p in args.runs]
        check_comparable(runs)
        rows = table_rows(runs)
        if args.metric == "oracle_best":
            print("note: oracle best accuracy is selected on the test set (optimistic)")
        print(format_table(rows))
        if args.csv:
            _write_csv(args.csv, [key for key, _ in COLUMNS], rows)
        return 0

    from semfed.plot import _select, load_runs

    runs = [r for r in load_runs(args.runs) if (r["path"] / "summary.json").is_file()]
    runs = _select(runs, parse_where(args.where))
    if not runs:
        raise UserError("no finished run (with summary.json) matches")
    seed_keys = tuple(k.strip() for k in args.seed_keys.split(",") if k.strip())
    varying, rows = seed_statistics(
        runs,
        args.by,
        paired=args.paired,
        metric=args.metric,
        protocol=args.protocol,
        seed_keys=seed_keys,
        snr=args.snr,
    )
    protocols = {args.protocol or r["config"].get("evaluation.protocol", "global") for r in runs}
    print(
        f"{args.metric} test accuracy"
        + (f" at evaluation SNR {args.snr:g} dB" if args.snr is not None else "")
        + f", protocol {', '.join(sorted(protocols))}; "
        "mean and 95 % Student-t interval over seeds"
        + (f"; diff = row minus {args.by}={args.paired}, paired by seed" if args.paired else "")
    )
    print(format_statistics(varying, args.by, rows, args.paired))
    if args.csv:
        _write_csv(args.csv, [*varying, args.by, *STAT_COLUMNS], rows)
    return 0
