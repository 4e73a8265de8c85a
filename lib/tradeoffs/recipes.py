"""Trained models more than one chapter uses.

The MNIST SmallCNNs at eps = 0.3 of TRADES's Tables 5-6 (Zhang et al. 2019, Sec. 5.3): natural training,
Madry et al.'s PGD adversarial training (Eq. (2.1)) and TRADES at 1/lambda = 6 (Eq. (5), Alg. 1). Chapter 4
compares them; chapter 2 shows what the natural and the Madry model see (Tsipras et al., Figs. 3-5). Each is
trained through the store (``tradeoffs.store.fit``), so whichever chapter runs first trains them and the other
reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tradeoffs import data, models, store, train

EPS_MNIST = 0.3  # TRADES Tables 5-6, Madry et al.'s MNIST threat model


@dataclass(frozen=True)
class SmallCNNBudget:
    """The training budget of the eps = 0.3 SmallCNNs (sizes in images, None: the whole training split).

    SGD with momentum 0.9 and batch 128 (TRADES Sec. 5); ``lr`` for the robust models, ``natural_lr`` for the
    natural one. ``eps_ramp``: the eps of successive training stages, ending at 0.3 (empty: one stage at 0.3),
    each one ``train.fit`` call on ``train`` fresh images with ``steps`` PGD steps of ``step_size * eps / 0.3``;
    ``warm_start``: start from the natural model (Alg. 1, line 3) instead of from scratch.
    """

    lr: float                       # paper 0.01
    natural_lr: float               # paper 0.01
    dropout: float                  # the release's 0.5
    natural_train: int | None
    natural_epochs: int
    train: int | None               # per stage
    epochs: int                     # paper 100 (learning rate / 10 at epoch 55)
    milestones: tuple[int, ...]
    steps: int                      # K in training; paper 40
    step_size: float                # at eps 0.3; paper 0.01
    eps_ramp: tuple[float, ...] = ()
    warm_start: bool = False


SMALLCNN_BUDGETS = {
    "smoke": SmallCNNBudget(lr=0.02, natural_lr=0.05, dropout=0.0, natural_train=256, natural_epochs=1, train=128,
                            epochs=1, milestones=(), steps=2, step_size=0.15, eps_ramp=(0.15, 0.3),
                            warm_start=True),
    "cpu": SmallCNNBudget(lr=0.02, natural_lr=0.05, dropout=0.0, natural_train=10_000, natural_epochs=2,
                          train=3_000, epochs=1, milestones=(), steps=5, step_size=0.1,
                          eps_ramp=(0.1, 0.2, 0.3, 0.3), warm_start=True),
    "paper": SmallCNNBudget(lr=0.01, natural_lr=0.01, dropout=0.5, natural_train=None, natural_epochs=100,
                            train=None, epochs=100, milestones=(55,), steps=40, step_size=0.01),
}
"""The budget of each profile. With the paper's, both robust models train from scratch at eps = 0.3, as
released; from a natural start directly at eps = 0.3, TRADES first flattens its predictions to shrink the (then
large) KL term, which a short run never undoes, hence the ramp of the short budgets."""


def eps03_smallcnns(budget: SmallCNNBudget, *, device: torch.device, seed: int = 0) -> dict[str, nn.Module]:
    """``{"natural", "madry", "trades"}``: the SmallCNNs of TRADES Tables 5-6 trained on MNIST with ``budget``.

    The natural model sees ``natural_train`` images drawn with ``seed``; the robust ones ``train`` fresh images
    per stage of the eps ramp (drawn with ``seed + 2``), stage ``i`` shuffled with seed ``seed + i`` and started
    from the previous stage (the first from the natural model when ``warm_start``).
    """
    x_train, y_train = data.load_mnist("train")

    def build() -> nn.Module:
        return models.SmallCNN(dropout=budget.dropout)

    out = {"natural": store.fit(build, data.subset(x_train, y_train, budget.natural_train, seed), train.standard(),
                                device=device, name="SmallCNN natural", epochs=budget.natural_epochs,
                                batch_size=128, lr=budget.natural_lr, seed=seed)}
    ramp = tuple(budget.eps_ramp) or (EPS_MNIST,)
    if ramp[-1] != EPS_MNIST:
        raise ValueError(f"eps_ramp must end at eps = {EPS_MNIST}, got {ramp}")
    n = budget.train
    x_all, y_all = data.subset(x_train, y_train, None if n is None else n * len(ramp), seed + 2)
    for method in ("madry", "trades"):
        model = out["natural"] if budget.warm_start else None
        for stage, eps in enumerate(ramp):
            attack = {"eps": eps, "step_size": budget.step_size * eps / EPS_MNIST, "steps": budget.steps}
            objective = train.adversarial(**attack) if method == "madry" else train.trades(beta=6.0, **attack)
            stage_data = (x_all, y_all) if n is None else (x_all[stage * n:(stage + 1) * n],
                                                           y_all[stage * n:(stage + 1) * n])
            model = store.fit(build, stage_data, objective, device=device, init=model, init_seed=seed,
                              name=f"SmallCNN {method} eps={eps:g} stage {stage + 1}/{len(ramp)}",
                              epochs=budget.epochs, batch_size=128, lr=budget.lr, milestones=budget.milestones,
                              seed=seed + stage)
        out[method] = model
    return out


def suggala_subset(x: torch.Tensor, y: torch.Tensor, n: int | None, trial: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training subset of ``trial`` in Suggala et al.'s experiments (each trial of their Table 1 draws its own
    n images): the same draw for chapter 3's models and chapter 5's frontier, which shares them."""
    return data.subset(x, y, n, 1_000 + trial)


def suggala_fit(build, train_data: tuple[torch.Tensor, torch.Tensor], objective: train.Objective, *, trial: int,
                epochs: int, batch_size: int, lr: float, device: torch.device, name: str) -> store.Fitted:
    """A model trained as in Suggala et al.'s experiments (Sec. 7; the paper names no optimizer: Adam), the
    initialization and the shuffling drawn from ``trial``, through the store (:func:`tradeoffs.store.fitted`):
    chapter 3's joint-objective models and chapter 5's frontier runs, which share a model wherever the call is
    the same."""
    return store.fitted(build, train_data, objective, device=device, name=name, epochs=epochs,
                        batch_size=batch_size, lr=lr, optimizer="adam", seed=trial, show_progress=False)
