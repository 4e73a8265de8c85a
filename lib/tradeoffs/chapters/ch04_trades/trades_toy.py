"""The toy problems of TRADES (Zhang et al., ICML 2019): Sec. 2.4 / Table 1 and a Figure-1 picture.

Sec. 2.4's example: X ~ U[0, 1] and, for k = 0, 1, ..., ceil(1/(2 eps) - 1), Eq. (2),

    eta(x) = Pr(Y = 1 | X = x) = 0 on [2k eps, (2k+1) eps),   1 on ((2k+1) eps, (2k+2) eps].

A classifier on [0, 1] that is piecewise constant (a :class:`Piecewise` with finitely many breakpoints)
has natural, boundary and robust error (Sec. 2.2-2.3)

    R_nat = E 1{f(X) Y <= 0},   R_bdy = E 1{X in B(DB(f), eps), f(X) Y > 0},
    R_rob = E 1{exists X' in B(X, eps): f(X') Y <= 0},

with B(x, eps) = [x - eps, x + eps] ∩ [0, 1] (the instance space is [0, 1]) and
B(DB(f), eps) = {x : exists x' in B(x, eps), f(x) f(x') <= 0}. All three are exact here: every
indicator is constant between consecutive points of {0, 1, the breakpoints of eta and f, the breakpoints
of f shifted by +-eps}, so each error is a finite sum of segment lengths (:func:`errors`).
:func:`monte_carlo_errors` estimates the same three by sampling (X, Y) and searching the ball on a grid,
an independent check of the decomposition R_rob = R_nat + R_bdy (Eq. (1)).

Figure 1: a 2-D binary data set in [0, 1]^2 with a margin (:func:`figure1_data`), and the robust training
error of a 2-D model, found by a grid search of every l_inf square (:func:`grid_robust_error`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tradeoffs import attacks


@dataclass(frozen=True)
class Piecewise:
    """A piecewise-constant function on [0, 1]: ``values[i]`` on (breaks[i-1], breaks[i]).

    Used both for a classifier's sign (values in {-1, +1}) and for eta(x) = Pr(Y = 1 | x) (values in [0, 1]).
    ``breaks`` are sorted, strictly inside (0, 1); there is one more value than breakpoints.
    """

    breaks: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self):
        if len(self.values) != len(self.breaks) + 1:
            raise ValueError(f"need len(values) == len(breaks) + 1, got {len(self.values)} values and "
                             f"{len(self.breaks)} breaks")
        if any(not 0 < b < 1 for b in self.breaks) or list(self.breaks) != sorted(set(self.breaks)):
            raise ValueError(f"breaks must be distinct, sorted and inside (0, 1), got {self.breaks}")

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        """The value at x (at a breakpoint, the value to its right)."""
        return np.asarray(self.values)[np.searchsorted(self.breaks, x, side="right")]

    def segments(self) -> list[tuple[float, float, float]]:
        """(start, end, value) of every piece."""
        edges = (0.0, *self.breaks, 1.0)
        return [(edges[i], edges[i + 1], v) for i, v in enumerate(self.values)]


def toy_eta(eps: float) -> Piecewise:
    """eta(x) of Eq. (2): 0 on [2k eps, (2k+1) eps), 1 on ((2k+1) eps, (2k+2) eps], cut at x = 1."""
    if not 0 < eps <= 0.5:
        raise ValueError(f"eps must be in (0, 0.5], got {eps}")
    n = math.ceil(1 / eps - 1e-9)  # pieces of length eps (the last one possibly shorter)
    breaks = tuple(k * eps for k in range(1, n) if k * eps < 1 - 1e-12)
    return Piecewise(breaks, tuple(float(k % 2) for k in range(len(breaks) + 1)))


def bayes_classifier(eta: Piecewise) -> Piecewise:
    """sign(2 eta(x) - 1) with sign(0) = +1 (Sec. 2.1), adjacent equal pieces merged."""
    return _merged(eta.breaks, tuple(1.0 if 2 * v - 1 >= 0 else -1.0 for v in eta.values))


def constant_classifier(sign: float = 1.0) -> Piecewise:
    """The classifier that always outputs `sign` (the paper's all-one classifier for +1)."""
    return Piecewise((), (float(sign),))


def random_classifier(rng: np.random.Generator, pieces: int) -> Piecewise:
    """A classifier with `pieces` pieces at uniformly random breakpoints and random signs."""
    breaks = tuple(np.sort(rng.uniform(0, 1, pieces - 1)).tolist())
    return Piecewise(breaks, tuple(rng.choice([-1.0, 1.0], pieces).tolist()))


def errors(f: Piecewise, eta: Piecewise, eps: float) -> dict[str, float]:
    """Exact R_nat, R_bdy and R_rob (Sec. 2.2-2.3) of the classifier sign f under X ~ U[0, 1], eta.

    Each is computed from its own definition (none from the other two), so that
    R_rob = R_nat + R_bdy (Eq. (1)) is a check, not an identity of the code.
    """
    points = {0.0, 1.0, *eta.breaks, *f.breaks}
    points |= {min(max(b + s, 0.0), 1.0) for b in f.breaks for s in (-eps, eps)}
    points = np.array(sorted(points))
    lengths = np.diff(points)
    mids = (points[:-1] + points[1:]) / 2
    p_pos, sign = eta(mids), f(mids)                      # Pr(Y = +1 | x), f's sign at x
    has_neg, has_pos = _signs_in_ball(f, mids, eps)      # does B(x, eps) hold a point with f < 0 / f >= 0?
    p_agree = np.where(sign > 0, p_pos, 1 - p_pos)       # Pr(f(X) Y > 0 | x)
    in_boundary_nbhd = np.where(sign > 0, has_neg, has_pos)
    nat = np.sum(lengths * (1 - p_agree))
    bdy = np.sum(lengths * p_agree * in_boundary_nbhd)
    rob = np.sum(lengths * (p_pos * has_neg + (1 - p_pos) * has_pos))  # some x' in the ball with f(x') Y <= 0
    return {"nat": float(nat), "bdy": float(bdy), "rob": float(rob)}


def monte_carlo_errors(f: Piecewise, eta: Piecewise, eps: float, *, samples: int,
                       rng: np.random.Generator, grid: int = 401) -> dict[str, float]:
    """R_nat, R_bdy, R_rob estimated from `samples` draws of (X, Y), searching B(X, eps) on a grid.

    A brute-force counterpart of :func:`errors` (the search can only miss pieces shorter than the grid step).
    """
    x = rng.uniform(0, 1, samples)
    y = np.where(rng.uniform(0, 1, samples) < eta(x), 1.0, -1.0)
    fx = f(x)
    offsets = np.linspace(-eps, eps, grid)
    ball = np.clip(x[:, None] + offsets[None, :], 0, 1)
    f_ball = f(ball)
    rob = np.any(f_ball * y[:, None] <= 0, axis=1)
    bdy = np.any(f_ball * fx[:, None] <= 0, axis=1) & (fx * y > 0)
    return {"nat": float(np.mean(fx * y <= 0)), "bdy": float(np.mean(bdy)), "rob": float(np.mean(rob))}


def trades_objective(f: Piecewise, eta: Piecewise, eps: float, lam: float) -> float:
    """Objective (3) with the hinge loss phi(a) = max(1 - a, 0) for the score f(x) in {-1, +1}:

        E phi(f(X) Y) + E max_{X' in B(X, eps)} phi(f(X) f(X') / lam).

    The max is phi(-1/lam) where the ball holds a point of the other sign, phi(1/lam) elsewhere.
    """
    def phi(a):
        return np.maximum(1 - a, 0)

    points = {0.0, 1.0, *eta.breaks, *f.breaks}
    points |= {min(max(b + s, 0.0), 1.0) for b in f.breaks for s in (-eps, eps)}
    points = np.array(sorted(points))
    lengths, mids = np.diff(points), (points[:-1] + points[1:]) / 2
    p_pos, sign = eta(mids), f(mids)
    has_neg, has_pos = _signs_in_ball(f, mids, eps)
    natural = p_pos * phi(sign) + (1 - p_pos) * phi(-sign)
    crosses = np.where(sign > 0, has_neg, has_pos)
    regularizer = np.where(crosses, phi(-1 / lam), phi(1 / lam))
    return float(np.sum(lengths * (natural + regularizer)))


def _signs_in_ball(f: Piecewise, x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Whether [x - eps, x + eps] ∩ [0, 1] meets a piece of f with value < 0, and one with value >= 0."""
    lo, hi = np.maximum(x - eps, 0.0), np.minimum(x + eps, 1.0)
    has_neg, has_pos = np.zeros(len(x), bool), np.zeros(len(x), bool)
    for a, b, v in f.segments():
        meets = (a < hi) & (b > lo)
        if v < 0:
            has_neg |= meets
        else:
            has_pos |= meets
    return has_neg, has_pos


def _merged(breaks: tuple[float, ...], values: tuple[float, ...]) -> Piecewise:
    keep_breaks, keep_values = [], [values[0]]
    for b, v in zip(breaks, values[1:]):
        if v != keep_values[-1]:
            keep_breaks.append(b)
            keep_values.append(v)
    return Piecewise(tuple(keep_breaks), tuple(keep_values))


# ------------------------------------------------------------------------- Figure 1


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one CPU thread inside the block (restored after): the 2-D models of Figure 1 are so
    small that intra-op threads only add synchronization, which costs dearly on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def figure1_data(n: int, *, margin: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n points in [0.05, 0.95]^2, labelled by the side of the wave x2 = 0.5 + 0.15 sin(2 pi x1),
    none closer than `margin` (vertically) to it: a data set that a classifier can fit robustly for
    l_inf radii below about margin / 1.5. Returns x [n, 2] float32 and labels y in {0, 1} (int64).
    """
    rng = np.random.default_rng(seed)
    points, labels = [], []
    while len(points) < n:
        p = rng.uniform(0.05, 0.95, 2)
        gap = p[1] - (0.5 + 0.15 * np.sin(2 * np.pi * p[0]))
        if abs(gap) >= margin:
            points.append(p)
            labels.append(int(gap > 0))
    return torch.tensor(np.array(points), dtype=torch.float32), torch.tensor(labels)


@torch.no_grad()
def grid_robust_error(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                      grid: int = 41) -> float:
    """Fraction of the 2-D points (x, y) with some point of the l_inf square B(x, eps) ∩ [0, 1]^2
    misclassified, found by evaluating the model on a grid x grid lattice of the square."""
    offsets = torch.linspace(-eps, eps, grid, device=x.device)
    lattice = torch.stack(torch.meshgrid(offsets, offsets, indexing="ij"), -1).reshape(-1, 2)
    wrong = []
    with attacks.eval_mode(model):
        for xi, yi in zip(x, y):
            pred = model((xi + lattice).clamp(0, 1)).argmax(1)
            wrong.append(bool((pred != yi).any()))
    return float(np.mean(wrong))
