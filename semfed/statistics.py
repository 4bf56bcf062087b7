"""Statistics across seeds: means with Student-t intervals and paired differences.

A comparison of schemes is made over seeds that are *paired*: seed index i of
every scheme shares the split, the batch order and the channel draws (see
``semfed sweep --seeds``). The difference between two schemes is then taken
seed by seed, which removes the variance the seeds share (an easy split is easy
for every scheme), and tested with a paired t-test.

Every interval is a 95 % Student-t interval, mean +- t(0.975, n - 1) * s / sqrt(n):
the range that covers the true mean over seeds in 95 % of repetitions of the
experiment, if the per-seed results are roughly normal. With n = 5 seeds the
factor t is 2.78, so the interval is wide; n = 1 gives no interval (NaN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """n values: their mean, sample standard deviation and 95 % interval of the mean."""

    n: int
    mean: float
    std: float
    low: float
    high: float


def mean_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean, standard deviation (ddof = 1) and Student-t interval of ``values``.

    NaN std and interval for a single value; ValueError for none.
    """
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], np.float64)
    if x.size == 0:
        raise ValueError("no values")
    mean = float(x.mean())
    if x.size < 2:
        return Interval(1, mean, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1)) * std / math.sqrt(x.size)
    return Interval(int(x.size), mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class PairedDifference:
    """Per-pair differences a_i - b_i: their mean, 95 % interval and the two-sided
    p-value of the paired t-test (H0: mean difference 0)."""

    n: int
    mean: float
    low: float
    high: float
    p_value: float


def paired_difference(
    a: Sequence[float], b: Sequence[float], level: float = LEVEL
) -> PairedDifference:
    """Paired comparison of ``a`` with ``b`` (same length, pair i = seed index i)."""
    from scipy import stats

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("paired samples need the same, non-zero length")
    d = mean_interval(a - b, level)
    if a.size < 2:
        return PairedDifference(1, d.mean, math.nan, math.nan, math.nan)
    if d.std == 0:  # identical differences: the t statistic is undefined
        return PairedDifference(d.n, d.mean, d.mean, d.mean, 1.0 if d.mean == 0 else 0.0)
    p = float(stats.ttest_rel(a, b).pvalue)
    return PairedDifference(d.n, d.mean, d.low, d.high, p)


def welch_difference(
    a: Sequence[float], b: Sequence[float], level: float = LEVEL
) -> PairedDifference:
    """Unpaired comparison of ``a`` with ``b`` (e.g. one scheme at K = 5 and at K = 20,
    whose splits differ): mean(a) - mean(b), Welch's interval with
    Welch-Satterthwaite degrees of freedom, and Welch's two-sided t-test p-value.
    ``n`` is the smaller sample size; NaN interval when either has one value."""
    from scipy import stats

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("no values")
    diff = float(a.mean() - b.mean())
    n = int(min(a.size, b.size))
    if n < 2:
        return PairedDifference(n, diff, math.nan, math.nan, math.nan)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se2 = va + vb
    if se2 == 0:
        return PairedDifference(n, diff, diff, diff, 1.0 if diff == 0 else 0.0)
    df = se2**2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(se2)
    p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return PairedDifference(n, diff, diff - half, diff + half, p)


__all__ = [
    "Interval",
    "PairedDifference",
    "mean_interval",
    "paired_difference",
    "welch_difference",
]
