"""95% confidence intervals for the book's empirical numbers: accuracies, risks, their differences, means.

* :func:`proportion`: a binomial proportion (an accuracy on n test points) with the Wilson score interval
  (Wilson, JASA 1927), which keeps its coverage near 0 and 1 where the Wald interval collapses.
* :func:`paired_difference`: the difference of two proportions measured on the *same* points (two models,
  per-example outcomes), with Newcombe's hybrid score interval for paired data (Newcombe, Stat. Med. 1998,
  "Improved confidence intervals for the difference between binomial proportions based on paired data",
  method 10), built from the two Wilson intervals and the correlation of the outcomes.
* :func:`difference`: the difference of two proportions from their values and sizes alone, with Newcombe's
  hybrid score interval for independent samples (Newcombe, Stat. Med. 1998, "Interval estimation for the
  difference between independent proportions", method 10). On two models evaluated on the same points the
  outcomes are positively correlated and this interval is wider than the paired one: a conservative stand-in
  where per-example outcomes are not kept.
* :func:`mean`: the mean of per-example values (a risk, a loss) with the normal interval mean +- z s /
  sqrt(n).

Every function returns an :class:`Estimate`, a value with its interval, which scales and shifts like a number
(``100 * (1 - accuracy)`` is the error in percent, its interval flipped accordingly).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["CONFIDENCE", "Estimate", "difference", "mean", "paired_difference", "proportion", "wilson"]

CONFIDENCE = 0.95
Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


@dataclass(frozen=True)
class Estimate:
    """A measured value with its 95% confidence interval [lo, hi], the number of points `n` it rests on and
    the name of the interval's method."""

    value: float
    lo: float
    hi: float
    n: int
    method: str

    def __post_init__(self) -> None:
        if not self.lo - 1e-12 <= self.value <= self.hi + 1e-12:
            raise ValueError(f"interval [{self.lo}, {self.hi}] does not contain the value {self.value}")

    def __float__(self) -> float:
        return float(self.value)

    def __mul__(self, factor: float) -> Estimate:
        a, b = self.lo * factor, self.hi * factor
        return replace(self, value=self.value * factor, lo=min(a, b), hi=max(a, b))

    __rmul__ = __mul__

    def __add__(self, shift: float) -> Estimate:
        return replace(self, value=self.value + shift, lo=self.lo + shift, hi=self.hi + shift)

    __radd__ = __add__

    def __neg__(self) -> Estimate:
        return self * -1.0

    def __sub__(self, shift: float) -> Estimate:
        return self + (-shift)

    def __rsub__(self, other: float) -> Estimate:
        return (-self) + other

    def excludes(self, value: float = 0.0) -> bool:
        """Whether `value` lies outside the interval."""
        return value < self.lo or value > self.hi


def _outcomes(outcomes) -> np.ndarray:
    array = np.asarray(outcomes.detach().cpu() if hasattr(outcomes, "detach") else outcomes)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"per-example outcomes must be a non-empty 1-D array, got shape {array.shape}")
    if array.dtype != bool:
        if not np.isin(array, (0, 1)).all():
            raise ValueError("per-example outcomes must be booleans (or 0/1): True where the example counts")
        array = array.astype(bool)
    return array


def _count(successes: float, n: int) -> int:
    """`successes` as a count: an integer, or a fraction of n (an accuracy) that k / n reproduces."""
    if n < 1:
        raise ValueError(f"a proportion needs n >= 1 points, got n = {n}")
    if isinstance(successes, (int, np.integer)):
        k = int(successes)
    else:
        if not 0.0 <= successes <= 1.0:
            raise ValueError(f"a fraction must lie in [0, 1], got {successes} (pass a count as an int)")
        k = round(successes * n)
        if abs(k - successes * n) > 1e-6 * max(n, 1):
            raise ValueError(f"{successes} is not a fraction k / {n}; pass the count or the "
                             "per-example outcomes")
    if not 0 <= k <= n:
        raise ValueError(f"count {k} outside [0, {n}]")
    return k


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of the proportion k / n."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def proportion(successes, n: int | None = None) -> Estimate:
    """A proportion with its Wilson interval, from per-example outcomes (booleans, `n` omitted) or from a
    count or fraction of `n` points: ``proportion(correct)``, ``proportion(0.968, 3000)``."""
    if n is None:
        outcomes = _outcomes(successes)
        k, n = int(outcomes.sum()), len(outcomes)
    else:
        k = _count(successes, n)
    lo, hi = wilson(k, n)
    return Estimate(k / n, lo, hi, n, "Wilson")


def paired_difference(a, b) -> Estimate:
    """p_a - p_b for two per-example outcome vectors on the same points, with Newcombe's paired interval
    (method 10): the Wilson intervals of p_a and p_b combined through the phi correlation of the outcomes."""
    a, b = _outcomes(a), _outcomes(b)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes must have the same length, got {len(a)} and {len(b)}")
    n = len(a)
    both, only_a, only_b = int((a & b).sum()), int((a & ~b).sum()), int((~a & b).sum())
    neither = n - both - only_a - only_b
    p1, p2 = (both + only_a) / n, (both + only_b) / n
    l1, u1 = wilson(both + only_a, n)
    l2, u2 = wilson(both + only_b, n)
    margins = (both + only_a) * (neither + only_b) * (both + only_b) * (neither + only_a)
    phi = (both * neither - only_a * only_b) / math.sqrt(margins) if margins else 0.0
    d = p1 - p2
    below = math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    above = math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return Estimate(d, max(-1.0, d - below), min(1.0, d + above), n, "Newcombe paired")


def difference(p1: float, n1: int, p2: float, n2: int) -> Estimate:
    """p1 - p2 for two proportions (fractions of n1 and n2 points) with Newcombe's hybrid score interval for
    independent samples; on the same points it is conservative (see the module docstring)."""
    k1, k2 = _count(p1, n1), _count(p2, n2)
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p1 - p2
    return Estimate(d, d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2), min(n1, n2),
                    "Newcombe unpaired")


def mean(values: Sequence[float] | np.ndarray, *, lower: float | None = None) -> Estimate:
    """The mean of per-example values with the normal interval mean +- 1.96 s / sqrt(n), cut at `lower` (the
    least value the quantity can take, e.g. 0 for a risk)."""
    array = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=float)
    if array.ndim != 1 or array.size < 2:
        raise ValueError(f"a mean's interval needs a 1-D array of at least 2 values, got shape {array.shape}")
    m = float(array.mean())
    half = Z95 * float(array.std(ddof=1)) / math.sqrt(array.size)
    lo = m - half if lower is None else max(lower, m - half)
    return Estimate(m, lo, m + half, int(array.size), "normal")
