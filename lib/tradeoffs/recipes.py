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

    ``optimizer`` ("sgd": momentum 0.9, as TRADES Sec. 5; or "adam") at learning rate ``lr`` for the robust
    models and ``natural_lr`` for the natural one, batches of ``batch_size`` (the natural model: 128). The
    robust models see the first ``train`` images (the natural model the first ``natural_train``) for
    ``epochs`` epochs, with K = ``steps`` attack steps of ``step_size`` at eps = 0.3. ``eps_warmup``: the
    fraction of the robust run over which eps (and the step size with it) rises linearly from 0 to 0.3
    (``train.eps_ramp``; 0: eps = 0.3 from the first minibatch). ``warm_start``: start the robust models from
    the natural one (Alg. 1, line 3) instead of from scratch.
    """

    lr: float                       # paper 0.01
    natural_lr: float               # paper 0.01
    dropout: float                  # the release's 0.5
    natural_train: int | None
    natural_epochs: int
    train: int | None
    epochs: int                     # paper 100 (learning rate / 10 at epoch 55)
    milestones: tuple[int, ...]
    steps: int                      # K in training; paper 40
    step_size: float                # at eps 0.3; paper 0.01
    optimizer: str = "sgd"          # paper: SGD, momentum 0.9
    batch_size: int = 128           # paper 128
    eps_warmup: float = 0.0
    warm_start: bool = False


SMALLCNN_BUDGETS = {
    "smoke": SmallCNNBudget(lr=1e-3, natural_lr=1e-3, dropout=0.0, natural_train=256, natural_epochs=1,
                            train=256, epochs=1, milestones=(), steps=2, step_size=0.2, optimizer="adam",
                            batch_size=64, eps_warmup=0.5),
    "cpu": SmallCNNBudget(lr=1e-3, natural_lr=1e-3, dropout=0.0, natural_train=20_000, natural_epochs=1,
                          train=20_000, epochs=4, milestones=(), steps=7, step_size=0.75 / 7,
                          optimizer="adam", batch_size=100, eps_warmup=0.375),
    "paper": SmallCNNBudget(lr=0.01, natural_lr=0.01, dropout=0.5, natural_train=None, natural_epochs=100,
                            train=None, epochs=100, milestones=(55,), steps=40, step_size=0.01),
}
"""The budget of each profile. With the paper's, both robust models train from scratch at eps = 0.3 with SGD,
as released. The short budgets use Adam and raise eps from 0 over the first part of the run (in cpu, 1.5 of
its 4 epochs): from scratch directly at eps = 0.3, a few hundred minibatches leave a constant predictor, and
TRADES started from a natural model at eps = 0.3 first flattens its predictions to shrink the (then large) KL
term, which a short run never undoes. In cpu, robustness grows with the epochs (Madry, 3 epochs: 84% PGD-40,
72% strong on 500 test images; 5 epochs: 90% / 81%); 4 is what the book's 30 minutes afford."""


def natural_smallcnn(budget: SmallCNNBudget, *, device: torch.device, seed: int = 0) -> store.Fitted:
    """The naturally trained SmallCNN of ``budget`` (Table 6's "Natural" source) with its store record: the
    first ``natural_train`` images drawn with ``seed``, batch 128. It is also the starting point of chapter
    4's 1/lambda sweep where a profile runs that sweep on the SmallCNN, which then reads this same model."""
    x_train, y_train = data.load_mnist("train")
    return store.fitted(lambda: models.SmallCNN(dropout=budget.dropout),
                        data.subset(x_train, y_train, budget.natural_train, seed), train.standard(),
                        device=device, name="SmallCNN natural", epochs=budget.natural_epochs, batch_size=128,
                        lr=budget.natural_lr, optimizer=budget.optimizer, seed=seed)


def robust_objective(method: str, budget: SmallCNNBudget) -> train.Objective:
    """Madry et al.'s PGD training (``"madry"``) or TRADES at 1/lambda = 6 (``"trades"``) at eps = 0.3 with
    the budget's K steps, ramped up over ``eps_warmup`` of the run when it is > 0."""
    attack = {"eps": EPS_MNIST, "step_size": budget.step_size, "steps": budget.steps}
    objectives = {"madry": lambda: train.adversarial(**attack),
                  "trades": lambda: train.trades(beta=6.0, **attack)}
    if method not in objectives:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(map(repr, objectives))}")
    objective = objectives[method]()
    return train.eps_ramp(objective, warmup=budget.eps_warmup) if budget.eps_warmup > 0 else objective


def eps03_smallcnns(budget: SmallCNNBudget, *, device: torch.device, seed: int = 0) -> dict[str, nn.Module]:
    """``{"natural", "madry", "trades"}``: the SmallCNNs of TRADES Tables 5-6 trained on MNIST with
    ``budget``.

    The natural model is :func:`natural_smallcnn`; the robust ones see the first ``train`` images drawn with
    ``seed`` (the natural model's, when the sizes agree), shuffled with ``seed``, from the natural model when
    ``warm_start``. Each model's training record (time, threads) is in :func:`eps03_records`.
    """
    return {name: fitted.model for name, fitted in eps03_records(budget, device=device, seed=seed).items()}


def eps03_records(budget: SmallCNNBudget, *, device: torch.device, seed: int = 0) -> dict[str, store.Fitted]:
    """:func:`eps03_smallcnns` with each model's store record (``tradeoffs.store.Fitted``: the model, its
    training seconds, whether the store held it)."""
    out = {"natural": natural_smallcnn(budget, device=device, seed=seed)}
    for method in ("madry", "trades"):
        out[method] = robust_smallcnn(method, budget, natural=out["natural"].model, device=device, seed=seed)
    return out


def robust_smallcnn(method: str, budget: SmallCNNBudget, *, natural: nn.Module | None = None,
                    device: torch.device, seed: int = 0) -> store.Fitted:
    """The Madry (``"madry"``) or TRADES (``"trades"``) SmallCNN of ``budget`` at eps = 0.3, through the
    store:
    :func:`robust_objective` on the first ``train`` images drawn with ``seed``, shuffled with ``seed``,
    started from ``natural`` (the model of :func:`natural_smallcnn`, trained here if not given) when
    ``warm_start``."""
    if budget.warm_start and natural is None:
        natural = natural_smallcnn(budget, device=device, seed=seed).model
    x_train, y_train = data.load_mnist("train")
    return store.fitted(
        lambda: models.SmallCNN(dropout=budget.dropout), data.subset(x_train, y_train, budget.train, seed),
        robust_objective(method, budget), device=device, init=natural if budget.warm_start else None,
        init_seed=seed, name=f"SmallCNN {method} eps=0.3", epochs=budget.epochs, batch_size=budget.batch_size,
        lr=budget.lr, milestones=budget.milestones, optimizer=budget.optimizer, seed=seed)


def suggala_subset(x: torch.Tensor, y: torch.Tensor, n: int | None,
                   trial: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training subset of ``trial`` in Suggala et al.'s experiments (each trial of their Table 1 draws its
    own n images): the same draw for chapter 3's models and chapter 5's frontier, which shares them."""
    return data.subset(x, y, n, 1_000 + trial)


def suggala_fit(build, train_data: tuple[torch.Tensor, torch.Tensor], objective: train.Objective, *,
                trial: int, epochs: int, batch_size: int, lr: float, device: torch.device,
                name: str) -> store.Fitted:
    """A model trained as in Suggala et al.'s experiments (Sec. 7; the paper names no optimizer: Adam), the
    initialization and the shuffling drawn from ``trial``, through the store (:func:`tradeoffs.store.fitted`):
    chapter 3's joint-objective models and chapter 5's frontier runs, which share a model wherever the call is
    the same."""
    return store.fitted(build, train_data, objective, device=device, name=name, epochs=epochs,
                        batch_size=batch_size, lr=lr, optimizer="adam", seed=trial, show_progress=False)
