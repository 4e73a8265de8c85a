"""Finite samples for the two-Gaussians paper: do linear classifiers trained by SGD find the analytic
hyperplanes?

The paper's results assume infinite data and the 0-1 loss. Here each training method of Sec. 4.1
(standard, adversarial, data-randomized) trains a ``LinearClassifier`` by minibatch SGD on n
samples of the two Gaussians in d = 784 dimensions, and we read off where its hyperplane crosses
the segment mu1 -> mu2 and how well its normal aligns with e12.

The 0-1 loss has no gradient, so we train on its probit smoothing Phi(-y f(x) / tau). Because the
classifier's normal has unit length, f(x) is Gaussian in each class and the population loss is
*exactly* the 0-1 error of the same model with sigma_i replaced by sqrt(sigma_i^2 + tau^2): the
analytic hyperplane this loss converges to is a closed form too (``analytic_positions``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from tradeoffs import attacks, store, train
from tradeoffs.chapters.ch01_gaussian_tradeoff.gaussian import (
    TsiprasModel,
    TwoGaussians,
    linear_errors,
    noise_augmented,
    robust_optimum,
    sample_two_gaussians,
    standard_optimum,
)
from tradeoffs.models import LinearClassifier
from tradeoffs.progress import progress

METHODS = ("standard", "adversarial", "noise")
TEMPERATURE = 0.5  # tau of the smoothed 0-1 loss


@dataclass(frozen=True)
class TrainedHyperplane:
    """Where one trained classifier's hyperplane lies, and its exact errors on the population."""

    method: str
    n: int
    seed: int
    position: float      # where the hyperplane crosses mu1 -> mu2 (mu1 at 0)
    cosine: float        # cos(normal, e12); 1 for the analytic hyperplanes (Fact 5)
    standard_error: float
    robust_error: float


def paper_direction(d: int) -> torch.Tensor:
    """A unit e12 with ||e12||_1 = sqrt(d) / 2, so that eps_inf = 0.5 sqrt(d) eps as in Sec. 4.2.

    Equal weights on the first d/4 coordinates: ||e12||_1 = sqrt(d/4).
    """
    if d % 4:
        raise ValueError(f"d must be a multiple of 4, got {d}")
    e12 = torch.zeros(d)
    e12[: d // 4] = 1 / math.sqrt(d // 4)
    return e12


def smoothed_zero_one_loss(temperature: float):
    """Phi(-y f(x) / tau): the probit smoothing of the 0-1 loss, per example."""
    return lambda logits, y: torch.special.ndtr(-y * logits / temperature)


def analytic_positions(model: TwoGaussians, eps_p: float, delta_sigma: float,
                       temperature: float = TEMPERATURE) -> dict[str, float]:
    """The hyperplanes that the smoothed loss converges to with infinite data, per method.

    Noise training adds real Gaussian noise, so its model is the ``"gaussian"`` convention.
    """
    smoothed = noise_augmented(model, temperature, "gaussian")
    noisy = noise_augmented(noise_augmented(model, delta_sigma, "gaussian"), temperature, "gaussian")
    return {"standard": standard_optimum(smoothed),
            "adversarial": float(robust_optimum(smoothed, eps_p)),
            "noise": standard_optimum(noisy)}


def objectives(eps: float, delta_sigma: float,
               temperature: float = TEMPERATURE) -> dict[str, train.Objective]:
    """The three training methods of Sec. 4.1 on the smoothed 0-1 loss, by name (``METHODS``).

    Adversarial: l_inf radius eps, inner maximum by ``attacks.fgsm`` (exact for a linear model) on the
    logistic loss, whose input gradient never underflows to 0. Noise: delta ~ N(0, delta_sigma^2 I).
    """
    loss = smoothed_zero_one_loss(temperature)
    return {"standard": train.standard(loss),
            "adversarial": train.adversarial(eps=eps, attack=attacks.fgsm, loss=loss, clip=None,
                                             loss_fn=attacks.default_loss),
            "noise": train.noise(sigma=delta_sigma, loss=loss)}


@store.memoized
def train_hyperplanes(model: TwoGaussians, *, d: int, eps: float, delta_sigma: float,
                      sample_sizes: tuple[int, ...], seeds: int, steps: int, temperature: float = TEMPERATURE,
                      batch_size: int = 512, lr: float = 0.2, device: torch.device | str = "cpu",
                      show_progress: bool = True) -> list[TrainedHyperplane]:
    """Train the three methods on nested samples of each size; one training set per seed.

    The methods are ``objectives(eps, delta_sigma, temperature)``. Adversarial and noise training
    start from the standard solution on the same sample: from a random start the smoothed loss under
    attack is flat and SGD does not move. Memoized (``tradeoffs.store.memoized``).
    """
    e12 = paper_direction(d)
    methods = objectives(eps, delta_sigma, temperature)
    results = []
    bar = progress(total=seeds * len(sample_sizes) * len(METHODS), disable=not show_progress,
                   desc=f"SGD, sigma=({model.sigma1:g}, {model.sigma2:g})")
    for seed in range(seeds):
        x_all, y_all = sample_two_gaussians(max(sample_sizes), model, e12,
                                            torch.Generator().manual_seed(seed))
        x_all, y_all = x_all.to(device), y_all.to(device)
        for n in sample_sizes:
            torch.manual_seed(1000 + seed)
            standard_model = LinearClassifier(d).to(device)
            for method in METHODS:
                # adversarial and noise training warm-start from the standard solution
                classifier = standard_model if method == "standard" else copy.deepcopy(standard_model)
                train.fit(classifier, x_all[:n], y_all[:n], methods[method], steps=steps,
                          batch_size=batch_size, lr=lr, cosine=True,
                          generator=torch.Generator().manual_seed(seed), show_progress=False)
                results.append(_measure(classifier, method, n, seed, model, e12, eps))
                bar.update()
    bar.close()
    return results


def _measure(classifier: LinearClassifier, method: str, n: int, seed: int, model: TwoGaussians,
             e12: torch.Tensor, eps: float) -> TrainedHyperplane:
    u, b = classifier.direction.detach().cpu(), classifier.bias.item()
    cosine = torch.dot(u, e12).item()
    standard_error, robust_error = linear_errors(u, b, model, e12, eps)
    return TrainedHyperplane(method=method, n=n, seed=seed, position=-b / cosine, cosine=cosine,
                             standard_error=standard_error, robust_error=robust_error)


def soft_margin_svm(model: TsiprasModel, *, eps: float, samples: int, steps: int, seed: int = 0,
                    batch_size: int = 512, lr: float = 0.1,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """Theorem 2.2 of Tsipras et al.: the unit-norm soft-margin SVM trained on samples of Eq. (3).

    Minimizes E max(0, 1 - y w.x) over ||w||_2 <= 1, or with eps > 0 its adversarial version
    E max(0, 1 - y w.x + eps ||w||_1), the inner maximum found by ``attacks.fgsm`` (exact for a
    linear model), by projected SGD. Both are convex, and where the constraint is active this is
    App. C's Eq. (5) with lambda tuned so that ||w*|| = 1. Returns the weight vector w.
    """
    generator = torch.Generator().manual_seed(seed)
    x, y = model.sample(samples, generator)
    torch.manual_seed(seed)
    svm = LinearClassifier(model.d + 1, bias=False, unit_norm=False).to(device)
    objective = (train.standard(train.hinge_loss) if eps == 0 else
                 train.adversarial(eps=eps, attack=attacks.fgsm, loss=train.hinge_loss, clip=None,
                                   loss_fn=attacks.default_loss))
    train.fit(svm, x.to(device), y.to(device), objective, steps=steps, batch_size=batch_size, lr=lr,
              cosine=True, generator=generator, show_progress=False,
              project=lambda m: m.weight.div_(m.weight.norm().clamp(min=1.0)))
    return svm.weight.detach().cpu()
