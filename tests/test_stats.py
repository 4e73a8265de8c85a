"""Confidence intervals of tradeoffs.stats against published values and their defining properties."""

import numpy as np
import pytest
from tradeoffs import stats


def test_wilson_matches_newcombe_1998_example():
    # Newcombe (1998a), Table I: 81/263, score interval 0.2553 to 0.3662
    est = stats.proportion(81, 263)
    assert (round(est.lo, 4), round(est.hi, 4)) == (0.2553, 0.3662)
    assert est.n == 263 and est.method == "Wilson"
    assert stats.proportion(0, 10).lo == 0.0 and stats.proportion(10, 10).hi == 1.0


def test_proportion_from_outcomes_fraction_or_count_agree():
    outcomes = np.r_[np.ones(90, bool), np.zeros(10, bool)]
    assert stats.proportion(outcomes) == stats.proportion(90, 100) == stats.proportion(0.9, 100)
    with pytest.raises(ValueError, match="not a fraction"):
        stats.proportion(0.905, 100)
    with pytest.raises(ValueError, match="booleans"):
        stats.proportion(np.array([0.5, 1.0]))


def test_unpaired_difference_matches_newcombe_1998_example():
    # Newcombe (1998b), Table II: 56/70 - 48/80, method 10: 0.0524 to 0.3339
    est = stats.difference(56 / 70, 70, 48 / 80, 80)
    assert est.value == pytest.approx(0.2)
    assert (round(est.lo, 4), round(est.hi, 4)) == (0.0524, 0.3339)


def test_paired_difference_is_narrower_for_correlated_outcomes_and_tight_at_identity():
    rng = np.random.default_rng(0)
    a = rng.random(2000) < 0.8
    b = a.copy()
    flip = rng.choice(2000, 60, replace=False)
    b[flip[:40]] = False          # b loses 40 examples a gets right ...
    b[flip[20:]] |= True          # ... and gains a few
    paired = stats.paired_difference(a, b)
    unpaired = stats.difference(a.mean(), 2000, b.mean(), 2000)
    assert paired.value == pytest.approx(a.mean() - b.mean())
    assert paired.lo < paired.value < paired.hi
    assert paired.hi - paired.lo < (unpaired.hi - unpaired.lo) / 2
    same = stats.paired_difference(a, a)
    assert same.value == 0 and same.lo <= 0 <= same.hi and same.hi - same.lo < 0.005  # no discordant pair
    with pytest.raises(ValueError, match="same length"):
        stats.paired_difference(a, b[:10])


def test_paired_difference_covers_the_truth():
    """About 95% of intervals contain the true difference (Monte Carlo, 400 draws of 500 pairs)."""
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(400):
        u = rng.random(500)
        a, b = u < 0.75, u < 0.70  # correlated outcomes, true difference 0.05
        b ^= rng.random(500) < 0.05
        truth = 0.75 - (0.70 * 0.95 + 0.30 * 0.05)
        est = stats.paired_difference(a, b)
        hits += est.lo <= truth <= est.hi
    assert 0.92 <= hits / 400 <= 0.98


def test_estimate_arithmetic_and_mean():
    acc = stats.proportion(968, 1000)
    err = 100 * (1 - acc)
    assert err.value == pytest.approx(3.2) and err.lo == pytest.approx(100 * (1 - acc.hi))
    assert err.hi == pytest.approx(100 * (1 - acc.lo)) and err.n == 1000
    m = stats.mean([1.0, 2.0, 3.0, 4.0])
    assert m.value == 2.5 and m.hi - m.value == pytest.approx(1.96 * np.std([1, 2, 3, 4], ddof=1) / 2,
                                                              rel=1e-3)
    assert stats.mean([0.0, 0.0, 0.0, 0.4], lower=0.0).lo == 0.0  # a risk cannot be negative
    assert (m - 2.5).excludes(2.0) and not (m - 2.5).excludes(0.0)
    with pytest.raises(ValueError):
        stats.mean([1.0])
