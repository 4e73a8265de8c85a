"""TRADES's MNIST experiments (Zhang et al., ICML 2019, Sec. 5): the binary "1 vs 3" problem of Table 3
with the hinge surrogate and the terms of Theorem 3.1, and the white-box / black-box evaluation of Tables 5-6
from one set of PGD points per model (the tables' SmallCNNs are ``tradeoffs.recipes.eps03_smallcnns``).

Theorem 3.1 (hinge loss phi(a) = max(1 - a, 0), psi(theta) = theta, so psi^-1 is the identity):

    Delta_LHS = R_rob(f) - R*_nat
              <= Delta_RHS = (R_phi(f) - R*_phi) + E max_{X' in B(X, eps)} phi(f(X') f(X) / lambda).

Since phi is non-increasing, max_{X'} phi(f(X') f(X) / lambda) = phi(min_{X'} f(X') f(X) / lambda): the
worst X' pushes f(X') against the sign of f(X), the same point an attack on the label sign(f(X)) finds.
:func:`theorem31_terms` therefore runs one PGD on the logistic loss of the label s = sign(f(x)) (whose
sign-gradient steps are those of the margin -s f(x'), with no flat region where the hinge is 0) and
evaluates both R_rob and the max term at the points it finds (together with x itself), so the two
estimates are consistent per example: wherever R_rob counts an error, the right-hand side pays at least 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tradeoffs import attacks, data, evaluate, models, recipes, store, train

BINARY_DIGITS = (1, 3)  # Table 3: negatives are "1", positives "3" (``tradeoffs.data.digit_pair``)


def sign_labels(model: nn.Module, x: Tensor) -> Tensor:
    """s = sign(f(x)) in {-1, +1} with sign(0) = +1 (Sec. 2.1), the model in eval mode."""
    with torch.no_grad(), attacks.eval_mode(model):
        return torch.where(model(x) >= 0, 1.0, -1.0)


def margin_attack(model: nn.Module, x: Tensor, *, eps: float, steps: int, step_size: float,
                  random_start: bool = True) -> Tensor:
    """argmax over B(x, eps) ∩ [0, 1]^d of phi(f(x') f(x) / lambda) for any lambda > 0 (approximately):
    PGD on the logistic loss of the label sign(f(x)), i.e. towards the other side of f's boundary."""
    return attacks.pgd(model, x, sign_labels(model, x), eps=eps, steps=steps, step_size=step_size,
                       random_start=random_start)


@dataclass(frozen=True)
class HingeTrades:
    """Problem (3) with the hinge loss, for a binary margin model f (labels +-1), as trained for Table 3:

        E phi(f(X) Y) + E max_{X' in B(X, eps)} phi(f(X) f(X') / lambda),

    the inner max by :func:`margin_attack` (K = ``steps`` sign steps of ``step_size`` from x, in eval
    mode); the outer loss in training mode, with gradients through both f(x) and f(x'). An objective of
    ``tradeoffs.train`` (a frozen dataclass, so the store keys on it).
    """

    lam: float
    eps: float
    step_size: float
    steps: int

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        x_adv = margin_attack(model, x, eps=self.eps, steps=self.steps, step_size=self.step_size,
                              random_start=False)
        f, f_adv = model(x), model(x_adv)
        return (train.hinge_loss(f, y) + torch.relu(1 - f_adv * f / self.lam)).mean()


def hinge_trades(*, lam: float, eps: float, step_size: float, steps: int) -> HingeTrades:
    """The objective of Table 3's TRADES models (:class:`HingeTrades`)."""
    return HingeTrades(lam, eps, step_size, steps)


@torch.no_grad()
def _forward(model: nn.Module, x: Tensor) -> Tensor:
    with attacks.eval_mode(model):
        return model(x)


def theorem31_terms(model: nn.Module, x: Tensor, y: Tensor, *, lam: float, eps: float, steps: int,
                    step_size: float, r_star_nat: float, r_star_phi: float) -> dict:
    """The quantities of Table 3 for a binary margin model f on test data (x, y in +-1):

    ``robust_accuracy`` A_rob = 1 - R_rob (x' from :func:`margin_attack`, K = ``steps``), ``r_phi`` the
    hinge risk E phi(f(X) Y), ``max_term`` E max_{X'} phi(f(X') f(X) / lambda) (over x and the attack's x'),
    ``delta_lhs`` = R_rob - R*_nat, ``delta_rhs`` = (R_phi - R*_phi) + max_term, and ``delta`` = RHS - LHS,
    which Theorem 3.1 says is >= 0. Per example (tensors [N], for confidence intervals): ``robust_correct``,
    ``hinge`` (whose mean is ``r_phi``) and ``delta_terms`` (whose mean is ``delta``, R* taken as given).
    """
    x_adv = margin_attack(model, x, eps=eps, steps=steps, step_size=step_size)
    f, f_adv = _forward(model, x), _forward(model, x_adv)
    robust_wrong = ((f * y <= 0) | (f_adv * y <= 0)).double()
    hinge = _hinge_per_example(f, y)
    phi_pair = torch.maximum(torch.relu(1 - f * f / lam), torch.relu(1 - f_adv * f / lam)).double().flatten()
    robust_error, r_phi, max_term = robust_wrong.mean().item(), hinge.mean().item(), phi_pair.mean().item()
    lhs, rhs = robust_error - r_star_nat, (r_phi - r_star_phi) + max_term
    delta_terms = (hinge - r_star_phi) + phi_pair - (robust_wrong.flatten() - r_star_nat)
    return {"robust_accuracy": 1 - robust_error, "r_phi": r_phi, "max_term": max_term,
            "delta_lhs": lhs, "delta_rhs": rhs, "delta": rhs - lhs,
            "robust_correct": (robust_wrong.flatten() == 0).cpu(), "hinge": hinge.cpu(),
            "delta_terms": delta_terms.cpu()}


def _hinge_per_example(f: Tensor, y: Tensor) -> Tensor:
    """phi(f(x) y) = max(1 - f(x) y, 0) per example, in float64 (its mean is ``train.hinge_loss``)."""
    return train.hinge_loss(f, y).double()


def natural_terms(model: nn.Module, x: Tensor, y: Tensor) -> dict:
    """Natural error and hinge risk of a binary margin model: estimates of R*_nat and R*_phi (Sec. 5.1);
    ``hinge`` holds the per-example hinge losses (for an interval)."""
    f = _forward(model, x)
    return {"nat_error": (f * y <= 0).double().mean().item(),
            "r_phi": train.hinge_loss(f, y).double().mean().item(), "hinge": _hinge_per_example(f, y).cpu()}


EPS_SWEEP = 0.1  # Table 4 (MNIST)


def sweep_models(settings, *, device: torch.device, seed: int = 0) -> dict[object, store.Fitted]:
    """Table 4's MNIST models through the store: ``"natural"`` (natural training, the sweep's starting point
    when ``settings.warm_start``) and, for each 1/lambda in ``settings.sweep_betas``, TRADES at eps = 0.1
    (Eq. (5); K = ``sweep_steps`` steps of ``sweep_step_size``) on the first ``sweep_train`` images drawn with
    ``seed``, by ``sweep_optimizer`` at ``sweep_lr`` (cosine-decayed when ``sweep_cosine``), batch 128.

    ``settings`` is chapter 4's :class:`~tradeoffs.chapters.ch04_trades.settings.TradesChapter`. On the
    paper's TradesNet (``sweep_architecture="trades_net"``) the natural model is its own; on the SmallCNN it
    is the natural SmallCNN of Tables 5-6 (``tradeoffs.recipes.natural_smallcnn``), read from the store, not
    retrained.
    """
    x_train, y_train = data.load_mnist("train")

    def build() -> nn.Module:
        return models.build(settings.sweep_architecture, dropout=settings.dropout)

    if settings.sweep_architecture == "small_cnn":
        natural = recipes.natural_smallcnn(settings.eps03, device=device, seed=seed)
    else:
        natural = store.fitted(build, data.subset(x_train, y_train, settings.sweep_natural_train, seed),
                               train.standard(), device=device, name="Table 4 natural",
                               epochs=settings.sweep_natural_epochs, batch_size=128, lr=settings.natural_lr,
                               seed=seed)
    out: dict[object, store.Fitted] = {"natural": natural}
    for beta in settings.sweep_betas:
        out[beta] = sweep_model(beta, settings, natural=natural.model, device=device, seed=seed)
    return out


def sweep_model(beta: float, settings, *, natural: nn.Module, device: torch.device,
                seed: int = 0) -> store.Fitted:
    """One TRADES model of Table 4 (1/lambda = ``beta``, eps = 0.1), as :func:`sweep_models` trains it from
    the natural model ``natural``."""
    x_train, y_train = data.load_mnist("train")
    objective = train.trades(beta=beta, eps=EPS_SWEEP, step_size=settings.sweep_step_size,
                             steps=settings.sweep_steps)
    return store.fitted(lambda: models.build(settings.sweep_architecture, dropout=settings.dropout),
                        data.subset(x_train, y_train, settings.sweep_train, seed), objective, device=device,
                        init=natural if settings.warm_start else None, init_seed=seed,
                        name=f"Table 4 TRADES 1/lambda={beta:g}", epochs=settings.sweep_epochs,
                        batch_size=128, lr=settings.sweep_lr, optimizer=settings.sweep_optimizer,
                        cosine=settings.sweep_cosine, seed=seed)


def training_rows(fitted: dict[str, store.Fitted]) -> list[list[str]]:
    """One row per model for a "what this chapter trained" table: its name, where it came from (trained in
    this run or read from the store) and the wall time of the run that trained it."""
    def duration(seconds: float) -> str:
        return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"

    return [[name, "read from the store" if f.hit else "trained now",
             f"{duration(f.record['train_seconds'])} ({f.record['torch_threads']} threads, "
             f"{f.record['device']})"]
            for name, f in fitted.items()]


@torch.no_grad()
def correct_at(model: nn.Module, x_adv: Tensor, y: Tensor) -> Tensor:
    """Per-example correctness (bool [N]) of ``model`` at the given points (eval mode)."""
    return evaluate.predict(_forward(model, x_adv)) == y


@torch.no_grad()
def accuracy_and_loss(model: nn.Module, x_adv: Tensor, y: Tensor) -> tuple[float, float]:
    """Accuracy and mean loss (cross-entropy in nats, ``attacks.default_loss``) at the given points."""
    logits = _forward(model, x_adv)
    correct = (evaluate.predict(logits) == y).double().mean().item()
    return correct, attacks.default_loss(logits, y).double().mean().item()


@store.memoized
def strong_points(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, batch_size: int = 250,
                  **strong_kw) -> Tensor:
    """The strong evaluation's adversarial examples (``tradeoffs.evaluate.strong_attack``: APGD-CE, APGD-T and
    PGD with restarts, per example the first that fools ``model``), in batches; checked against the threat
    model. Memoized, like :func:`pgd_points`."""
    out = []
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        x_adv = evaluate.strong_attack(model, xb, yb, eps=eps, **strong_kw)
        evaluate.check_threat_model(x_adv, xb, eps=eps, norm="linf", clip=(0.0, 1.0), source="strong")
        out.append(x_adv)
    return torch.cat(out)


@store.memoized
def pgd_steps_curve(model: nn.Module, x: Tensor, y: Tensor, *, eps: float,
                    steps: tuple[int, ...]) -> dict[int, float]:
    """Robust accuracy under PGD-k for each k in ``steps`` (``tradeoffs.evaluate.robust_accuracy_curve``,
    cumulative, step 2.5 eps / k): Athalye et al.'s gradient-masking check, a curve that settles as k grows.
    Memoized, like :func:`pgd_points`."""
    return evaluate.robust_accuracy_curve(model, x, y, eps=eps, steps=steps, show_progress=False)


@store.memoized
def pgd_points(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, steps: int, step_size: float,
               batch_size: int = 500, **pgd_kw) -> Tensor:
    """PGD adversarial examples of ``model`` (white-box), in batches; checked against the threat model.
    The same points give the model's white-box robust accuracy and, on another model, a black-box attack.
    Memoized (``tradeoffs.store.memoized``): a warm run reads the points of the same model and data."""
    out = []
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        x_adv = attacks.pgd(model, xb, yb, eps=eps, steps=steps, step_size=step_size, **pgd_kw)
        evaluate.check_threat_model(x_adv, xb, eps=eps, norm="linf", clip=(0.0, 1.0), source="PGD")
        out.append(x_adv)
    return torch.cat(out)
