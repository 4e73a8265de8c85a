"""Suggala et al., *Revisiting Adversarial Risk* (paper 003), Sec. 6: the uniform-squares distribution.

P(y = 1) = 3/4; x | y = -1 and x | y = +1 are uniform on axis-aligned squares of side 2 centred at
(-1.2, 0) and (1.2, 0). The classes are linearly separable with a gap of 0.4 (x1 in (-0.2, 0.2)), so the
Bayes rule g(x) = sign(x1) satisfies the margin condition (5) for l_inf radii eps <= 0.2, and some Bayes
rule (a threshold in the gap) keeps zero classification risk for every eps < 0.4. Theorem 6: beyond the
margin, the minimizer of objective (6) (lambda = 1: the usual adversarial risk) need not be Bayes optimal.
``threshold_minimizer_risk`` is that minimizer's classification risk over vertical thresholds, in closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Squares:
    """The Sec. 6 distribution (defaults as in the paper)."""

    p_positive: float = 0.75
    centre: float = 1.2
    side: float = 2.0

    @property
    def gap(self) -> float:
        """The separation between the two squares along x1 (0.4)."""
        return 2 * self.centre - self.side

    def sample(self, n: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """n draws: x [n, 2] (float32) and y [n] in {-1., +1.}."""
        y = torch.where(torch.rand(n, generator=generator) < self.p_positive, 1.0, -1.0)
        offset = (torch.rand(n, 2, generator=generator) - 0.5) * self.side
        x = offset + torch.stack([y * self.centre, torch.zeros(n)], dim=1)
        return x.to(device), y.to(device)


def usual_adversarial_risk_of_threshold(b: np.ndarray, eps: float, model: Squares = Squares()) -> np.ndarray:
    """G_adv (objective (6) with lambda = 1, 0-1 loss, l_inf radius eps) of the rule sign(x1 - b)."""
    b = np.asarray(b, dtype=float)
    lo_pos, lo_neg = model.centre - model.side / 2, -model.centre - model.side / 2
    pos = np.clip((b + eps - lo_pos) / model.side, 0, 1)          # +1 points within eps of (or left of) b
    # the -1 points within eps of (or right of) b
    neg = np.clip((lo_neg + model.side - (b - eps)) / model.side, 0, 1)
    return model.p_positive * pos + (1 - model.p_positive) * neg


def classification_risk_of_threshold(b: np.ndarray, model: Squares = Squares()) -> np.ndarray:
    """R_01 of the rule sign(x1 - b)."""
    return usual_adversarial_risk_of_threshold(b, 0.0, model)


def threshold_minimizer_risk(eps: float | np.ndarray, model: Squares = Squares()) -> float | np.ndarray:
    """Classification risk of the vertical threshold that minimizes G_adv, in closed form (default model):

    0 for eps <= gap (the minimizer b = 0.2 - eps stays in the gap: Bayes optimal), (1 - P(y=1)) (eps - gap)
    / side for gap < eps < 1.2 (the threshold moves into the minority class), and 1 - P(y=1) = 1/4 beyond,
    where labelling everything +1 is a minimizer (there the minimizers are not unique: every threshold left
    of 0.2 - eps with all -1 points inside its band ties). Derivation: for eps > 0.2 lowering b by db trades
    P(y=1) db / side of +1 points inside the eps-band for (1 - P(y=1)) db / side of -1 points, so b moves down
    until the +1 band empties, b = (centre - side/2) - eps.
    """
    eps = np.asarray(eps, dtype=float)
    low = model.centre - model.side / 2                   # 0.2: each square's distance from x1 = 0
    minority = 1 - model.p_positive
    moved = minority * np.clip((eps - 2 * low) / model.side, 0, None)  # -1 points right of b = low - eps
    switch = low + model.side / 2                         # where G(low - eps) reaches G(all +1) = minority
    result = np.where(eps <= 2 * low, 0.0, np.where(eps < switch, moved, minority))
    return result if result.ndim else float(result)
