"""One training loop with pluggable objectives.

An objective is called as ``objective(model, x, y) -> scalar loss``; those below are frozen dataclasses
(hashable, printed as their fields, so a cached run keys on them) built by the functions of the table, and the
loop (:func:`fit`) never changes when the training method does:

=====================  ===========================================================  ==========================
objective              minimizes                                                    paper
=====================  ===========================================================  ==========================
``standard()``         E l(f(x), y)                                                 empirical risk
``adversarial(eps=)``  E max_{x' in B(x, eps)} l(f(x'), y)                          Madry et al. Eq. (2.1)
``trades(beta=, ...)`` E l(f(x), y) + beta * max_{x'} KL(p(x) || p(x'))             TRADES Eq. (5), Alg. 1
``noise(sigma=)``      E l(f(x + delta), y),  delta ~ N(0, sigma^2 I)               two-Gaussians Eq. (5)
``joint(lam=, eps=)``  lam * E max_{x'} l(f(x'), y) - (lam - 1) * E l(f(x), y)      Suggala et al. Eq. (7)
=====================  ===========================================================  ==========================

``eps_ramp(objective, warmup=)`` wraps an adversarial objective so that its eps grows over the start of a run.
``loss(logits, y)`` is a per-example loss, ``attacks.default_loss`` (cross-entropy, or the
logistic loss of a binary margin) unless given. Inner maximizations run in eval mode (see
``tradeoffs.attacks``); the outer loss in the model's own (training) mode.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tradeoffs import attacks, dryrun, store
from tradeoffs.progress import progress

Objective = Callable[[nn.Module, Tensor, Tensor], Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]  # (logits, y) -> per-example loss [N]

__all__ = [
    "Adversarial",
    "EpsRamp",
    "Joint",
    "Noise",
    "Objective",
    "Standard",
    "Trades",
    "adversarial",
    "eps_ramp",
    "fit",
    "hinge_loss",
    "joint",
    "noise",
    "standard",
    "trades",
    "trades_loss",
]


# ----------------------------------------------------------------------------- losses


def hinge_loss(logits: Tensor, y: Tensor) -> Tensor:
    """max(0, 1 - y f(x)), labels in {-1, +1}: the soft-margin SVM loss (Tsipras et al., App. C, Eq. (5))."""
    return torch.relu(1 - y * logits.reshape(-1))


def trades_loss(model: nn.Module, x: Tensor, y: Tensor, *, beta: float, eps: float, step_size: float,
                steps: int, norm: str = "linf") -> Tensor:
    """The TRADES objective for one minibatch (Zhang et al. 2019, Eq. (5) with the surrogates of Alg. 1):

        L = CE(f(x), y) + beta * (1/N) sum_i KL( p(x_i) || p(x'_i) ),   beta = 1 / lambda,

    with x' from :func:`tradeoffs.attacks.trades_attack` (the inner maximization, K = ``steps``
    projected steps of size ``step_size``, run in eval mode) and p = softmax(f). The KL is
    summed over classes and divided by the batch size N (``batchmean``), as in the official
    ``trades.py``; gradients flow through both p(x) and p(x').

    Two savings over the authors' release, same objective: the clean logits are computed once
    and serve both the cross-entropy and the KL (the release runs a second clean forward pass,
    with its own dropout mask); and a model without BatchNorm takes x and x' in one
    concatenated forward pass (with BatchNorm that would mix their batch statistics).
    Binary margin models (logits [N]) are treated as two-class logits [0, f], labels in {-1, +1}.
    """
    _check_trades_args(beta, eps, step_size, steps, norm)
    x_adv = attacks.trades_attack(model, x, eps=eps, step_size=step_size, steps=steps, norm=norm)
    logits_clean, logits_adv = _two_forwards(model, x, x_adv)
    natural = attacks.default_loss(logits_clean, y).mean()
    log_p_clean = F.log_softmax(attacks._class_logits(logits_clean), dim=1)
    log_p_adv = F.log_softmax(attacks._class_logits(logits_adv), dim=1)
    robust = F.kl_div(log_p_adv, log_p_clean, reduction="sum", log_target=True) / x.shape[0]
    return natural + beta * robust


# ------------------------------------------------------------------------- objectives
#
# Each objective is a frozen dataclass: called as objective(model, x, y) -> scalar loss, hashable, compared
# and printed by its fields, so a cached training run (``tradeoffs.store.fit``) keys on exactly what it
# optimizes.


def _show(value: object) -> str:
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{value.__module__.removeprefix('tradeoffs.')}.{value.__qualname__}"
    return repr(value)


class _Printed:
    """Printed as the constructor call, functions by name: ``Adversarial(eps=0.3, attack=attacks.pgd,
    ...)``."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={_show(getattr(self, f.name))}" for f in dataclasses.fields(self))
        return f"{type(self).__name__}({fields})"


@dataclasses.dataclass(frozen=True, repr=False)
class Standard(_Printed):
    """Empirical risk minimization: min E l(f(x), y)."""

    loss: LossFn | None = None

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return (self.loss or attacks.default_loss)(model(x), y).mean()


@dataclasses.dataclass(frozen=True, repr=False)
class Adversarial(_Printed):
    """Adversarial training (Madry et al. 2018, Eq. (2.1); the two-Gaussians paper, Eq. (4)):

        min E max_{x' in B(x, eps)} l(f(x'), y),

    the inner maximum approximated by ``attack(model, x, y, eps=eps, **dict(options))`` (PGD by default;
    ``options`` as sorted (name, value) pairs: ``steps``, ``step_size``, ``norm``...), on the training loss
    unless ``options`` names another ``loss_fn``.
    """

    eps: float
    attack: Callable = attacks.pgd
    loss: LossFn | None = None
    options: tuple[tuple[str, object], ...] = ()

    def __post_init__(self) -> None:
        attacks.check_eps(self.eps)

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        loss = self.loss or attacks.default_loss
        x_adv = self.attack(model, x, y, eps=self.eps, **{"loss_fn": loss, **dict(self.options)})
        return loss(model(x_adv), y).mean()


@dataclasses.dataclass(frozen=True, repr=False)
class Trades(_Printed):
    """TRADES (Zhang et al. 2019, Alg. 1): :func:`trades_loss` as an objective; beta = 1/lambda."""

    beta: float
    eps: float
    step_size: float
    steps: int
    norm: str = "linf"

    def __post_init__(self) -> None:
        _check_trades_args(self.beta, self.eps, self.step_size, self.steps, self.norm)

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return trades_loss(model, x, y, beta=self.beta, eps=self.eps, step_size=self.step_size,
                           steps=self.steps, norm=self.norm)


@dataclasses.dataclass(frozen=True, repr=False)
class Noise(_Printed):
    """Data-randomized training (the two-Gaussians paper, Eq. (5)):

        min E l(f(x + delta), y),  delta ~ N(0, sigma^2 I).

    The noisy input is not clipped to the data range: the papers add unbounded Gaussian noise.
    """

    sigma: float
    loss: LossFn | None = None

    def __post_init__(self) -> None:
        if not (self.sigma >= 0 and math.isfinite(self.sigma)):
            raise ValueError(f"sigma must be a finite number >= 0, got {self.sigma}")

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return (self.loss or attacks.default_loss)(model(x + self.sigma * torch.randn_like(x)), y).mean()


@dataclasses.dataclass(frozen=True, repr=False)
class Joint(_Printed):
    """The joint objective of Suggala et al. (AISTATS 2019), Eq. (7):

        min lam * E max_{||delta|| <= eps} l(f(x + delta), y) - (lam - 1) * E l(f(x), y),

    i.e. the classification risk plus lam times the adversarial excess E[max l(x') - l(x)]
    with the base classifier replaced by the label. lam = 0 is standard training, lam = 1
    Madry adversarial training; a term whose weight is 0 is not computed (so lam = 0 runs no
    attack). The inner maximum is ``attack`` as in :class:`Adversarial`.
    """

    lam: float
    eps: float
    attack: Callable = attacks.pgd
    loss: LossFn | None = None
    options: tuple[tuple[str, object], ...] = ()

    def __post_init__(self) -> None:
        if not (self.lam >= 0 and math.isfinite(self.lam)):
            raise ValueError(f"lam must be a finite number >= 0, got {self.lam}")
        attacks.check_eps(self.eps)

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        clean_term = Standard(self.loss)
        adversarial_term = Adversarial(self.eps, self.attack, self.loss, self.options)
        if self.lam == 0:
            return clean_term(model, x, y)
        if self.lam == 1:
            return adversarial_term(model, x, y)
        return self.lam * adversarial_term(model, x, y) - (self.lam - 1) * clean_term(model, x, y)


@dataclasses.dataclass(frozen=True, repr=False)
class EpsRamp(_Printed):
    """A curriculum on the threat model: ``objective`` (:class:`Adversarial`, :class:`Trades` or
    :class:`Joint`) with its eps raised linearly from ``start * eps`` to ``eps`` over the first ``warmup``
    fraction of the run's minibatches, then held; the attack's step size is scaled with eps, so its K steps
    reach as far, in units of eps, all along. :func:`fit` asks ``objective.at(progress)`` for each minibatch's
    objective, ``progress`` the fraction of the run's minibatches done once it is. Called directly (outside
    ``fit``) it is ``objective``. Short adversarial trainings need the ramp: from scratch at MNIST's full eps
    = 0.3, a few hundred minibatches leave a constant predictor.
    """

    objective: Adversarial | Trades | Joint
    warmup: float
    start: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.objective, (Adversarial, Trades, Joint)):
            raise TypeError(f"EpsRamp ramps the eps of an Adversarial, Trades or Joint objective, got "
                             f"{type(self.objective).__name__}")
        if not (0 < self.warmup <= 1 and 0 <= self.start <= 1):
            raise ValueError(f"warmup must be in (0, 1] and start in [0, 1], got warmup={self.warmup}, "
                             f"start={self.start}")

    def scale(self, progress: float) -> float:
        """eps(progress) / eps: ``start`` at progress 0, 1 from progress ``warmup`` on."""
        return self.start + (1 - self.start) * min(1.0, max(0.0, progress) / self.warmup)

    def at(self, progress: float) -> Adversarial | Trades | Joint:
        """The objective of the minibatch at ``progress``: eps and the attack's step size times
        :meth:`scale`."""
        scale = self.scale(progress)
        changes: dict[str, object] = {"eps": self.objective.eps * scale}
        if isinstance(self.objective, Trades):
            changes["step_size"] = self.objective.step_size * scale
        else:
            changes["options"] = tuple((k,
                                        v * scale if k == "step_size" else v)
                                       for k, v in self.objective.options)
        return dataclasses.replace(self.objective, **changes)

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return self.objective(model, x, y)


def standard(loss: LossFn | None = None) -> Standard:
    """Empirical risk minimization: min E l(f(x), y) (:class:`Standard`)."""
    return Standard(loss)


def adversarial(*, eps: float, attack: Callable = attacks.pgd, loss: LossFn | None = None,
                **attack_options) -> Adversarial:
    """Madry et al.'s adversarial training (:class:`Adversarial`), the attack's keywords as
    ``attack_options``."""
    return Adversarial(eps, attack, loss, tuple(sorted(attack_options.items())))


def trades(*, beta: float, eps: float, step_size: float, steps: int, norm: str = "linf") -> Trades:
    """TRADES (:class:`Trades`); beta = 1/lambda."""
    return Trades(beta, eps, step_size, steps, norm)


def noise(*, sigma: float, loss: LossFn | None = None) -> Noise:
    """Data-randomized training (:class:`Noise`)."""
    return Noise(sigma, loss)


def joint(*, lam: float, eps: float, attack: Callable = attacks.pgd, loss: LossFn | None = None,
          **attack_options) -> Joint:
    """Suggala et al.'s joint objective (:class:`Joint`), the attack's keywords as ``attack_options``."""
    return Joint(lam, eps, attack, loss, tuple(sorted(attack_options.items())))


def eps_ramp(objective: Adversarial | Trades | Joint, *, warmup: float, start: float = 0.0) -> EpsRamp:
    """``objective`` with its eps ramped up over the first ``warmup`` fraction of the run
    (:class:`EpsRamp`)."""
    return EpsRamp(objective, warmup, start)


# ------------------------------------------------------------------------------- loop


def fit(model: nn.Module, x: Tensor, y: Tensor, objective: Objective, *, batch_size: int, lr: float,
        epochs: int | None = None, steps: int | None = None, optimizer: str = "sgd", momentum: float = 0.9,
        weight_decay: float = 0.0, milestones: Sequence[int] = (), gamma: float = 0.1, cosine: bool = False,
        seed: int = 0, generator: torch.Generator | None = None, checkpoint: str | Path | None = None,
        project: Callable[[nn.Module], None] | None = None, show_progress: bool = True,
        desc: str = "training") -> nn.Module:
    """Minibatch training of ``model`` on in-memory data (x, y) by ``objective``; returns it in eval mode.

    Give ``epochs`` (shuffled passes over the data, the order drawn from ``seed`` and the epoch)
    or ``steps`` (that many minibatches drawn with replacement from ``generator``, a CPU
    generator; for the synthetic experiments of chapter 1). The learning rate is ``lr``, times
    ``gamma`` at each epoch in ``milestones`` (the papers' step schedule), or cosine-decayed to 0
    over the run when ``cosine``. ``optimizer``: "sgd" (with ``momentum``) or "adam".
    ``project``, if given, is applied to the model after every step (projected SGD). A scheduled objective
    (one with an ``at(progress)`` method, e.g. :func:`eps_ramp`) gives each minibatch's objective.

    ``checkpoint`` (epochs only): a file written atomically after every epoch with the model,
    the optimizer, the epoch and the random-number state; if it exists when ``fit`` starts, the
    run resumes from it, and the resumed run equals the uninterrupted one. A checkpoint of a
    different run (another objective, data, architecture or setting) is an error; an unreadable one is
    set aside and training starts over.

    In a dry run (:mod:`tradeoffs.dryrun`) at most ``dryrun.EPOCHS`` epochs of ``dryrun.BATCHES`` minibatches
    of ``dryrun.BATCH_SIZE`` examples run (``steps``: at most ``dryrun.BATCHES``).
    """
    if (epochs is None) == (steps is None):
        raise ValueError("give exactly one of epochs= (passes over the data) or steps= (minibatches)")
    if (epochs if epochs is not None else steps) < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"epochs/steps and batch_size must be >= 1 and lr > 0, got "
                         f"epochs={epochs}, steps={steps}, batch_size={batch_size}, lr={lr}")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must hold the same number (> 0) of examples, got {len(x)} and {len(y)}")
    if checkpoint is not None and epochs is None:
        raise ValueError("checkpoint= needs epochs=: checkpoints are written at the end of each epoch")
    epochs, steps, batch_size = _dry_run_budget(epochs, steps, batch_size)
    n, batch_size = len(x), min(batch_size, len(x))
    batches_per_epoch = math.ceil(n / batch_size) if epochs else steps
    if dryrun.active():
        batches_per_epoch = min(batches_per_epoch, dryrun.BATCHES)
    total = (epochs or 1) * batches_per_epoch
    opt = _optimizer(optimizer, model, lr, momentum, weight_decay)
    first_epoch = 0
    if checkpoint is not None:
        run = {"objective": _show(objective), "data": store.tensor_digest(x, y), "model": repr(model), "n": n,
               "batch_size": batch_size, "epochs": epochs, "lr": lr, "optimizer": optimizer,
               "momentum": momentum, "weight_decay": weight_decay, "milestones": list(milestones),
               "gamma": gamma, "cosine": cosine, "seed": seed, "project": _show(project)}
        first_epoch = _resume(checkpoint, run, model, opt)

    bar = progress(total=total, initial=first_epoch * batches_per_epoch, disable=not show_progress,
                   desc=desc, leave=False)
    model.train()
    for epoch in range(first_epoch, epochs or 1):
        for i, idx in enumerate(_batches(n, batch_size, epoch, seed, steps, generator, x.device)):
            if i == batches_per_epoch:
                break
            t = epoch * batches_per_epoch + i
            for group in opt.param_groups:
                group["lr"] = _learning_rate(lr, t / total, epoch, milestones, gamma, cosine)
            opt.zero_grad(set_to_none=True)
            loss = _objective_at(objective, (t + 1) / total)(model, x[idx], y[idx])
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training diverged: loss {loss.item()} at epoch "
                                         f"{epoch}, batch {i}; lower the learning rate")
            loss.backward()
            opt.step()
            if project is not None:
                with torch.no_grad():
                    project(model)
            bar.update()
            if show_progress and i % 20 == 0:
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
        if checkpoint is not None:
            _save_checkpoint(checkpoint, run, epoch + 1, model, opt)
    bar.close()
    return model.eval()


def _objective_at(objective: Objective, progress: float) -> Objective:
    """The objective of the minibatch at ``progress`` (in (0, 1]) of a run: ``objective.at(progress)`` for a
    scheduled objective (:class:`EpsRamp`), else ``objective`` itself."""
    at = getattr(objective, "at", None)
    return at(progress) if callable(at) else objective
def _dry_run_budget(epochs: int | None, steps: int | None,
                    batch_size: int) -> tuple[int | None, int | None, int]:
    """The loop's budget, capped in a dry run (:mod:`tradeoffs.dryrun`)."""
    if not dryrun.active():
        return epochs, steps, batch_size
    epochs = None if epochs is None else min(epochs, dryrun.EPOCHS)
    steps = None if steps is None else min(steps, dryrun.BATCHES)
    return epochs, steps, min(batch_size, dryrun.BATCH_SIZE)


def _two_forwards(model: nn.Module, x: Tensor, x_adv: Tensor) -> tuple[Tensor, Tensor]:
    """f(x), f(x'): one concatenated pass when the model has no BatchNorm, else two; standard-format
    conv weights in channels-last for these passes (``attacks._fast_forward``)."""
    net = attacks._fast_forward(model, x, differentiable=True)
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return net(x), net(x_adv)
    logits = net(torch.cat([x, x_adv]))
    return logits[: len(x)], logits[len(x):]


def _optimizer(name: str, model: nn.Module, lr: float, momentum: float, weight_decay: float):
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; valid: 'sgd', 'adam'")


def _learning_rate(lr: float, progress_fraction: float, epoch: int, milestones: Sequence[int], gamma: float,
                   cosine: bool) -> float:
    if cosine:
        return lr * 0.5 * (1 + math.cos(math.pi * progress_fraction))
    return lr * gamma ** sum(epoch >= m for m in milestones)


def _batches(n: int, batch_size: int, epoch: int, seed: int, steps: int | None,
             generator: torch.Generator | None, device: torch.device):
    """Index tensors of one epoch's minibatches (a shuffled pass), or ``steps`` draws with replacement."""
    if steps is not None:
        for _ in range(steps):
            yield torch.randint(0, n, (batch_size,), generator=generator).to(device)
        return
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).to(device)
    yield from order.split(batch_size)


# ------------------------------------------------------------------------ checkpoints


def _save_checkpoint(path: str | Path, run: dict, epoch: int, model: nn.Module, opt) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"run": run, "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
             "cpu_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    store.write_atomic(path, buffer.getvalue())  # an interruption leaves the previous checkpoint intact


def _resume(path: str | Path, run: dict, model: nn.Module, opt) -> int:
    """Load the checkpoint at ``path`` if there is one; return the epoch to start from."""
    path = Path(path)
    if not path.exists():
        return 0
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        saved_run = state["run"]
    except Exception as error:  # unreadable: keep it for inspection, start over
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        warnings.warn(f"checkpoint {path} is unreadable ({type(error).__name__}: {error}); moved "
                      f"it to {aside} and training starts over", stacklevel=3)
        return 0
    if saved_run != run:
        changed = sorted(k for k in run if saved_run.get(k) != run[k])
        raise ValueError(f"checkpoint {path} belongs to a different training run (differs in: "
                         f"{', '.join(changed)}); delete it to start over, or pass another checkpoint path")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["cpu_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["epoch"])


def _check_trades_args(beta: float, eps: float, step_size: float, steps: int, norm: str) -> None:
    attacks.check_eps(eps)
    if not (beta >= 0 and math.isfinite(beta)):
        raise ValueError(f"beta (= 1/lambda) must be a finite number >= 0, got {beta}")
    if not (step_size > 0 and math.isfinite(step_size)):
        raise ValueError(f"step_size must be a finite number > 0, got {step_size}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    attacks.check_norm(norm)
