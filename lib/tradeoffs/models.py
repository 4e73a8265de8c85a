"""Models. All take inputs as tensors [N, ...] and return logits (a margin [N] for binary models)."""

from __future__ import annotations

import torch
from torch import nn


class LinearClassifier(nn.Module):
    """f(x) = u . x + b, by default with u = w / ||w||_2: a hyperplane at signed distance -b from 0.

    Fixing ||u|| = 1 makes the margin a distance, so a loss's temperature has a meaning and the
    hyperplane found is comparable with the closed forms of ``tradeoffs.gaussian``.
    ``unit_norm=False`` gives the plain f(x) = w . x + b.
    """

    def __init__(self, d: int, bias: bool = True, unit_norm: bool = True):
        super().__init__()
        self.unit_norm = unit_norm
        self.weight = nn.Parameter(torch.randn(d) / d**0.5)
        if bias:
            self.bias = nn.Parameter(torch.zeros(()))
        else:
            self.register_buffer("bias", torch.zeros(()))  # moves with .to(device)

    @property
    def direction(self) -> torch.Tensor:
        """The unit normal u of the hyperplane."""
        return self.weight / self.weight.norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ (self.direction if self.unit_norm else self.weight) + self.bias


def fixed_linear(weight, bias: float = 0.0) -> LinearClassifier:
    """The linear classifier f(x) = weight . x + bias with the given (not trained) weights."""
    weight = torch.as_tensor(weight, dtype=torch.float32)
    model = LinearClassifier(weight.numel(), bias=False, unit_norm=False)
    with torch.no_grad():
        model.weight.copy_(weight)
        model.bias.fill_(float(bias))
    return model.eval()
