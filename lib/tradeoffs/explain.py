"""Gradient-based explanations (Suggala et al., paper 003, Sec. 7.3 and Fig. 6).

Each method returns an attribution map of the input's shape for the logit of class ``target``:

* ``gradient``: grad_x f_target(x) (the "saliency" of a linearized classifier);
* ``integrated_gradients``: (x - x0) * mean_{k=1..m} grad f_target(x0 + k/m (x - x0)), the Riemann sum of
  Sundararajan et al. (2017), Eq. (3), with the all-black baseline x0 = 0;
* ``smoothgrad``: mean_{j=1..m} grad f_target(x + N(0, sigma^2 I)) (Smilkov et al. 2017); the paper uses
  sigma^2 = 0.25.

``roughness`` measures how noisy a map is: the mean absolute difference between neighbouring pixels over
the mean absolute attribution (0 for a constant map; large for salt-and-pepper noise). Theorem 7 predicts
that adversarial training penalizes the gradient's dual norm and so smooths it.
"""

from __future__ import annotations

import torch
from torch import nn

from tradeoffs import attacks


def _logit_grad(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = model(x)
        selected = out.gather(1, target[:, None]).sum() if out.ndim == 2 else out.sum()
        (grad,) = torch.autograd.grad(selected, x)
    return grad


def gradient(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """grad_x of the ``target`` logit at x (per example), the model in eval mode."""
    with attacks.eval_mode(model):
        return _logit_grad(model, x, target)


def integrated_gradients(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, steps: int = 50,
                         baseline: torch.Tensor | None = None) -> torch.Tensor:
    """Integrated gradients with ``steps`` Riemann points on the straight path from ``baseline`` (default 0)
    to x."""
    baseline = torch.zeros_like(x) if baseline is None else baseline
    total = torch.zeros_like(x)
    with attacks.eval_mode(model):
        for k in range(1, steps + 1):
            total += _logit_grad(model, baseline + (k / steps) * (x - baseline), target)
    return (x - baseline) * total / steps


def smoothgrad(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, sigma: float = 0.5,
               samples: int = 50, generator: torch.Generator | None = None) -> torch.Tensor:
    """SmoothGrad: the gradient averaged over ``samples`` Gaussian perturbations of standard deviation
    sigma."""
    total = torch.zeros_like(x)
    with attacks.eval_mode(model):
        for _ in range(samples):
            noise = torch.randn(x.shape, generator=generator, device="cpu").to(x.device)
            total += _logit_grad(model, x + sigma * noise, target)
    return total / samples


def roughness(attribution: torch.Tensor) -> torch.Tensor:
    """Per-example noisiness of 2-D maps [N, (C,) H, W]: mean |neighbour difference| / mean |value|."""
    a = attribution.reshape(attribution.shape[0], -1, *attribution.shape[-2:]).sum(1)  # sum channels
    dx = (a[:, :, 1:] - a[:, :, :-1]).abs().mean(dim=(1, 2))
    dy = (a[:, 1:, :] - a[:, :-1, :]).abs().mean(dim=(1, 2))
    return (dx + dy) / (2 * a.abs().mean(dim=(1, 2)).clamp_min(1e-12))
