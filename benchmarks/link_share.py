"""The link's measured share of a training round, with nothing else timed.

    python benchmarks/link_share.py [--config experiments/configs/paper.toml]
                                    [--precision float32] [--rounds 8]
                                    [--set KEY=VALUE ...] [--versus KEY=VALUE ...]

Federations of the config (quietly): one with its link, one with both links
replaced by the identity, and with ``--versus`` a second one with its link
and those keys changed (e.g. ``--versus link.draw_ahead=false``). After two
warm-up rounds each, their local training (``train_clients``, all K clients)
runs in a new random order in each of ``--rounds`` rounds; per round the
share is ``1 - ideal / real``, as ``semfed bench``'s "link share (real -
ideal)" but without the bench's other references, so a run takes about a
minute and a half at the paper setting (two and a half with ``--versus``).
With ``--versus`` the ratio of the two real rounds is printed too, paired
round by round. Also printed: the process's minor page faults in each
round (``getrusage``). Set ``XLA_FLAGS`` to compare XLA settings, one
process each. Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace

import numpy as np

from semfed.config import load_config
from semfed.statistics import Interval, mean_interval
from semfed.train import build_federation


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _interval(values: list[float]) -> str:
    i: Interval = mean_interval(values)
    return f"{i.mean:.3f} [{i.low:.3f}, {i.high:.3f}]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="experiments/configs/paper.toml")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--versus", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    def federation(overrides: list[str], ideal: bool):
        config = load_config(args.config, [*args.set, *overrides])
        config = replace(
            config,
            training=replace(config.training, precision=args.precision),
            output=replace(config.output, progress=False),
        )
        return config, build_federation(config, ideal_link=ideal)[0]

    config, real = federation([], False)
    runs = {"real": real, "ideal link": federation([], True)[1]}
    if args.versus:
        runs["versus"] = federation(args.versus, False)[1]
    rngs = {name: np.random.default_rng(config.training.seed) for name in runs}
    for t in range(2):
        for name, algorithm in runs.items():
            algorithm.train_clients(t, rngs[name])
    times: dict[str, list[float]] = {name: [] for name in runs}
    order = np.random.default_rng(1)
    for t in range(2, 2 + args.rounds):
        names = list(runs)
        order.shuffle(names)
        faults = {}
        for name in names:
            before, start = minor_faults(), time.perf_counter()
            runs[name].train_clients(t, rngs[name])
            times[name].append(time.perf_counter() - start)
            faults[name] = minor_faults() - before
        print(
            f"round {t}: "
            + ", ".join(f"{n} {times[n][-1]:.3f} s ({faults[n]} page faults)" for n in runs),
            flush=True,
        )
    ideal = np.array(times["ideal link"])
    print(
        f"{args.precision}, link XLA {config.link.jit_compile}; mean and 95 % interval over "
        f"{args.rounds} rounds:"
    )
    for name in runs:
        print(f"  {name:<12} {np.mean(times[name]):.3f} s")
    print(f"  link share (real - ideal), real        {_interval(list(1 - ideal / times['real']))}")
    if args.versus:
        versus = np.array(times["versus"])
        label = " ".join(args.versus)
        print(f"  link share (real - ideal), {label}  {_interval(list(1 - ideal / versus))}")
        ratio = list(np.array(times["real"]) / versus)
        print(f"  real round / round with {label}  {_interval(ratio)}")


if __name__ == "__main__":
    main()
