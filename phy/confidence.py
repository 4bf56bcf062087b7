"""Monte-Carlo 95 % intervals of link measurements, from their independent slots.

What this module may touch: nothing but numbers (numpy and scipy.stats).

Within one slot every sample sees the same channel realisation, so samples are
not independent draws: under block fading a point's precision is set by the
number of slots (independent fades), not of samples. Both intervals therefore
treat the slot as the unit:

* :func:`ratio_interval` (feature NMSE): the ratio estimate sum(err) / sum(power)
  over slots, with a Student-t interval (n - 1 degrees of freedom) from the
  linearised variance of a ratio of per-slot sums;
* :func:`proportion_interval` (BER): a Wilson score interval whose sample size
  is the number of bits divided by the design effect, the per-slot variance of
  the error rate over what independent bits would give; with no errors (no
  variance to see) the bits count as independent.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

CONFIDENCE = 0.95


def _ratio_standard_error(num: np.ndarray, den: np.ndarray, estimate: float) -> float:
    """Standard error of sum(num) / sum(den) over n >= 2 independent slots (linearised)."""
    n = num.size
    residual = num - estimate * den
    return math.sqrt(float(np.sum(residual**2)) / (n * (n - 1))) / float(den.mean())


def ratio_interval(
    numerators: ArrayLike, denominators: ArrayLike, confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """sum(numerators) / sum(denominators) with its interval over n independent slots.

    Input
    -----
    numerators, denominators : [n] float
        Per-slot sums (e.g. squared error and power of the slot's samples).
    confidence : float

    Output
    ------
    : (estimate, low, high), floats; low is clipped at 0; low and high are NaN
      for a single slot.
    """
    num = np.asarray(numerators, dtype=np.float64)
    den = np.asarray(denominators, dtype=np.float64)
    estimate = float(num.sum() / den.sum())
    if num.size < 2:
        return estimate, math.nan, math.nan
    se = _ratio_standard_error(num, den, estimate)
    half = float(stats.t.ppf(0.5 + confidence / 2, num.size - 1)) * se
    return estimate, max(0.0, estimate - half), estimate + half


def proportion_interval(
    errors: ArrayLike, trials: ArrayLike, confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """Error rate sum(errors) / sum(trials) with a Wilson interval over clustered trials.

    Input
    -----
    errors, trials : [n] int or float
        Per-slot error and bit counts.
    confidence : float

    Output
    ------
    : (estimate, low, high), floats in [0, 1]
    """
    err = np.asarray(errors, dtype=np.float64)
    bits = np.asarray(trials, dtype=np.float64)
    total = float(bits.sum())
    p = float(err.sum()) / total
    effective = total
    if err.size >= 2 and 0.0 < p < 1.0:
        design_effect = _ratio_standard_error(err, bits, p) ** 2 / (p * (1.0 - p) / total)
        effective = total / max(1.0, design_effect)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    z2n = z * z / effective
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / effective + z2n / (4 * effective)) / (1 + z2n)
    return p, max(0.0, centre - half), min(1.0, centre + half)
