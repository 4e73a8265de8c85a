"""Suggala et al., *Revisiting Adversarial Risk* (paper 003), Sec. 7: training on the joint objective and
measuring the two risks of Definition 2 on real data (Tables 1-2, Figs. 3-6).

Training minimizes Eq. (7), lam E max_{||delta||_inf <= eps} l(f(x + delta), y) - (lam - 1) E l(f(x), y)
(``tradeoffs.train.joint``; the inner maximum by PGD as App. H: sign steps, projection on the l_inf ball).
With no access to the base classifier g the paper replaces g(x) by the label y (margin condition (5)), so
on a test set

* classification risk = P(f(x) != y),
* adversarial risk    = P(f(x) = y and f(x') != y), x' the PGD example (Definition 2 with g = y: a point
  counts only if f is right on it and the attack makes it wrong),
* joint risk          = their sum (Fig. 3: "computed by adding both").

:class:`Risks` keeps the per-example outcomes, so that two models on the same test points are compared by a
paired difference with its 95% interval (:func:`difference`).

Every model is trained by ``tradeoffs.recipes.suggala_fit`` (through the store, keyed by the call that
trains it), which chapter 5's frontier shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tradeoffs import evaluate, models, recipes, stats, store, train
from tradeoffs.progress import progress

KINDS = ("classification", "adversarial", "joint")


@dataclass(frozen=True)
class Risks:
    """The 0/1 risks of Definition 2 (base classifier = label) on a test set, from the per-example outcomes:
    ``clean_correct`` (f(x) = y) and ``adv_correct`` (f(x') = y at the attack's x'), bool tensors [N]."""

    clean_correct: torch.Tensor
    adv_correct: torch.Tensor

    def events(self, kind: str) -> torch.Tensor:
        """Per example, whether it counts in risk ``kind`` (:data:`KINDS`): misclassified (classification);
        right but flipped by the attack (adversarial); either (joint, = not robust)."""
        clean, adv = self.clean_correct, self.adv_correct
        events = {"classification": ~clean, "adversarial": clean & ~adv, "joint": ~(clean & adv)}
        if kind not in events:
            raise ValueError(f"unknown risk {kind!r}; valid: {', '.join(KINDS)}")
        return events[kind]

    def risk(self, kind: str) -> float:
        """The fraction of the test set that counts in risk ``kind``."""
        return self.events(kind).double().mean().item()

    @property
    def classification(self) -> float:
        return self.risk("classification")

    @property
    def adversarial(self) -> float:
        return self.risk("adversarial")

    @property
    def joint(self) -> float:
        """Classification + adversarial risk (Fig. 3: "computed by adding both")."""
        return self.risk("joint")


def pooled(runs: Sequence[Risks], kind: str) -> stats.Estimate:
    """Risk ``kind`` in % over the evaluations of ``runs`` (e.g. the trials of one Table 1 entry) pooled,
    with its 95% Wilson interval."""
    return 100 * stats.proportion(torch.cat([r.events(kind) for r in runs]))


def difference(a: Risks | Sequence[Risks], b: Risks | Sequence[Risks], kind: str) -> stats.Estimate:
    """Risk ``kind`` of a minus that of b, in points, with Newcombe's paired 95% interval: both are measured
    on the same test points (sequences are paired trial by trial, their outcomes pooled)."""
    a, b = ([a] if isinstance(a, Risks) else list(a)), ([b] if isinstance(b, Risks) else list(b))
    if len(a) != len(b):
        raise ValueError(f"paired risks need as many runs on each side, got {len(a)} and {len(b)}")
    return 100 * stats.paired_difference(torch.cat([r.events(kind) for r in a]),
                                         torch.cat([r.events(kind) for r in b]))


@store.memoized
def risks(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int, step_size: float,
          clip: tuple[float, float] | None = (0.0, 1.0), batch_size: int = 1000) -> Risks:
    """Classification and adversarial risk (Definition 2, base classifier = label) of ``model`` on (x, y),
    the adversarial examples by PGD-``steps`` with ``step_size`` (l_inf, one random start, inputs kept in
    the box ``clip``; None: the eps-ball only, as the projection of the paper's Sec. 7). Memoized
    (``tradeoffs.store.memoized``): a warm run reads the risks of the same model and data."""
    adv = evaluate.robust_correct(model, x, y, eps=eps, attack="pgd", steps=steps, step_size=step_size,
                                  clip=clip, batch_size=batch_size, show_progress=False)
    return _on_the_same_points(model, x, y, adv)


@store.memoized
def strong_risks(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, apgd_steps: int,
                 targets: int, steps: int, restarts: int) -> Risks:
    """:func:`risks` with the adversarial examples of the strong evaluation
    (``tradeoffs.evaluate.strong_attack``: the per-example worst case of APGD-CE, APGD-T with ``targets``
    target classes, ``apgd_steps`` iterations each, and PGD-``steps`` x ``restarts``; l_inf, inputs in
    [0, 1]): the check that PGD did not underestimate the adversarial risk. Memoized like :func:`risks`."""
    adv = evaluate.robust_correct(model, x, y, eps=eps, attack="strong", apgd_steps=apgd_steps,
                                  apgd_targets=targets, steps=steps, restarts=restarts, show_progress=False)
    return _on_the_same_points(model, x, y, adv)


def _on_the_same_points(model: nn.Module, x: torch.Tensor, y: torch.Tensor, adv: torch.Tensor) -> Risks:
    """The risks from the attack's outcomes ``adv`` and the clean ones on the same points (a dry run,
    ``tradeoffs.dryrun``, attacks only the first few)."""
    return Risks(clean_correct=evaluate.correct(model, x[:len(adv)], y[:len(adv)]), adv_correct=adv)


def train_joint(*, architecture: str, x: torch.Tensor, y: torch.Tensor, lam: float, eps: float, trial: int,
                settings, device: torch.device, widths: Sequence[int] = (), vgg_width: float = 0.25,
                steps: int | None = None, step_size: float | None = None) -> nn.Module:
    """A model trained on Eq. (7) with weight ``lam`` and radius ``eps``, through the store (keyed by this
    call).

    ``architecture``: "mlp" (ReLU, ``widths``; MNIST) or "vgg11" (``vgg_width`` times VGG11's units;
    CIFAR-10). ``settings``: the chapter's profile (epochs, batch_size, lr, train_steps, train_step_size,
    mnist_train). The trial sets the training subset and the initialization. Adam, as the paper names no
    optimizer.
    """
    steps = settings.train_steps if steps is None else steps
    step_size = settings.train_step_size if step_size is None else step_size
    if architecture == "mlp":
        def build() -> nn.Module:
            return models.MLP(int(np.prod(x.shape[1:])), tuple(widths))
    elif architecture == "vgg11":
        def build() -> nn.Module:
            return models.VGG11(width=vgg_width)
    else:
        raise ValueError(f"unknown architecture {architecture!r}; valid: 'mlp', 'vgg11'")
    return recipes.suggala_fit(build, recipes.suggala_subset(x, y, settings.mnist_train, trial),
                               train.joint(lam=lam, eps=eps, steps=steps, step_size=step_size), trial=trial,
                               epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
                               device=device,
                               name=f"joint {architecture} lam={lam:g} eps={eps:g} trial={trial}").model


def lambda_sweep(*, lambdas: Sequence[float], trials: int, eps: float, x_train: torch.Tensor,
                 y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, settings,
                 device: torch.device, desc: str, clip: tuple[float, float] | None = (0.0, 1.0),
                 **model_kw) -> dict[tuple[float, int], Risks]:
    """Train one model per (lambda, trial) and measure its risks (PGD as in ``settings``, inputs in the box
    ``clip``): Table 1, Fig. 3."""
    out = {}
    for lam, trial in progress([(lam, t) for lam in lambdas for t in range(trials)], desc=desc):
        model = train_joint(x=x_train, y=y_train, lam=lam, eps=eps, trial=trial, settings=settings,
                            device=device, **model_kw)
        out[(lam, trial)] = risks(model, x_test, y_test, eps=eps, steps=settings.eval_steps,
                                  step_size=settings.eval_step_size, clip=clip)
    return out


def summarize(results: dict[tuple[float, int], Risks]) -> dict[float, dict[str, tuple[float, float]]]:
    """Mean and standard deviation over trials, per lambda: {lam: {"classification": (mean, sd), ...}}."""
    table = {}
    for lam in sorted({lam for lam, _ in results}):
        rows = [r for (l_, _), r in results.items() if l_ == lam]
        table[lam] = {kind: (float(np.mean([getattr(r, kind) for r in rows])),
                             float(np.std([getattr(r, kind) for r in rows],
                                          ddof=1)) if len(rows) > 1 else float("nan"))
                      for kind in KINDS}
    return table


def lambda_label(lam: float) -> str:
    """The id fragment of a lambda: 0 -> 'lambda0', 0.001 -> 'lambda0_001'."""
    return "lambda" + f"{lam:g}".replace(".", "_")
