"""Accuracy, clean and under attack. Predictions: the sign of a binary margin, else the arg-max logit."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def predict(logits: torch.Tensor) -> torch.Tensor:
    """Labels in {-1, +1} for binary margins ([N] or [N, 1]), class indices for [N, K] logits."""
    if logits.ndim == 1 or logits.shape[1] == 1:
        return torch.where(logits.flatten() > 0, 1.0, -1.0)
    return logits.argmax(1)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096) -> float:
    """Fraction of (x, y) the model classifies correctly."""
    model.eval()
    correct = sum((predict(model(xb)) == yb).sum().item()
                  for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    return correct / len(x)


def robust_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Callable, eps: float,
                    batch_size: int = 4096, **attack_options) -> float:
    """Fraction still classified correctly after ``attack(model, x, y, eps, **attack_options)``."""
    model.eval()
    correct = 0
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        x_adv = attack(model, xb, yb, eps, **attack_options)
        with torch.no_grad():
            correct += (predict(model(x_adv)) == yb).sum().item()
    return correct / len(x)
