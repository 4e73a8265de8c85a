"""One training loop with pluggable objectives.

An objective is a function ``objective(model, x, y) -> scalar loss`` built by one of
``standard``, ``adversarial`` or ``noise`` below, so the loop never changes when the training
method does.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from tradeoffs.progress import progress

Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, y) -> per-example loss


def hinge_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """max(0, 1 - y f(x)), labels in {-1, +1}: the soft-margin SVM loss (Tsipras et al., App. C, Eq. (5))."""
    return torch.relu(1 - y * logits)


def standard(loss: LossFn) -> Objective:
    """Empirical risk minimization: min E l(theta; x)."""
    return lambda model, x, y: loss(model(x), y).mean()


def adversarial(loss: LossFn, attack: Callable, eps: float, **attack_options) -> Objective:
    """Adversarial training, Eq. (4) of paper 000 / Madry et al.: min E max_{x' in B_eps(x)} l(theta; x').

    The inner maximization is the given attack (same call shape for all: attack(model, x, y, eps, ...)),
    on the training loss unless ``attack_options`` names another ``loss_fn``.
    """
    attack_options = {"loss_fn": loss, **attack_options}

    def objective(model, x, y):
        x_adv = attack(model, x, y, eps, **attack_options)
        return loss(model(x_adv), y).mean()
    return objective


def noise(loss: LossFn, sigma: float) -> Objective:
    """Data-randomized training, Eq. (5) of paper 000: min E l(theta; x + delta), delta ~ N(0, sigma^2 I)."""
    return lambda model, x, y: loss(model(x + sigma * torch.randn_like(x)), y).mean()


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, objective: Objective, *, steps: int,
        batch_size: int, lr: float, momentum: float = 0.9, generator: torch.Generator | None = None,  # a CPU generator
        project: Callable[[nn.Module], None] | None = None, show_progress: bool = False) -> nn.Module:
    """Minibatch SGD with momentum and a cosine learning-rate decay on in-memory data (x, y).

    ``project``, if given, is applied to the model after every step (projected SGD onto a constraint set).
    """
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    n = len(x)
    for _ in progress(range(steps), disable=not show_progress, desc="training", leave=False):
        idx = torch.randint(0, n, (min(batch_size, n),), generator=generator).to(x.device)
        optimizer.zero_grad(set_to_none=True)
        objective(model, x[idx], y[idx]).backward()
        optimizer.step()
        schedule.step()
        if project is not None:
            with torch.no_grad():
                project(model)
    model.eval()
    return model
