"""The link's measured share of a training round, with nothing else timed.

    python benchmarks/link_share.py [--config experiments/configs/paper.toml]
                                    [--precision float32] [--rounds 8]

Two federations of the config (quietly): one with its link, one with both
links replaced by the identity. After two warm-up rounds each, their local
training (``train_clients``, all K clients) runs in turn for ``--rounds``
rounds; per round the share is ``1 - ideal / real``, as ``semfed bench``'s
"link share (real - ideal)" but without the bench's other references, so a
run takes about a minute and a half at the paper setting. Also printed: the
process's minor page faults in each half (``getrusage``). Set ``XLA_FLAGS`` or
``link.jit_compile`` (``--set``) to compare settings, one process each.
Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace

import numpy as np

from semfed.config import load_config
from semfed.statistics import mean_interval
from semfed.train import build_federation


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="experiments/configs/paper.toml")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.set)
    config = replace(
        config,
        training=replace(config.training, precision=args.precision),
        output=replace(config.output, progress=False),
    )
    real, _ = build_federation(config, ideal_link=False)
    ideal, _ = build_federation(config, ideal_link=True)
    rngs = [np.random.default_rng(config.training.seed) for _ in range(2)]
    for t in range(2):
        real.train_clients(t, rngs[0])
        ideal.train_clients(t, rngs[1])
    shares, times = [], []
    for t in range(2, 2 + args.rounds):
        row = []
        for algorithm, rng in ((real, rngs[0]), (ideal, rngs[1])):
            faults, start = minor_faults(), time.perf_counter()
            algorithm.train_clients(t, rng)
            row += [time.perf_counter() - start, minor_faults() - faults]
        times.append(row)
        shares.append(1 - row[2] / row[0])
        print(
            f"round {t}: real {row[0]:.3f} s ({row[1]} page faults), "
            f"ideal link {row[2]:.3f} s ({row[3]}), share {shares[-1]:.3f}",
            flush=True,
        )
    real_s, ideal_s = np.mean([r[0] for r in times]), np.mean([r[2] for r in times])
    share = mean_interval(shares)
    print(
        f"{args.precision}, link XLA {config.link.jit_compile}: real {real_s:.3f} s, "
        f"ideal link {ideal_s:.3f} s; link share {share.mean:.3f} "
        f"[{share.low:.3f}, {share.high:.3f}] (mean and 95 % interval over {args.rounds} rounds)"
    )


if __name__ == "__main__":
    main()
