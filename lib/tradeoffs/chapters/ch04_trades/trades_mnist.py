"""TRADES's MNIST experiments (Zhang et al., ICML 2019, Sec. 5): the binary "1 vs 3" problem of Table 3
with the hinge surrogate and the terms of Theorem 3.1, cached training of the tables' models (warm starts
included), and the white-box / black-box evaluation of Tables 5-6 from one set of PGD points per model.

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

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from tradeoffs import attacks, evaluate, models, store, train
from tradeoffs.data import load_mnist

BINARY_DIGITS = (1, 3)  # Table 3: negatives are "1", positives "3"


def subset(x: Tensor, y: Tensor, n: int | None, seed: int = 0) -> tuple[Tensor, Tensor]:
    """The first n examples of a fixed random permutation (all of them when n is None)."""
    if n is None or n >= len(x):
        return x, y
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return x[order], y[order]


def binary_mnist(split: str, n: int | None = None, seed: int = 0) -> tuple[Tensor, Tensor]:
    """MNIST "1" (label -1) vs "3" (label +1), Sec. 5.1; a fixed random subset of n images if n is given."""
    x, y = load_mnist(split, digits=BINARY_DIGITS)
    return subset(x, torch.where(y == BINARY_DIGITS[1], 1.0, -1.0), n, seed)


def mnist(split: str, n: int | None = None, seed: int = 0) -> tuple[Tensor, Tensor]:
    """The ten-class MNIST split, or a fixed random subset of n images."""
    return subset(*load_mnist(split), n, seed)


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    modes = [m.training for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, mode in zip(model.modules(), modes):
            m.training = mode


def sign_labels(model: nn.Module, x: Tensor) -> Tensor:
    """s = sign(f(x)) in {-1, +1} with sign(0) = +1 (Sec. 2.1), the model in eval mode."""
    with torch.no_grad(), _evaluating(model):
        return torch.where(model(x) >= 0, 1.0, -1.0)


def margin_attack(model: nn.Module, x: Tensor, *, eps: float, steps: int, step_size: float,
                  random_start: bool = True) -> Tensor:
    """argmax over B(x, eps) ∩ [0, 1]^d of phi(f(x') f(x) / lambda) for any lambda > 0 (approximately):
    PGD on the logistic loss of the label sign(f(x)), i.e. towards the other side of f's boundary."""
    return attacks.pgd(model, x, sign_labels(model, x), eps=eps, steps=steps, step_size=step_size,
                       random_start=random_start)


def hinge_trades(*, lam: float, eps: float, step_size: float, steps: int) -> train.Objective:
    """Problem (3) with the hinge loss, for a binary margin model f (labels +-1), as trained for Table 3:

        E phi(f(X) Y) + E max_{X' in B(X, eps)} phi(f(X) f(X') / lambda),

    the inner max by :func:`margin_attack` (K = ``steps`` sign steps of ``step_size`` from x, in eval
    mode); the outer loss in training mode, with gradients through both f(x) and f(x').
    """
    def objective(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        x_adv = margin_attack(model, x, eps=eps, steps=steps, step_size=step_size, random_start=False)
        f, f_adv = model(x), model(x_adv)
        return (train.hinge_loss(f, y) + torch.relu(1 - f_adv * f / lam)).mean()
    return objective


@torch.no_grad()
def _forward(model: nn.Module, x: Tensor) -> Tensor:
    with _evaluating(model):
        return model(x)


def theorem31_terms(model: nn.Module, x: Tensor, y: Tensor, *, lam: float, eps: float, steps: int,
                    step_size: float, r_star_nat: float, r_star_phi: float) -> dict[str, float]:
    """The quantities of Table 3 for a binary margin model f on test data (x, y in +-1):

    ``robust_accuracy`` A_rob = 1 - R_rob (x' from :func:`margin_attack`, K = ``steps``), ``r_phi`` the
    hinge risk E phi(f(X) Y), ``max_term`` E max_{X'} phi(f(X') f(X) / lambda) (over x and the attack's x'),
    ``delta_lhs`` = R_rob - R*_nat, ``delta_rhs`` = (R_phi - R*_phi) + max_term, and ``delta`` = RHS - LHS,
    which Theorem 3.1 says is >= 0.
    """
    x_adv = margin_attack(model, x, eps=eps, steps=steps, step_size=step_size)
    f, f_adv = _forward(model, x), _forward(model, x_adv)
    robust_error = ((f * y <= 0) | (f_adv * y <= 0)).double().mean().item()
    r_phi = train.hinge_loss(f, y).double().mean().item()
    phi_pair = torch.maximum(torch.relu(1 - f * f / lam), torch.relu(1 - f_adv * f / lam))
    max_term = phi_pair.double().mean().item()
    lhs, rhs = robust_error - r_star_nat, (r_phi - r_star_phi) + max_term
    return {"robust_accuracy": 1 - robust_error, "r_phi": r_phi, "max_term": max_term,
            "delta_lhs": lhs, "delta_rhs": rhs, "delta": rhs - lhs}


def natural_terms(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, float]:
    """Natural error and hinge risk of a binary margin model: estimates of R*_nat and R*_phi (Sec. 5.1)."""
    f = _forward(model, x)
    return {"nat_error": (f * y <= 0).double().mean().item(),
            "r_phi": train.hinge_loss(f, y).double().mean().item()}


def cached_fit(name: str, settings: dict, build: Callable[[], nn.Module], objective: train.Objective,
               x: Tensor, y: Tensor, *, device: torch.device, init: nn.Module | None = None,
               **fit_kw) -> nn.Module:
    """``build()`` trained by ``train.fit(model, x, y, objective, **fit_kw)``, through the model cache.

    ``init``: a trained model of the same architecture to start from (Alg. 1, line 3: "or initialize
    network with pre-trained configuration"); ``settings`` must then name it (e.g. its name and settings
    under the key "init"), since the cache key is built from ``settings`` alone.
    """
    if init is not None and "init" not in settings:
        raise ValueError("a warm-started model's settings must name its starting point under 'init'")

    def run(model: nn.Module, checkpoint) -> None:
        if init is not None:
            model.load_state_dict(init.state_dict())
        resumable = {"checkpoint": checkpoint} if "epochs" in fit_kw else {}  # fit checkpoints epochs only
        train.fit(model, x.to(device), y.to(device), objective, desc=name, **resumable, **fit_kw)

    return store.trained_model(name, settings, build, run, device=device)


@torch.no_grad()
def accuracy_and_loss(model: nn.Module, x_adv: Tensor, y: Tensor) -> tuple[float, float]:
    """Accuracy and mean loss (cross-entropy in nats, ``attacks.default_loss``) at the given points."""
    logits = _forward(model, x_adv)
    correct = (evaluate.predict(logits) == y).double().mean().item()
    return correct, attacks.default_loss(logits, y).double().mean().item()


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


EPS_MNIST = 0.3  # Tables 5-6


def training_recipe(settings, seed: int, **extra) -> dict:
    """What determines a chapter-4 MNIST model's weights besides the data: the optimizer of Sec. 5
    (SGD, momentum 0.9, batch 128) at the profile's learning rate, the seed, and ``extra`` (which may
    override the learning rate)."""
    return {"optimizer": "sgd", "momentum": 0.9, "batch_size": 128, "lr": settings.lr, "seed": seed, **extra}


def eps03_models(settings, *, device: torch.device, seed: int = 0) -> dict[str, nn.Module]:
    """The SmallCNNs of Tables 5-6, through the model cache (trained on a miss), for another chapter to share:

    * ``"natural"`` (cache name ``mnist_smallcnn_natural``): natural training, Table 6's "Natural" source;
    * ``"madry"`` (``mnist_madry_eps0.3``): Madry et al.'s PGD adversarial training at eps = 0.3;
    * ``"trades"`` (``mnist_trades_beta6_eps0.3``): TRADES, 1/lambda = 6, eps = 0.3.

    ``settings`` is chapter 4's :class:`tradeoffs.chapters.ch04_trades.settings.TradesChapter` for the profile
    (``profiles.settings("04_trades", profile)``): the budget (images, epochs, attack steps K and step
    size). With the defaults (paper profile) both robust models train from scratch at eps = 0.3, as
    released. A short budget uses ``robust_warm_start`` (start from the natural model, Alg. 1, line 3) and
    ``robust_eps_ramp`` (stages at growing eps, each one ``train.fit`` call on ``robust_train`` fresh images,
    PGD step ``robust_step_size * eps / 0.3``, each stage cached with the previous one as its ``init``):
    from a natural start directly at eps = 0.3, TRADES first flattens its predictions to shrink the (then
    large) KL term, which a short run never undoes.
    """
    x_train, y_train = mnist("train")
    def build() -> nn.Module:
        return models.SmallCNN(dropout=settings.dropout)

    natural_settings = training_recipe(settings, seed, data="mnist train", n=settings.robust_natural_train,
                                       epochs=settings.robust_natural_epochs, lr=settings.natural_lr,
                                       dropout=settings.dropout)
    out = {"natural": cached_fit(
        "mnist_smallcnn_natural", natural_settings, build, train.standard(),
        *subset(x_train, y_train, settings.robust_natural_train, seed), device=device,
        epochs=settings.robust_natural_epochs, batch_size=128, lr=settings.natural_lr)}
    ramp = tuple(settings.robust_eps_ramp) or (EPS_MNIST,)
    if ramp[-1] != EPS_MNIST:
        raise ValueError(f"robust_eps_ramp must end at eps = {EPS_MNIST}, got {ramp}")
    names = {"madry": "mnist_madry_eps0.3", "trades": "mnist_trades_beta6_eps0.3"}
    n = settings.robust_train
    x_all, y_all = subset(x_train, y_train, None if n is None else n * len(ramp), seed + 2)
    for method in ("madry", "trades"):
        init, init_settings = (out["natural"], {"name": "mnist_smallcnn_natural", "settings": natural_settings}) \
            if settings.robust_warm_start else (None, None)
        for stage, eps in enumerate(ramp):
            attack = dict(eps=eps, step_size=settings.robust_step_size * eps / EPS_MNIST, steps=settings.robust_steps)
            objective = train.adversarial(**attack) if method == "madry" else train.trades(beta=6.0, **attack)
            x_sub, y_sub = (x_all, y_all) if n is None else (x_all[stage * n:(stage + 1) * n],
                                                             y_all[stage * n:(stage + 1) * n])
            recipe = training_recipe(
                settings, seed, data="mnist train", n=n, subset_seed=seed + 2, arch="SmallCNN",
                epochs=settings.robust_epochs, milestones=list(settings.robust_milestones), method=method,
                dropout=settings.dropout, **attack, **({"beta": 6.0} if method == "trades" else {}),
                init=init_settings,
                **({"eps_ramp": list(ramp), "stage": stage} if len(ramp) > 1 else {}))
            last = stage == len(ramp) - 1
            name = names[method] if last else f"{names[method]}_stage{stage}_eps{eps:g}"
            model = cached_fit(
                name, recipe, build, objective, x_sub, y_sub, device=device, init=init,
                epochs=settings.robust_epochs, batch_size=128, lr=settings.lr, milestones=settings.robust_milestones,
                seed=seed + stage)
            init, init_settings = model, {"name": name, "settings": recipe}
        out[method] = model
    return out
