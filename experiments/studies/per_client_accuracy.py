"""Per-client final accuracy of a drop study (clients at different SNRs), by scheme.

For each run: each client's accuracy averaged over the run's final window (the
last ``final_window`` evaluations, as ``final_test_acc``), under the run's
protocol; then per client and scheme the mean over seeds with its 95 % Student-t
interval, and the paired difference of every scheme against ``--paired`` (seed
by seed). Also each client's SNR, MCS and symbols per sample from the summary.

Run:
    python experiments/studies/per_client_accuracy.py experiments/results/digital_drop/cpu/runs \
        --by link.scheme --paired analog --csv OUT.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import tomllib
from collections import defaultdict
from pathlib import Path

import numpy as np

from semfed.statistics import mean_interval, paired_difference


def run_values(run: Path, key: str) -> tuple[str, int, list[float], dict, dict]:
    """(value of ``key``, seed, per-client final accuracy, summary, config) of one run."""
    config = tomllib.loads((run / "config.toml").read_text())
    section, name = key.split(".", 1)
    value = str(config.get(section, {}).get(name, "unset"))
    summary = json.loads((run / "summary.json").read_text())
    protocol = summary["protocol"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    window = records[-summary["final_window"] :]
    per_client = np.mean([r[f"test_acc_{protocol}_per_client"] for r in window], axis=0)
    return value, int(config["training"]["seed"]), per_client.tolist(), summary, config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="a sweep's runs/ folder")
    parser.add_argument("--by", default="link.scheme")
    parser.add_argument("--paired", default="analog")
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args()

    acc: dict[str, dict[int, list[float]]] = defaultdict(dict)
    info: dict[str, dict] = {}
    snrs: list[float] = []
    for run in sorted(p for p in args.runs.iterdir() if (p / "summary.json").exists()):
        value, seed, per_client, summary, config = run_values(run, args.by)
        acc[value][seed] = per_client
        info[value] = summary
        snrs = config["link"]["uplink_snr_db"]
    rows = []
    for value in sorted(acc, key=lambda v: v != args.paired):
        seeds = sorted(acc[value])
        mcs = info[value].get("uplink_mcs", ["-"] * len(snrs))
        symbols = info[value]["uplink_symbols_per_sample_by_client"]
        for k, snr in enumerate(snrs):
            values = [acc[value][s][k] for s in seeds]
            m = mean_interval(values)
            row = {
                args.by: value,
                "client": k,
                "snr_db": snr,
                "uplink_mcs": mcs[k],
                "uplink_symbols_per_sample": symbols[k],
                "n": m.n,
                "mean": round(m.mean, 4),
                "low": round(m.low, 4),
                "high": round(m.high, 4),
            }
            if value != args.paired and args.paired in acc:
                common = [s for s in seeds if s in acc[args.paired]]
                d = paired_difference(
                    [acc[value][s][k] for s in common], [acc[args.paired][s][k] for s in common]
                )
                row.update(
                    diff=round(d.mean, 4), diff_low=round(d.low, 4), diff_high=round(d.high, 4)
                )
                row["p"] = round(d.p_value, 4)
            rows.append(row)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    print(" ".join(f"{f:>12}" for f in fields))
    for r in rows:
        print(" ".join(f"{r.get(f, '')!s:>12}" for f in fields))
    if args.csv:
        with args.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
