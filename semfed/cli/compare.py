"""``semfed compare``: side by side results of runs that differ only in the algorithm.

A fair comparison shares the partition, the seeds, the models, the link and the
budget. Runs are refused (one line, naming what differs) when their partition
fingerprints or seeds differ, or when their configs differ in any key outside
``algorithm.*`` (``output.*`` aside).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Any

from semfed.cli import UserError

COLUMNS = (
    ("run", "run"),
    ("algorithm", "algorithm"),
    ("final_test_acc", "final acc"),
    ("best_test_acc", "best acc"),
    ("final_test_acc_proto", "final proto acc"),
    ("rounds", "rounds"),
    ("total_uplink_symbols", "uplink symbols"),
    ("total_downlink_symbols", "downlink symbols"),
    ("total_param_bits", "param bits"),
)

# Sections a compared run may differ in.
FREE_SECTIONS = ("algorithm", "output")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="table of runs that differ only in algorithm.* (refuses unfair comparisons)",
        description="Print final and best accuracy, rounds and communication totals of finished "
        "runs side by side. Refuses runs whose partition fingerprints or seeds differ, or whose "
        "configs differ in anything other than algorithm.*.",
    )
    p.add_argument(
        "runs", nargs="+", metavar="RUN_DIR", help="run directories (semfed train --out)"
    )
    p.add_argument("--csv", metavar="OUT", help="also write the table as CSV to OUT")
    p.set_defaults(func=run)


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


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    columns = [
        (key, title)
        for key, title in COLUMNS
        if key != "final_test_acc_proto" or any(r.get(key) is not None for r in rows)
    ]
    cells = [[title for _, title in columns]]
    cells += [[_cell(r.get(key)) for key, _ in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    # text columns (run, algorithm) to the left, numbers to the right
    lines = [
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    runs = [load_run(p) for p in args.runs]
    check_comparable(runs)
    rows = table_rows(runs)
    print(format_table(rows))
    if args.csv:
        out = Path(args.csv)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=[key for key, _ in COLUMNS])
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {out}")
    return 0
