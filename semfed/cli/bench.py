"""``semfed bench``: a round's time per component, the compute floor and the ideal link."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from semfed.cli import add_config_arguments
from semfed.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="time a round per component against the compute floor and an ideal link",
        description="Build the federation of --config, run a warm-up round and --rounds "
        "timed rounds, and print per round: local training (with the encoders, uplink, "
        "decoders and downlink attributed from isolated timings of the same compiled "
        "pieces), SCG, aggregation, evaluation, images per second and peak RSS; then the "
        "compute floor (plain Keras steps on the same images, no federation, no link), the "
        "same round with an ideal link, and the ratios. --clients runs it for each K in a "
        "fresh process and fits round time = a + b K.",
    )
    add_config_arguments(p)
    p.add_argument("--rounds", type=int, default=3, metavar="N", help="timed rounds (default 3)")
    p.add_argument(
        "--clients",
        metavar="K1,K2,...",
        help="bench each number of clients in its own process; table and linear fit in K",
    )
    p.add_argument(
        "--rss-rounds",
        metavar="R1,R2",
        help="record the RSS after these rounds (e.g. 5,50: the leak check)",
    )
    p.add_argument("--no-ideal", action="store_true", help="skip the ideal-link reference")
    p.add_argument(
        "--compare-precision",
        action="store_true",
        help="bench training.precision = float32 and then bfloat16 in this process and print "
        "the ratios (bfloat16 round against the float32 floor, which is timed again after "
        "each bfloat16 round)",
    )
    p.add_argument(
        "--compare",
        metavar="KEY=V1,V2,...",
        help="bench the config with KEY set to each value in turn in this process and print "
        "each round and floor with its ratio to the first value's (e.g. "
        "link.bs_antennas=1,4)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.set_defaults(func=run)


def _ints(text: str | None, flag: str) -> list[int]:
    if not text:
        return []
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{flag} {text!r}: expected integers separated by commas") from None
    if not values or min(values) < 1:
        raise UserError(f"{flag} {text!r}: expected integers >= 1")
    return values


def run(args: argparse.Namespace) -> int:
    if args.rounds < 1:
        raise UserError(f"--rounds {args.rounds}: expected >= 1")
    rss_rounds = _ints(args.rss_rounds, "--rss-rounds")
    compared = _compared(args.compare)
    if sum(map(bool, (args.clients, args.compare_precision, args.compare))) > 1:
        raise UserError("--clients, --compare-precision and --compare exclude each other")
    if args.clients:
        return _sweep_clients(args, _ints(args.clients, "--clients"))
    from semfed.bench import (
        format_precision_comparison,
        format_result,
        format_setting_comparison,
        run_bench,
    )
    from semfed.config import load_config
    from semfed.runtime import announce_device

    if args.compare_precision:
        compared = ("training.precision", ["float32", "bfloat16"])
    key, values = compared if compared else ("", [None])
    # Every setting is loaded (and so checked) before the first bench starts.
    configs = [
        load_config(args.config, [*args.overrides, *([f"{key}={v}"] if v is not None else [])])
        for v in values
    ]
    announce_device(configs[0].link.jit_compile)
    results = []
    for cfg in configs:
        res = run_bench(
            cfg,
            args.rounds,
            ideal_reference=not args.no_ideal,
            rss_rounds=rss_rounds,
            log=lambda line: print(line, flush=True),
            # the float32 floor again, in turn with each bfloat16 round
            paired_floor=results[0].floor_fn if args.compare_precision and results else None,
            keep_floor=args.compare_precision and not results,
        )
        print(format_result(res), flush=True)
        if results:
            results[0].floor_fn = None  # let the first bench's federation go
        results.append(res)
    if args.compare_precision:
        print(format_precision_comparison(*results), flush=True)
    elif compared:
        print(format_setting_comparison(key, values, results), flush=True)
    if args.json:
        data = [r.to_dict() for r in results]
        Path(args.json).write_text(json.dumps(data if len(data) > 1 else data[0], indent=2))
    return 0


def _compared(text: str | None) -> tuple[str, list[str]] | None:
    """``KEY=V1,V2,...`` of --compare as (key, values); None when not given."""
    if not text:
        return None
    key, sep, rest = text.partition("=")
    values = [v.strip() for v in rest.split(",") if v.strip()]
    if not sep or not key.strip() or len(values) < 2:
        raise UserError(
            f"--compare {text!r}: expected KEY=V1,V2,... with at least two values, "
            "e.g. link.bs_antennas=1,4"
        )
    return key.strip(), values


def _sweep_clients(args: argparse.Namespace, ks: list[int]) -> int:
    from semfed.bench import linear_fit

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in ks:
            out = Path(tmp) / f"k{k}.json"
            cmd = [sys.executable, "-m", "semfed", "bench", "--config", args.config]
            for o in [*args.overrides, f"partition.num_clients={k}"]:
                cmd += ["--set", o]
            cmd += ["--rounds", str(args.rounds), "--json", str(out)]
            if args.no_ideal:
                cmd.append("--no-ideal")
            if args.rss_rounds:
                cmd += ["--rss-rounds", args.rss_rounds]
            print(f"== K = {k}", flush=True)
            # Each K's process quiets TensorFlow itself (semfed main), or not under -v.
            if subprocess.run(cmd, check=False).returncode != 0:
                raise UserError(f"the bench for K = {k} failed (its output is above)")
            rows.append(json.loads(out.read_text()))
    first = rows[0]
    print(
        f"\ndevice: {first['device']}; precision: {first['precision']}; link XLA: "
        f"{'yes' if first['link_jit_compile'] else 'no'}; evaluation every "
        f"{first['evaluation_every']} rounds"
    )
    print(
        "\n| K | training round (s) | / floor | link share | evaluation (s) | images/s "
        "| peak RSS (MiB) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ratios = r["ratios"]
        share = ratios.get("link share (real - ideal)", ratios["link share (attributed)"])
        print(
            f"| {r['num_clients']} | {r['round_s']:.2f} | {ratios['training round / floor']:.2f} "
            f"| {100 * share:.1f} % | {r['evaluation_s']:.2f} "
            f"| {r['images_per_round'] / r['round_s']:.0f} | {r['peak_rss_mib']:.0f} |"
        )
    if len(rows) >= 2:
        a, b, r2 = linear_fit([r["num_clients"] for r in rows], [r["round_s"] for r in rows])
        print(f"\ntraining round time = {a:.3f} s + {b:.3f} s x K, R^2 = {r2:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0
