"""How much accuracy each scheme keeps as the SNR falls (Fig. 2(b)), and whether
fading explains FedCL's loss at -5 dB.

1. Per scheme and SNR of a Fig. 2(b) sweep: the accuracy as a fraction of the
   same seed's accuracy at the reference SNR (``--reference``, 20 dB), the mean
   over seeds with its 95 % interval; and the SNR at which the seed-mean curve
   crosses ``--keep`` (0.9: a loss of 10 %, the paper's figure), by linear
   interpolation between the measured SNRs. The gap between that SNR and -5 dB
   is the offset an SNR definition would need to turn our loss into the paper's.
2. With ``--other RUNS`` (repeatable: sweeps of the schemes on another channel,
   e.g. ``diagnostics/fedcl_low_snr.toml``'s AWGN with perfect CSI): each
   scheme's relative loss from the reference SNR to ``--low`` on that channel
   and on Fig. 2(b)'s, with the paired difference over the seeds both have;
   and on that channel FedCL's loss minus each baseline's, in accuracy points
   (the verdict table's low-SNR rule).
3. With ``--baselines-from-main``: the ``--other`` runs are a FedCL variant on
   Fig. 2(b)'s own channel (``diagnostics/fedcl_regularizer_snr.toml``), and
   its loss is set against the baselines' losses in the Fig. 2(b) runs.

Run:
    python experiments/diagnostics/low_snr_loss.py experiments/results/fig2b/medium/runs \
        --other experiments/results/fedcl_low_snr/medium/runs \
        --other experiments/results/low_snr_awgn_baselines/medium/runs --protocol global
    python experiments/diagnostics/low_snr_loss.py experiments/results/fig2b/medium/runs \
        --other experiments/results/fedcl_regularizer_snr/medium/runs --baselines-from-main
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from semfed.plot import load_runs
from semfed.statistics import mean_interval
from semfed.verdicts import paired_by_seed

SNR = "link.uplink_snr_db"


def final_by(
    runs: Path, protocol: str, where: dict[str, str]
) -> dict[tuple[str, float], dict[int, float]]:
    """{(scheme, SNR): {seed: final accuracy}} of the finished runs matching ``where``."""
    out: dict[tuple[str, float], dict[int, float]] = defaultdict(dict)
    for r in load_runs([runs]):
        cfg, summary = r["config"], r["summary"]
        value = summary.get(f"final_test_acc_{protocol}") if summary else None
        if value is None or any(str(cfg.get(k)) != v for k, v in where.items()):
            continue
        key = (str(cfg["algorithm.name"]), float(cfg[SNR]))
        out[key][int(cfg.get("training.seed", 0))] = float(value)
    return out


def kept(
    acc: dict[tuple[str, float], dict[int, float]], scheme: str, snr: float, reference: float
) -> list[float]:
    """Per seed: accuracy at ``snr`` over the same seed's at ``reference``."""
    low, ref = acc.get((scheme, snr), {}), acc.get((scheme, reference), {})
    return [low[s] / ref[s] for s in sorted(set(low) & set(ref))]


def crossing(snrs: list[float], levels: list[float], keep: float) -> float | None:
    """The lowest SNR above which the curve stays at or over ``keep`` (linear
    interpolation between measured points); None if it never falls below."""
    for i in range(len(snrs) - 1, 0, -1):
        if levels[i - 1] < keep <= levels[i]:
            lo, hi = snrs[i - 1], snrs[i]
            return lo + (keep - levels[i - 1]) * (hi - lo) / (levels[i] - levels[i - 1])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="the Fig. 2(b) sweep's runs/ folder")
    parser.add_argument(
        "--other", type=Path, action="append", help="runs/ of the schemes on another channel"
    )
    parser.add_argument("--protocol", default="global")
    parser.add_argument("--reference", type=float, default=20.0)
    parser.add_argument("--low", type=float, default=-5.0)
    parser.add_argument("--keep", type=float, default=0.9)
    parser.add_argument(
        "--baselines-from-main",
        action="store_true",
        help="--other is FedCL on the main runs' channel: take the baselines from the main runs",
    )
    args = parser.parse_args()

    acc = final_by(args.runs, args.protocol, {"model.encoders": "homogeneous"})
    schemes = sorted({s for s, _ in acc})
    snrs = sorted({snr for _, snr in acc})
    print(f"Accuracy kept relative to {args.reference:g} dB ({args.protocol}), seed mean [95 %]:")
    for scheme in schemes:
        means = []
        for snr in snrs:
            values = kept(acc, scheme, snr, args.reference)
            if len(values) < 2:
                continue
            i = mean_interval(values)
            means.append((snr, i.mean))
            print(
                f"  {scheme:<9} {snr:>5g} dB: {i.mean:.3f} [{i.low:.3f}, {i.high:.3f}], n = {i.n}"
            )
        at = crossing([s for s, _ in means], [m for _, m in means], args.keep)
        where = f"{at:.1f} dB" if at is not None else "not below it in the range"
        print(f"  {scheme}: keeps {args.keep:.0%} from {where}")

    if not args.other:
        return
    other: dict[tuple[str, float], dict[int, float]] = defaultdict(dict)
    for path in args.other:
        for key, values in final_by(path, args.protocol, {}).items():
            other[key].update(values)

    def losses(table: dict, scheme: str, relative: bool) -> dict[int, float]:
        """Per seed: accuracy lost from the reference SNR to the low one."""
        low, ref = table.get((scheme, args.low), {}), table.get((scheme, args.reference), {})
        return {s: (ref[s] - low[s]) / (ref[s] if relative else 1.0) for s in set(low) & set(ref)}

    def paired_text(a: dict[int, float], b: dict[int, float]) -> str | None:
        d = paired_by_seed(a, b)
        if d is None:
            return None
        return (
            f"{100 * d.mean:+.1f} points [{100 * d.low:+.1f}, {100 * d.high:+.1f}], "
            f"p = {d.p_value:.2g}, n = {d.n}"
        )

    print(f"On the other channel, {args.reference:g} -> {args.low:g} dB ({args.protocol}):")
    for scheme in sorted({s for s, _ in other}):
        alt, base = losses(other, scheme, True), losses(acc, scheme, True)
        seeds = sorted(set(alt) & set(base))
        text = paired_text(alt, base)
        if text is not None:
            print(
                f"  {scheme:<9} loses {100 * np.mean([alt[s] for s in seeds]):.1f} % there, "
                f"{100 * np.mean([base[s] for s in seeds]):.1f} % on Fig. 2(b)'s channel "
                f"(seeds {seeds}); difference {text}"
            )
    fedcl = losses(other, "fedcl", False)
    baselines, where = (acc, "in the main runs") if args.baselines_from_main else (other, "there")
    for scheme in sorted({s for s, _ in baselines} - {"fedcl"}):
        text = paired_text(fedcl, losses(baselines, scheme, False))
        if text is not None:
            print(f"  FedCL's loss minus {scheme}'s {where}, in accuracy points: {text}")


if __name__ == "__main__":
    main()
