"""When has a learning curve converged? The rule of ``experiments`` at medium scale.

A scheme has converged at round R when the mean accuracy over seeds changes by
less than ``tol`` (1 point) over the last ``window`` (10) rounds. The curve is
the seed-mean of the evaluated rounds every seed has. One evaluation is noisy
(a K = 5 test set of 2500 images has a standard error near 1 point by itself),
so the level at R is the mean of the evaluations in the ``window`` rounds up to
R, (R - window, R]: the change is that level minus the level ``window`` rounds
earlier. At ``evaluation.every = 2`` both levels are means of 5 evaluations,
the same rounds as ``final_test_acc``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WINDOW = 10
TOL = 0.01


@dataclass(frozen=True)
class Convergence:
    last_round: int
    change: float | None  # m(last) - m(last - window); None: the curve is shorter than window
    converged: bool
    converged_from: int | None  # first round from which every later step is within tol


def mean_curve(curves: Sequence[Mapping[int, float]]) -> dict[int, float]:
    """The mean over curves at the rounds they all have (round -> accuracy)."""
    if not curves:
        return {}
    rounds = set(curves[0])
    for c in curves[1:]:
        rounds &= set(c)
    return {r: sum(c[r] for c in curves) / len(curves) for r in sorted(rounds)}


def _level(curve: Mapping[int, float], r: int, window: int) -> float | None:
    """Mean of the curve over the rounds in (r - window, r]; None if none."""
    values = [a for x, a in curve.items() if r - window < x <= r]
    return sum(values) / len(values) if values else None


def convergence(curve: Mapping[int, float], window: int = WINDOW, tol: float = TOL) -> Convergence:
    """The convergence of one (seed-mean) curve, ``{round: accuracy}``.

    ``change``: level(last) - level(last - window), where level(R) is the mean
    over the evaluated rounds in (R - window, R]; None while the curve has no
    evaluation ``window`` or more rounds before the last.
    ``converged``: ``|change| < tol``.
    ``converged_from``: the first evaluated round R such that at R and at every
    later evaluated round the change is under ``tol``.
    """
    if not curve:
        raise ValueError("an empty curve")
    rounds = sorted(curve)
    last = rounds[-1]
    steps = {}
    for r in rounds:
        if r - window < rounds[0]:
            continue  # no evaluation a whole window earlier
        before, now = _level(curve, r - window, window), _level(curve, r, window)
        if before is not None and now is not None:
            steps[r] = now - before
    change = steps.get(last)
    start = None
    for r in reversed([r for r in rounds if r in steps]):
        if abs(steps[r]) >= tol:
            break
        start = r
    return Convergence(
        last_round=last,
        change=change,
        converged=change is not None and abs(change) < tol,
        converged_from=start,
    )


__all__ = ["TOL", "WINDOW", "Convergence", "convergence", "mean_curve"]
