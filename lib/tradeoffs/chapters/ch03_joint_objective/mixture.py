"""Suggala et al., *Revisiting Adversarial Risk* (paper 003), Sec. 5: the Gaussian mixture case study.

The model: y = +-1 with probability 1/2 each and x | y ~ N(y theta*, sigma^2 I_p); the Bayes optimal
rule is g(x) = sign(theta*^T x). A linear classifier is f_w(x) = w^T x (sign(a) = 1 if a > 0, else -1),
and perturbations are measured in the l_inf norm. Two adversarial risks are compared:

* the usual one, G_adv(f) = E sup_{||delta|| <= eps} l01(f(x + delta), y), which counts every point the
  attack can misclassify, even where the true label changes inside the ball;
* the paper's Definition 2, R_adv(f) = E sup_{||delta|| <= eps, g(x + delta) = g(x)}
  [l01(f(x + delta), g(x)) - l01(f(x), g(x))], w.r.t. the base classifier g: only perturbations that the
  base classifier ignores, and only points where f agrees with g, count.

``classification_risk``, ``usual_adversarial_risk`` and ``adversarial_risk_bound`` are Theorem 1's three
closed forms. ``adversarial_risk_mc`` computes R_adv exactly for each sampled point (a two-constraint
linear program over the l_inf box, solved in closed form by duality) so that Theorem 1's bound and the
corollaries are checked against the definition, not against the proofs. The low-dimensional mixture of
Corollary 4 (noise only on the support of theta*) is ``Mixture(..., low_dimensional=True)``.

Risks are fractions in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

Phi = norm.cdf


@dataclass(frozen=True)
class Mixture:
    """x | y ~ N(y theta, sigma^2 I) (or N(y theta, sigma^2 diag(1[theta_i != 0])) if low_dimensional)."""

    theta: np.ndarray
    sigma: float = 1.0
    low_dimensional: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "theta", np.asarray(self.theta, dtype=float))
        if self.theta.ndim != 1 or not np.any(self.theta):
            raise ValueError("theta must be a non-zero vector")
        if self.sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")

    @property
    def p(self) -> int:
        return self.theta.shape[0]

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n draws (x [n, p], y [n] in {-1, +1})."""
        y = rng.choice(np.array([-1.0, 1.0]), size=n)
        if self.low_dimensional:
            support = np.flatnonzero(self.theta)
            x = np.zeros((n, self.p))
            noise = self.sigma * rng.standard_normal((n, support.size))
            x[:, support] = y[:, None] * self.theta[support] + noise
        else:
            x = y[:, None] * self.theta + self.sigma * rng.standard_normal((n, self.p))
        return x, y


def sign(a: np.ndarray) -> np.ndarray:
    """The paper's sign: 1 if a > 0, else -1."""
    return np.where(np.asarray(a) > 0, 1.0, -1.0)


# -- Theorem 1: the three closed forms --------------------------------------------------------------------


def classification_risk(w: np.ndarray, theta: np.ndarray, sigma: float = 1.0) -> float:
    """Theorem 1.1: R_01(f_w) = Phi(-w^T theta* / (sigma ||w||_2))."""
    w, theta = np.asarray(w, float), np.asarray(theta, float)
    return float(Phi(-(w @ theta) / (sigma * np.linalg.norm(w))))


def usual_adversarial_risk(w: np.ndarray, theta: np.ndarray, eps: float | np.ndarray,
                           sigma: float = 1.0) -> float | np.ndarray:
    """Theorem 1.2: G_adv(f_w) = Phi((||w||_1 eps - w^T theta*) / (sigma ||w||_2)) (l_inf perturbations)."""
    w, theta = np.asarray(w, float), np.asarray(theta, float)
    return Phi((np.abs(w).sum() * np.asarray(eps) - w @ theta) / (sigma * np.linalg.norm(w)))


def adversarial_risk_bound(w: np.ndarray, theta: np.ndarray, eps: float | np.ndarray,
                           sigma: float = 1.0) -> float | np.ndarray:
    """Theorem 1.3: R_adv(f_w) <= Phi((||w - theta*||_1 eps - (w - theta*)^T theta*) / (sigma ||w -
    theta*||_2)).

    (For w = theta* the right-hand side is undefined; R_adv(f_theta*) = 0 there.)
    """
    v = np.asarray(w, float) - np.asarray(theta, float)
    return Phi((np.abs(v).sum() * np.asarray(eps) - v @ theta) / (sigma * np.linalg.norm(v)))


# -- Definition 2, exactly, per sampled point ---------------------------------------------------------------


def attackable(w: np.ndarray, theta: np.ndarray, x: np.ndarray, eps: float) -> np.ndarray:
    """For each row of x: is there ||delta||_inf <= eps with g(x + delta) = g(x) and sign(f_w(x + delta)) !=
    g(x)?

    With g = sign(theta^T x) and m = g theta^T x > 0 (points with m = 0 have measure zero), the best
    attack solves  min_delta g w^T delta  s.t.  g theta^T delta >= -m, ||delta||_inf <= eps.  By LP duality
    its value is  -min_{mu >= 0} [mu m + eps ||w - mu theta||_1],  a convex piecewise-linear problem in mu
    whose minimum lies at mu = 0 or at a breakpoint mu = w_i / theta_i > 0. So the point can be flipped iff
    g w^T x < min over those mu of (mu m + eps ||w - mu theta||_1).
    """
    x = np.atleast_2d(np.asarray(x, float))
    return attackable_scores(w, theta, x @ np.asarray(w, float), x @ np.asarray(theta, float), eps)


def attackable_scores(w: np.ndarray, theta: np.ndarray, score: np.ndarray, base: np.ndarray,
                      eps: float) -> np.ndarray:
    """``attackable`` from the two projections score = w^T x and base = theta^T x (all that the answer depends
    on)."""
    w, theta = np.asarray(w, float), np.asarray(theta, float)
    nz = theta != 0
    ratios = w[nz] / theta[nz]
    mus = np.concatenate([[0.0], np.unique(ratios[ratios > 0])])
    l1 = np.array([np.abs(w - mu * theta).sum() for mu in mus])  # ||w - mu theta||_1 per breakpoint
    g = sign(base)
    m = g * base
    cost = np.full(m.shape[0], np.inf)
    for start in range(0, mus.size, 256):  # chunks keep memory at n x 256
        chunk = slice(start, start + 256)
        cost = np.minimum(cost, (m[:, None] * mus[None, chunk] + eps * l1[None, chunk]).min(axis=1))
    # strict: at equality the cheapest attack lands on g's boundary (theta^T (x + delta) = 0), which
    # Definition 2 excludes; the relative slack absorbs rounding when w is parallel to theta (then the two
    # sides are equal)
    return g * score < cost - 1e-9 * (1 + np.abs(cost))


def sample_scores(w: np.ndarray, mixture: Mixture, n: int, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n draws of (w^T x, theta^T x, y) without forming x: given y, the two projections are jointly Gaussian
    with mean y (w^T theta, ||theta||^2) and covariance sigma^2 [[w_N^T w_N, w_N^T theta], [., ||theta||^2]],
    where N is the set of noisy coordinates (all of them, or the support of theta for a low-dimensional
    mixture)."""
    w, theta = np.asarray(w, float), mixture.theta
    noisy = theta != 0 if mixture.low_dimensional else np.ones(mixture.p, dtype=bool)
    wn, tn = w[noisy], theta[noisy]
    cov = mixture.sigma**2 * np.array([[wn @ wn, wn @ tn], [wn @ tn, tn @ tn]])
    y = rng.choice(np.array([-1.0, 1.0]), size=n)
    noise = rng.multivariate_normal(np.zeros(2), cov, size=n, method="eigh")
    return y * (w @ theta) + noise[:, 0], y * (theta @ theta) + noise[:, 1], y


def monte_carlo_risks(w: np.ndarray, mixture: Mixture, eps: float, n: int,
                      rng: np.random.Generator) -> dict[str, float]:
    """Monte Carlo estimates of R_01, G_adv (usual, l_inf) and R_adv (Definition 2, g Bayes) of f_w on n
    draws.

    G_adv uses the exact worst case of a linear classifier, delta = -eps y sign(w); R_adv uses ``attackable``
    on the points where f_w agrees with g. Draws are made in the two projections (``sample_scores``).
    """
    w = np.asarray(w, float)
    score, base, y = sample_scores(w, mixture, n, rng)
    agrees = sign(score) == sign(base)
    return {
        "classification": float(np.mean(sign(score) != y)),
        "usual_adversarial": float(np.mean(y * score - eps * np.abs(w).sum() <= 0)),
        "adversarial": float(np.mean(agrees & attackable_scores(w, mixture.theta, score, base, eps))),
    }


def monte_carlo_tolerance(n: int, z: float = 4.0) -> float:
    """z standard errors of a Monte Carlo fraction at its worst (p = 1/2): z / (2 sqrt(n))."""
    return z * 0.5 / math.sqrt(n)


def random_instance(p: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """A random (w, theta*, sigma) for the Theorem 1 check: theta* ~ N(0, I/p) scaled to a random norm in
    [0.5, 3], w = theta* + noise of comparable size (so the risks are neither 0 nor 1/2), sigma in [0.5,
    2]."""
    theta = rng.standard_normal(p)
    theta *= rng.uniform(0.5, 3.0) / np.linalg.norm(theta)
    w = theta + rng.uniform(0.2, 1.5) * np.linalg.norm(theta) * rng.standard_normal(p) / math.sqrt(p)
    return w, theta, float(rng.uniform(0.5, 2.0))


# -- Corollary 2 ---------------------------------------------------------------------------------------------


def corollary2_vectors(p: int) -> tuple[np.ndarray, np.ndarray]:
    """theta* = [1, 1/sqrt(p-1), ..., 1/sqrt(p-1)] and theta~ = e_1 of Corollary 2."""
    theta = np.full(p, 1 / math.sqrt(p - 1))
    theta[0] = 1.0
    tilde = np.zeros(p)
    tilde[0] = 1.0
    return theta, tilde


def corollary2_threshold(p: int | np.ndarray, sigma: float = 1.0) -> float | np.ndarray:
    """The eps above which G_adv(f_theta~) < G_adv(f_theta*) (Corollary 2 holds only there).

    From Theorem 1.2: G(theta*) = Phi(((1 + sqrt(p-1)) eps - 2) / (sqrt 2 sigma)) and G(theta~) = Phi((eps -
    1) / sigma); the first exceeds the second iff eps > (2 - sqrt 2) / (1 + sqrt(p - 1) - sqrt 2). (sigma
    cancels.)
    """
    p = np.asarray(p, dtype=float)
    return (2 - math.sqrt(2)) / (1 + np.sqrt(p - 1) - math.sqrt(2))


def corollary2_risks(p: int | np.ndarray, eps: float | np.ndarray,
                     sigma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(G_adv(f_theta*), G_adv(f_theta~)) of Corollary 2 by Theorem 1.2, vectorized over p and eps:
    Phi(((1 + sqrt(p-1)) eps - 2) / (sqrt 2 sigma)) and Phi((eps - 1) / sigma)."""
    p, eps = np.asarray(p, dtype=float), np.asarray(eps, dtype=float)
    return Phi(((1 + np.sqrt(p - 1)) * eps - 2) / (math.sqrt(2) * sigma)), Phi((eps - 1) / sigma)


# -- Corollary 3 ---------------------------------------------------------------------------------------------


def corollary3_instance(p: int, s: int, norm_sq: float,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(theta*, w) of Corollary 3: theta* s-sparse (random direction on its first s coordinates) with
    ||theta*||_2^2 = norm_sq, and w = theta* on those coordinates, random +-1/sqrt(p - s) elsewhere."""
    theta = np.zeros(p)
    head = rng.standard_normal(s)
    theta[:s] = head * math.sqrt(norm_sq) / np.linalg.norm(head)
    w = theta.copy()
    w[s:] = rng.choice(np.array([-1.0, 1.0]), size=p - s) / math.sqrt(p - s)
    return theta, w


def corollary3_eps(norm_sq: float, p: int | np.ndarray, s: int) -> float | np.ndarray:
    """The perturbation size of Corollary 3 (and 4): eps = 2 ||theta*||_2^2 / sqrt(p - s)."""
    return 2 * norm_sq / np.sqrt(np.asarray(p, dtype=float) - s)


def corollary3_excess_risk(norm_sq: float, sigma: float = 1.0) -> float:
    """App. C: R_01(f_w) - R*_01 = Phi(-||theta*||^2 / (sigma sqrt(||theta*||^2 + 1))) - Phi(-||theta*|| /
    sigma)."""
    return float(Phi(-norm_sq / (sigma * math.sqrt(norm_sq + 1))) - Phi(-math.sqrt(norm_sq) / sigma))


def corollary3_proof_bound(norm_sq: float, sigma: float = 1.0) -> float:
    """App. C's value of the adversarial risk at eps = 2 ||theta*||^2 / sqrt(p - s) (||alpha||_2 = 1):
    2 Phi(||theta*||^2 / (sigma sqrt(1 + ||theta*||^2))) - 1 (the proof counts points where f_w agrees with y,
    not with g, so this is not a bound on Definition 2 in general)."""
    return float(2 * Phi(norm_sq / (sigma * math.sqrt(1 + norm_sq))) - 1)


# -- Corollary 4: gradient descent on a low-dimensional mixture ---------------------------------------------


def gradient_descent_logistic(x: np.ndarray, y: np.ndarray, theta0: np.ndarray, *, steps: int,
                              lr: float) -> np.ndarray:
    """Full-batch gradient descent on the empirical logistic risk (1/n) sum log(1 + exp(-y theta^T x)) from
    theta0 (Corollary 4; no bias, no regularization), in float32. Returns the final iterate (float64)."""
    x32, y32 = np.asarray(x, np.float32), np.asarray(y, np.float32)
    theta = np.asarray(theta0, np.float32).copy()
    for _ in range(steps):
        margin = y32 * (x32 @ theta)
        weights = y32 * (0.5 * (1 - np.tanh(margin / 2)))  # y * sigmoid(-margin), overflow-free
        theta -= np.float32(lr) * -(weights @ x32) / np.float32(x32.shape[0])
    return theta.astype(np.float64)


def corollary4_run(p: int, s: int, theta_norm: float, *, n: int, steps: int, lr: float,
                   rng: np.random.Generator, sigma: float = 1.0) -> dict:
    """Corollary 4's experiment: theta* s-sparse with ||theta*|| = theta_norm, n training points of the
    low-dimensional mixture, theta0 ~ N(0, I / (p - s)) (so ||theta0_Sc||_2 ~ 1, as App. D uses), gradient
    descent on the logistic risk. Returns the mixture, theta0 and theta_hat."""
    theta = np.zeros(p)
    head = rng.standard_normal(s)
    theta[:s] = head * theta_norm / np.linalg.norm(head)
    mixture = Mixture(theta, sigma, low_dimensional=True)
    x, y = mixture.sample(n, rng)
    # gradient descent runs in float32: start from a float32-representable point
    theta0 = (rng.standard_normal(p) / math.sqrt(p - s)).astype(np.float32).astype(np.float64)
    theta_hat = gradient_descent_logistic(x, y, theta0, steps=steps, lr=lr)
    return {"mixture": mixture, "theta0": theta0, "theta_hat": theta_hat}
