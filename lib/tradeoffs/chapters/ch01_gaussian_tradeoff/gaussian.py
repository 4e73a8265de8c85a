"""Closed forms for the Gaussian models of the trade-off papers.

Two models live here, each with its closed forms and a sampler:

* ``TwoGaussians``: the two spherical Gaussians with unequal variances of
  *Towards Understanding the Trade-off Between Accuracy and Adversarial Robustness*
  (the two-Gaussians paper). Class y = -1 is N(mu1, sigma1^2 I), class y = +1 is N(mu2, sigma2^2 I).
  By Fact 5 the optimal hyperplanes are orthogonal to e12 = (mu2 - mu1) / ||mu2 - mu1||, so
  everything is a function of the position ``w`` where a hyperplane crosses the segment
  from mu1 (at w = 0) to mu2 (at w = ``distance``).
* ``TsiprasModel``: the distribution of Eq. (3) of Tsipras et al., *Robustness May Be at
  Odds with Accuracy* (paper 001): one robust feature x1 = +-y, and d non-robust features
  x2..x_{d+1} ~ N(eta y, 1).

Errors and accuracies are fractions in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy import optimize
from scipy.stats import norm

# -- the two-Gaussians paper: two Gaussians with unequal variances ---------------------------------------


@dataclass(frozen=True)
class TwoGaussians:
    """N(mu1, sigma1^2 I) against N(mu2, sigma2^2 I), with sigma1 < sigma2 and ||mu2 - mu1|| = distance."""

    sigma1: float
    sigma2: float
    distance: float

    def __post_init__(self) -> None:
        if not 0 < self.sigma1 < self.sigma2:
            raise ValueError(f"need 0 < sigma1 < sigma2 (the paper's convention), got {self.sigma1}, "
                             f"{self.sigma2}")
        if self.distance <= 0:
            raise ValueError(f"need ||mu2 - mu1|| > 0, got {self.distance}")


def standard_error(w: float | np.ndarray, model: TwoGaussians) -> float | np.ndarray:
    """beta(w) of App. A.1: 1/2 [phi((w - mu1)/sigma1) + phi((mu2 - w)/sigma2)], phi the Gaussian tail."""
    return robust_error(w, model, eps_p=0.0)


def robust_error(w: float | np.ndarray, model: TwoGaussians, eps_p: float) -> float | np.ndarray:
    """beta~(w) of App. A.1: the standard error with both classes pushed eps_p towards the hyperplane.

    eps_p is the distance constant: how far an attack of the given norm and radius can move a point
    along e12 (eps for an l2 attack, eps ||e12||_1 for an l_inf attack; see ``linf_distance_constant``).
    """
    w = np.asarray(w, dtype=float)
    tail = norm.sf
    return 0.5 * (tail((w - eps_p) / model.sigma1) + tail((model.distance - w - eps_p) / model.sigma2))


def robust_optimum(model: TwoGaussians, eps_p: float | np.ndarray) -> float | np.ndarray:
    """The B_eps-robust optimal boundary w~* of App. A.2 (the larger root of d beta~/dw = 0)."""
    s1, s2, mu = model.sigma1, model.sigma2, model.distance
    gap = s2**2 - s1**2
    centre = (s2**2 * eps_p - s1**2 * (mu - eps_p)) / gap
    spread = s1 * s2 * np.sqrt((mu - 2 * eps_p) ** 2 + gap * math.log(s2**2 / s1**2)) / gap
    return centre + spread


def standard_optimum(model: TwoGaussians) -> float:
    """The standard optimal boundary w* of App. A.2 (the robust optimum at eps_p = 0)."""
    return float(robust_optimum(model, eps_p=0.0))


def hyperplane_gap(model: TwoGaussians, eps_p: float | np.ndarray) -> float | np.ndarray:
    """||W~* - W*||: the distance between the robust and the standard optimal hyperplanes (App. A.2)."""
    return robust_optimum(model, eps_p) - standard_optimum(model)


def training_errors(model: TwoGaussians, eps_p: float, r_adv: float, delta_sigma: float,
                    convention: str = "paper") -> dict[str, tuple[float, float]]:
    """Table 1: (standard error, robust error) of the hyperplane each training method converges to.

    With infinite data (Sec. 4.1): standard training finds w*; adversarial training of radius r_adv
    finds w~*(r_adv) (Proposition 4); data-randomized training finds w* of the noise-augmented model.
    All errors are measured against the attack eps_p.
    """
    positions = {
        "standard_training": standard_optimum(model),
        "adversarial_training": float(robust_optimum(model, r_adv)),
        "data_randomized_training": standard_optimum(noise_augmented(model, delta_sigma, convention)),
    }
    return {method: (float(standard_error(w, model)), float(robust_error(w, model, eps_p)))
            for method, w in positions.items()}


def tradeoff_optimum(model: TwoGaussians, eps_p: float, lam: float) -> float:
    """W*_lambda = argmin_w beta(w) + lambda beta~(w), Eq. (1), found numerically.

    The search runs over the whole segment [mu1, mu2] (a grid, then a bounded refinement), not
    only between w* and w~*, so that Theorem 1 (W*_lambda lies between them) is checked, not assumed.
    """
    if lam < 0:
        raise ValueError(f"lambda must be >= 0, got {lam}")

    def objective(w):
        return standard_error(w, model) + lam * robust_error(w, model, eps_p)

    grid = np.linspace(0.0, model.distance, 4001)
    best = grid[np.argmin(objective(grid))]
    step = grid[1] - grid[0]
    lo, hi = max(0.0, best - step), min(model.distance, best + step)
    return float(optimize.minimize_scalar(objective, bounds=(lo, hi), method="bounded",
                                          options={"xatol": 1e-10}).x)


def lambda_at(w: float | np.ndarray, model: TwoGaussians, eps_p: float) -> float | np.ndarray:
    """lambda(w) of Theorem 6: the weight for which w is a stationary point of beta + lambda beta~.

    Defined for w in [w*, w~*], where it rises from 0 to +infinity.
    """
    w = np.asarray(w, dtype=float)

    def density_gap(shift):  # -sqrt(2 pi) * d beta/dw, evaluated with both classes shifted by `shift`
        s1, s2, mu = model.sigma1, model.sigma2, model.distance
        return (np.exp(-((w - shift) ** 2) / (2 * s1**2)) / s1
                - np.exp(-((mu - w - shift) ** 2) / (2 * s2**2)) / s2)

    with np.errstate(divide="ignore"):
        return -density_gap(0.0) / density_gap(eps_p)


def noise_augmented(model: TwoGaussians, delta_sigma: float, convention: str = "paper") -> TwoGaussians:
    """The model that data-randomized training (Sec. 4.1, Eq. (5)) effectively sees.

    ``convention="paper"``: App. B's sigma_i -> sigma_i + delta_sigma; Table 1 is computed this way.
    ``convention="gaussian"``: what adding delta ~ N(0, delta_sigma^2 I) to x really does,
    sigma_i -> sqrt(sigma_i^2 + delta_sigma^2) (a sum of independent Gaussians).
    """
    if convention == "paper":
        return replace(model, sigma1=model.sigma1 + delta_sigma, sigma2=model.sigma2 + delta_sigma)
    if convention == "gaussian":
        return replace(model, sigma1=math.hypot(model.sigma1, delta_sigma),
                       sigma2=math.hypot(model.sigma2, delta_sigma))
    raise ValueError(f"unknown convention {convention!r}; use 'paper' or 'gaussian'")


def noise_lambda(model: TwoGaussians, eps_p: float, delta_sigma: float | np.ndarray,
                 convention: str = "paper") -> np.ndarray:
    """The lambda that data-randomized training with noise delta_sigma implicitly picks (App. B).

    The noise moves the boundary from w* towards the midpoint; lambda(w) of Theorem 6 reads off which
    trade-off weight that position is optimal for. Past the limit Delta (``noise_limit``) the boundary
    overshoots w~* and no lambda in [0, inf] corresponds: those entries are inf.
    """
    delta_sigma = np.atleast_1d(np.asarray(delta_sigma, dtype=float))
    w = np.array([standard_optimum(noise_augmented(model, s, convention)) for s in delta_sigma])
    lam = np.maximum(lambda_at(w, model, eps_p), 0.0)  # >= 0 on [w*, w~*]; below 0 only by rounding at w*
    return np.where(w >= robust_optimum(model, eps_p), np.inf, lam)


def noise_limit(model: TwoGaussians, eps_p: float, convention: str = "paper") -> float:
    """Delta of App. B: the noise level at which data-randomized training reaches w~* (lambda = inf)."""
    target = robust_optimum(model, eps_p)
    if target >= model.distance / 2:  # the noisy boundary only moves up to the midpoint
        return math.inf

    def overshoot(s):
        return standard_optimum(noise_augmented(model, s, convention)) - target

    upper = 1.0
    while overshoot(upper) < 0:
        upper *= 2
    return float(optimize.brentq(overshoot, 0.0, upper, xtol=1e-10))


def linf_distance_constant(direction: np.ndarray, eps: float) -> np.ndarray:
    """eps_inf: how far an l_inf attack of radius eps moves a point along ``direction``.

    The largest projection of a perturbation with ||delta||_inf <= eps on the unit vector
    e = v / ||v||_2 is eps ||e||_1 (Hoelder). Works on a batch of directions (last axis).
    """
    direction = np.asarray(direction, dtype=float)
    return eps * np.abs(direction).sum(-1) / np.linalg.norm(direction, axis=-1)


def theorem2_lower_bound(model: TwoGaussians, d: int, eps: float) -> float:
    """Eq. (2): E ||W~* - W*|| >= (sigma2 - sigma1)/(sigma2 + sigma1) (d + 2)/(3 sqrt d) eps."""
    return (model.sigma2 - model.sigma1) / (model.sigma2 + model.sigma1) * (d + 2) / (3 * math.sqrt(d)) * eps


def theorem3_upper_bound(model: TwoGaussians, d: int, eps: float) -> float:
    """Eq. (3): ||W~* - W*|| <= (sigma2^2 + sigma1^2)/(sigma2^2 - sigma1^2) sqrt(d) eps."""
    s1, s2 = model.sigma1, model.sigma2
    return (s2**2 + s1**2) / (s2**2 - s1**2) * math.sqrt(d) * eps


def lemma7_bound(d: int) -> float:
    """Lemma 7: E ||X||_2 >= (d + 2) / (3 sqrt d) for X uniform on the l_inf unit sphere in R^d."""
    return (d + 2) / (3 * math.sqrt(d))


def uniform_on_linf_sphere(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """n points uniform on the surface of the cube [-1, 1]^d (the l_inf unit sphere).

    As in Lemma 7's proof: pick a face (coordinate and sign) uniformly, the rest uniform in (-1, 1).
    """
    points = rng.uniform(-1.0, 1.0, size=(n, d))
    face = rng.integers(0, d, size=n)
    points[np.arange(n), face] = rng.choice([-1.0, 1.0], size=n)
    return points


def linf_sphere_norms(n: int, d: int, rng: np.random.Generator,
                      chunk: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """||X||_2 and eps_inf / eps = ||X||_1 / ||X||_2 of n points X uniform on the l_inf unit sphere.

    (Generated in chunks of about `chunk` numbers, so that large n and d fit in memory.)
    """
    l2, ratio = [], []
    rows = max(1, chunk // d)
    for start in range(0, n, rows):
        x = uniform_on_linf_sphere(min(rows, n - start), d, rng)
        l2.append(np.linalg.norm(x, axis=1))
        ratio.append(linf_distance_constant(x, 1.0))
    return np.concatenate(l2), np.concatenate(ratio)


def check_theorems_2_3(sigma1: float, sigma2: float, dims: tuple[int, ...], eps_values: tuple[float, ...],
                       directions: int, rng: np.random.Generator) -> list[dict]:
    """Theorems 2 and 3 over d and eps, with ||mu2 - mu1|| = sqrt(d) as in Sec. 4.2.

    For each d, ``directions`` random e12 (uniform on the l_inf sphere, Theorem 2's assumption) give
    eps_inf = eps ||e12||_1 / ||e12||_2 and the exact gap ||W~* - W*|| from the closed forms. Theorem 2
    bounds the mean gap from below; Theorem 3 bounds every gap from above. Only eps <= 1 is used, the
    paper's assumption eps <= ||mu2 - mu1|| / sqrt(d).
    """
    rows = []
    for d in dims:
        model = TwoGaussians(sigma1, sigma2, math.sqrt(d))
        _, ratio = linf_sphere_norms(directions, d, rng)
        for eps in eps_values:
            gaps = hyperplane_gap(model, eps * ratio)
            rows.append({"d": d, "eps": eps, "mean_gap": float(gaps.mean()), "max_gap": float(gaps.max()),
                         "lower_bound": theorem2_lower_bound(model, d, eps),
                         "upper_bound": theorem3_upper_bound(model, d, eps)})
    return rows


def sample_two_gaussians(n: int, model: TwoGaussians, e12: torch.Tensor,
                         generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n balanced samples: mu1 = 0 and mu2 = distance * e12 in R^d; labels -1 (class 1) and +1 (class 2)."""
    d = e12.numel()
    y = torch.where(torch.arange(n) % 2 == 0, -1.0, 1.0)
    y = y[torch.randperm(n, generator=generator)]
    noise = torch.randn(n, d, generator=generator)
    sigma = torch.where(y < 0, model.sigma1, model.sigma2).unsqueeze(1)
    mean = (y > 0).float().unsqueeze(1) * model.distance * e12.unsqueeze(0)
    return mean + sigma * noise, y


def linear_errors(weight: torch.Tensor, bias: float, model: TwoGaussians, e12: torch.Tensor,
                  eps: float) -> tuple[float, float]:
    """Exact standard and l_inf-robust error of the classifier sign(weight . x + bias) on the model.

    For a linear classifier both are closed forms: weight . x is Gaussian in each class, and the
    worst l_inf perturbation of radius eps lowers every margin by eps ||weight||_1.
    """
    weight = weight.double().flatten()
    scale = weight.norm().item()
    signal = model.distance * torch.dot(weight, e12.double()).item()
    tail = norm.sf

    def error(shift):
        class1 = tail((-bias - shift) / (model.sigma1 * scale))           # x = mu1 + noise, mu1 = 0
        class2 = tail((signal + bias - shift) / (model.sigma2 * scale))
        return 0.5 * (class1 + class2)

    return float(error(0.0)), float(error(eps * weight.abs().sum().item()))


# -- paper 001: Tsipras et al., Eq. (3) ------------------------------------------------------------


@dataclass(frozen=True)
class TsiprasModel:
    """Eq. (3): y uniform in {-1, +1}; x1 = y w.p. p (else -y); x2..x_{d+1} i.i.d. N(eta y, 1)."""

    d: int
    eta: float
    p: float = 0.7

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """n samples x of shape [n, d + 1] and labels y in {-1, +1}."""
        y = torch.randint(0, 2, (n,), generator=generator).float() * 2 - 1
        agrees = torch.rand(n, generator=generator) < self.p
        x1 = torch.where(agrees, y, -y)
        rest = self.eta * y.unsqueeze(1) + torch.randn(n, self.d, generator=generator)
        return torch.cat([x1.unsqueeze(1), rest], dim=1), y


def tsipras_linear_accuracy(weight: np.ndarray, bias: float, model: TsiprasModel,
                            eps: float = 0.0, attack: str = "linf") -> float:
    """Exact accuracy of sign(weight . x + bias) on Eq. (3), clean (eps = 0) or under attack.

    ``attack="linf"``: the optimal l_inf attack on a linear classifier, which lowers every margin
    by eps ||weight||_1. ``attack="proof"``: the adversary of the proof of Theorem 2.1, which moves
    only the non-robust features, x_i -> x_i - eps y for i >= 2 (the margin drops by
    eps * sum(weight[1:])).
    """
    weight = np.asarray(weight, dtype=float)
    w1, rest = weight[0], weight[1:]
    if attack == "linf":
        drop = eps * np.abs(weight).sum()
    elif attack == "proof":
        drop = eps * rest.sum()
    else:
        raise ValueError(f"unknown attack {attack!r}; use 'linf' or 'proof'")
    mean_rest, std_rest = model.eta * rest.sum(), np.linalg.norm(rest)

    def p_margin_positive(margin_mean):
        if std_rest == 0:
            return float(margin_mean > 0)
        return float(norm.cdf(margin_mean / std_rest))

    # y = +1 and y = -1 are mirror images except for the bias, which helps one and hurts the other.
    accuracy = 0.0
    for y in (+1, -1):
        for x1_agrees, prob in ((True, model.p), (False, 1 - model.p)):
            robust_part = w1 if x1_agrees else -w1
            accuracy += 0.5 * prob * p_margin_positive(robust_part + mean_rest + y * bias - drop)
    return accuracy


def check_theorem2_1(model: TsiprasModel, eps: float, angles: int = 91,
                     biases: tuple[float, ...] = (-0.5, -0.2, 0.0, 0.2, 0.5)) -> dict[str, np.ndarray]:
    """Theorem 2.1 on a family of linear classifiers sign(cos(t) x1 + sin(t) mean(x2..x_{d+1}) + b).

    t runs from 0 (only the robust feature) to pi/2 (the averaging classifier of Eq. (4)). Returns
    delta = 1 - standard accuracy, the accuracy against the proof's adversary (which the theorem
    bounds by 7/3 delta) and against the optimal l_inf attack, one entry per classifier.
    """
    rows = []
    for t in np.linspace(0.0, np.pi / 2, angles):
        weight = np.r_[np.cos(t), np.full(model.d, np.sin(t) / model.d)]
        for bias in biases:
            rows.append((1 - tsipras_linear_accuracy(weight, bias, model),
                         tsipras_linear_accuracy(weight, bias, model, eps, attack="proof"),
                         tsipras_linear_accuracy(weight, bias, model, eps, attack="linf")))
    delta, proof, linf = np.array(rows).T
    return {"delta": delta, "adversarial_accuracy": proof, "optimal_attack_accuracy": linf}
