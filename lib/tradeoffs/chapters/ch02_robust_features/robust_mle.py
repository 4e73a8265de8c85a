"""Robust maximum-likelihood estimation of a Gaussian under an l2 adversary (Ilyas et al., paper 002, App. E).

Setting (App. E.1): the learner fits N(mu, Sigma) to samples of N(mu*, Sigma*), Sigma* diagonal, and
classifies with the linear rule x^T Sigma^-1 mu. Everything is diagonal, so a covariance is the vector
of its diagonal (``s`` for Sigma*, ``sigma`` for the learned Sigma). As in the appendix, the negative
log-likelihood's data term is the squared Mahalanobis distance v^T Sigma^-1 v, v = x - mu (the paper drops
the factor 1/2 and the log-determinant, which an adversary cannot change).

* Lemma 4 / Eq. (25): the robust covariance solves Sigma = I/lambda + Sigma*/2 + sqrt(Sigma*/lambda +
  Sigma*^2/4), with lambda fixed by the budget of the adversary M = (lambda Sigma - I)^-1 of Eq. (18),
  tr(Sigma* M^2) = E||M v||^2 = eps^2 (the definition of the set of adversaries in (13); Eq. (26) writes
  the right-hand side as eps). ``robust_covariance`` solves the two equations together.
* Theorem 2: the bounds on lambda (``theorem2_lambda_bounds``).
* Theorem 1: the loss a Lagrangian adversary max_delta l(x + delta) - C ||delta||^2 adds,
  tr[(I + (C Sigma* - I)^-1)^2] - d (``lagrangian_excess_loss``), and its Monte Carlo estimate with the
  adversary found by gradient ascent (``lagrangian_excess_loss_mc``).
* Theorem 3 / Lemma 8: the worst-case cosine between the classifier's gradient Sigma^-1 mu and mu,
  2 sqrt(kappa) / (1 + kappa) for a covariance of condition number kappa (``worst_case_cosine``).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from tradeoffs import store


def _multiplier_factor(lam: float, s: np.ndarray) -> np.ndarray:
    """lambda sigma_i - 1 for the sigma of Eq. (25): a/2 + sqrt(a + a^2/4), a = lambda s_i (always > 0)."""
    a = lam * s
    return a / 2 + np.sqrt(a + a**2 / 4)


def lemma4_covariance(s: np.ndarray, lam: float) -> np.ndarray:
    """Eq. (25): the diagonal of Sigma = I/lambda + Sigma*/2 + sqrt(Sigma*/lambda + Sigma*^2/4)."""
    s = np.asarray(s, dtype=float)
    return 1 / lam + s / 2 + np.sqrt(s / lam + s**2 / 4)


def adversary(s: np.ndarray, sigma: np.ndarray, lam: float) -> np.ndarray:
    """Eq. (18): the diagonal of the optimal perturbation operator M = (lambda Sigma - I)^-1."""
    return 1 / (lam * np.asarray(sigma, dtype=float) - 1)


def budget(s: np.ndarray, lam: float) -> float:
    """E||M v||^2 = tr(Sigma* M^2) of the adversary that goes with Eq. (25)'s Sigma at multiplier lambda."""
    s = np.asarray(s, dtype=float)
    return float(np.sum(s / _multiplier_factor(lam, s) ** 2))


def solve_lambda(s: np.ndarray, eps: float) -> float:
    """The multiplier lambda of Lemma 4 for the l2 budget eps: tr(Sigma* M^2) = eps^2.

    With Sigma from Eq. (25), lambda sigma_i - 1 = a/2 + sqrt(a + a^2/4) with a = lambda s_i, so the budget
    falls strictly from infinity (lambda -> 0) to 0 (lambda -> infinity): the root is unique.
    """
    if eps <= 0:
        return float("inf")
    s = np.asarray(s, dtype=float)
    target = np.log(eps**2)
    def f(log_lam: float) -> float:
        return np.log(budget(s, np.exp(log_lam))) - target

    lo, hi = -5.0, 5.0
    while f(lo) < 0:
        lo -= 5
    while f(hi) > 0:
        hi += 5
    return float(np.exp(optimize.brentq(f, lo, hi, xtol=1e-14, rtol=1e-14)))


def robust_covariance(s: np.ndarray, eps: float) -> tuple[np.ndarray, float]:
    """Lemma 4: the robust MLE covariance (diagonal) and its multiplier lambda for the l2 budget eps.

    eps = 0 gives the standard MLE, Sigma = Sigma*.
    """
    s = np.asarray(s, dtype=float)
    if eps <= 0:
        return s.copy(), float("inf")
    lam = solve_lambda(s, eps)
    return lemma4_covariance(s, lam), lam


def robust_objective(s: np.ndarray, sigma: np.ndarray, m: np.ndarray) -> float:
    """E_x[l(mu*, Sigma; x + M v)] of problem (13) with the factor 1/2 and the log-determinant kept:
    1/2 sum_i [s_i (1 + m_i)^2 / sigma_i + log sigma_i] (mu = mu*, so only the covariance matters)."""
    return float(0.5 * np.sum(np.asarray(s) * (1 + np.asarray(m)) ** 2 / sigma + np.log(sigma)))


def minimax_numerically(s: np.ndarray, eps: float) -> np.ndarray:
    """Problem (13) solved by brute force, independently of Lemma 4: an outer quasi-Newton minimization over
    log sigma, the inner maximization over diagonal M with E||Mv||^2 = eps^2 by SLSQP (Danskin: the outer
    gradient is the objective's gradient at the inner maximizer)."""
    s = np.asarray(s, dtype=float)

    def inner(sigma):
        start = np.full_like(s, eps / np.sqrt(s.sum()))
        result = optimize.minimize(lambda m: -robust_objective(s, sigma, m), start, method="SLSQP",
                                   jac=lambda m: -s * (1 + m) / sigma,
                                   constraints=[{"type": "eq", "fun": lambda m: np.sum(s * m**2) - eps**2,
                                                 "jac": lambda m: 2 * s * m}],
                                   options={"ftol": 1e-14, "maxiter": 500})
        return result.x

    def outer(log_sigma):
        sigma = np.exp(log_sigma)
        m = inner(sigma)
        grad = 0.5 * (-s * (1 + m) ** 2 / sigma + 1)  # d/dlog sigma_i
        return robust_objective(s, sigma, m), grad

    result = optimize.minimize(outer, np.log(s), jac=True, method="L-BFGS-B",
                               options={"gtol": 1e-10, "ftol": 1e-15})
    return np.exp(result.x)


def theorem2_lambda_bounds(s: np.ndarray, eps_trace: float) -> tuple[float, float]:
    """The explicit bounds on lambda in the proof of Theorem 2 (App. E.3.7), with eps_trace = tr(Sigma* M^2)
    (the quantity Eq. (26) calls eps):

        lower: d (1 + sqrt(eps')) / (2 sqrt(eps') (1 + eps') tr(Sigma*)),   eps = d sigma_min(Sigma*) eps'
        upper: (||Sigma*||_F + sqrt(eps sigma_min)) / (sigma_min^{3/2} sqrt(eps)).
    """
    s = np.asarray(s, dtype=float)
    d, smin = len(s), s.min()
    eps_prime = eps_trace / (d * smin)
    lower = d * (1 + np.sqrt(eps_prime)) / (2 * np.sqrt(eps_prime) * (1 + eps_prime) * s.sum())
    upper = (np.linalg.norm(s) + np.sqrt(eps_trace * smin)) / (smin**1.5 * np.sqrt(eps_trace))
    return float(lower), float(upper)


def lagrangian_excess_loss(s: np.ndarray, c: float) -> float:
    """Theorem 1: L_adv - L = tr[(I + (C Sigma* - I)^-1)^2] - d at the MLE (mu*, Sigma*), C > 1/sigma_min."""
    s = np.asarray(s, dtype=float)
    if c * s.min() <= 1:
        raise ValueError(f"Theorem 1 needs C > 1 / sigma_min(Sigma*) = {1 / s.min():.4g} "
                         f"(concavity), got C = {c}")
    return float(np.sum((1 + 1 / (c * s - 1)) ** 2) - len(s))


def lagrangian_excess_loss_mc(s: np.ndarray, c: float, n: int, rng: np.random.Generator,
                              steps: int = 200) -> tuple[float, float]:
    """Monte Carlo of Theorem 1: draw v ~ N(0, Sigma*), find each delta maximizing
    (v + delta)^T Sigma*^-1 (v + delta) - C ||delta||^2 by gradient ascent (not by the closed form), and
    average the increase of the Mahalanobis term. Returns (mean, standard error)."""
    s = np.asarray(s, dtype=float)
    v = rng.standard_normal((n, len(s))) * np.sqrt(s)
    delta = np.zeros_like(v)
    # The objective is concave with curvature 2 (C - 1/s_i) per coordinate; steps of 1/(2 C) converge
    # linearly at rate 1 - (C - 1/s_max)/C, hence `steps` large enough for sigma_min C near 1.
    step = 1 / (2 * c)
    for _ in range(steps):
        delta += step * (2 * (v + delta) / s - 2 * c * delta)
    excess = np.sum((v + delta) ** 2 / s, axis=1) - np.sum(v**2 / s, axis=1)
    return float(excess.mean()), float(excess.std(ddof=1) / np.sqrt(n))


def condition_number(sigma: np.ndarray) -> float:
    """kappa of a diagonal covariance."""
    sigma = np.asarray(sigma, dtype=float)
    return float(sigma.max() / sigma.min())


def worst_case_cosine(kappa: float | np.ndarray) -> float | np.ndarray:
    """Lemma 8: min over mu of cos(mu, A mu) for A positive definite with condition number kappa."""
    kappa = np.asarray(kappa, dtype=float)
    return 2 * np.sqrt(kappa) / (1 + kappa)


def worst_case_cosine_numerically(sigma: np.ndarray) -> float:
    """min over mu of cos(mu, Sigma^-1 mu), the alignment of the classifier's gradient with the class vector,
    by direct minimization over mu (for Theorem 3's check of Lemma 8)."""
    inv = 1 / np.asarray(sigma, dtype=float)

    def cosine(z):
        mu = z / np.linalg.norm(z)
        g = inv * mu
        return float(mu @ g / np.linalg.norm(g))

    # The minimum puts its weight on the largest and smallest eigen-directions: start there and polish.
    i, j = int(np.argmin(inv)), int(np.argmax(inv))
    best = 1.0
    for t in np.linspace(0.01, 0.99, 99):
        z = np.full(len(inv), 1e-6)
        z[i], z[j] = np.sqrt(1 - t), np.sqrt(t)
        best = min(best, cosine(z))
    rng = np.random.default_rng(0)
    for _ in range(3):
        result = optimize.minimize(cosine, np.abs(rng.standard_normal(len(inv))), method="Nelder-Mead",
                                   options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})
        best = min(best, result.fun)
    return best


def random_covariance(d: int, kappa: float, rng: np.random.Generator) -> np.ndarray:
    """A diagonal Sigma* with condition number exactly ``kappa`` (log-uniform spectrum, trace d)."""
    s = np.exp(np.r_[0.0, np.log(kappa),
                     rng.uniform(0, np.log(kappa), max(d - 2, 0))][:d]) if d > 1 else np.ones(1)
    return s * d / s.sum()


@store.memoized
def theorem2_grid(dims: tuple[int, ...], kappas: tuple[float, ...], eps_grid: np.ndarray, seed: int,
                  brute_force_dims: tuple[int, ...] = (2, 5)) -> list[dict]:
    """Lemma 4 and Theorem 2 on a grid of (d, kappa(Sigma*), eps): the multiplier lambda, Theorem 2's bounds
    on it (with tr(Sigma* M^2) = eps^2), the condition numbers of Sigma* and Sigma_r, the residual of Eq. (24)
    Sigma_r = Sigma* (I + M)^2, the budget residual, and for small d the largest relative difference from
    the brute-force minimax solution (the slow part: memoized, ``tradeoffs.store.memoized``). The random
    covariances are drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in dims:
        for kappa in kappas:
            s = random_covariance(d, kappa, rng)
            for eps in eps_grid:
                sigma, lam = robust_covariance(s, eps)
                m = adversary(s, sigma, lam)
                lower, upper = theorem2_lambda_bounds(s, eps**2)
                brute = (float(np.max(np.abs(minimax_numerically(s, eps) / sigma - 1)))
                         if d in brute_force_dims else None)
                rows.append({"d": d, "kappa": kappa, "eps": float(eps), "lambda": lam, "lower": lower,
                             "upper": upper, "kappa_star": condition_number(s),
                             "kappa_robust": condition_number(sigma),
                             "eq24_residual": float(np.max(np.abs(sigma / (s * (1 + m) ** 2) - 1))),
                             "budget_residual": abs(float(np.sum(s * m**2)) / eps**2 - 1),
                             "brute_force_gap": brute, "cos_standard": worst_case_cosine(condition_number(s)),
                             "cos_robust": worst_case_cosine(condition_number(sigma))})
    return rows
