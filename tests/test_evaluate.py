"""Tests for tradeoffs.evaluate: clean and robust accuracy, the strong (APGD + PGD) evaluation, the
PGD-steps curve, the threat-model checks, side effects and argument validation."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from tradeoffs import attacks, evaluate, models

pytestmark = pytest.mark.usefixtures("single_thread")


# ----------------------------------------------------------------------------- fixtures

D, K = 20, 5


def synthetic(n: int = 240, seed: int = 0, k: int = K) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs in [0, 1]^D, labels from a random linear teacher: learnable, but not robust at eps ~ 0.1."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, D, generator=g)
    teacher = torch.randn(D, k, generator=g)
    return x, ((x - 0.5) @ teacher).argmax(1)


def trained_mlp(k: int = K, seed: int = 0, dropout: bool = False) -> nn.Module:
    x, y = synthetic(k=k)
    torch.manual_seed(seed)
    layers = [nn.Linear(D, 32), nn.ReLU()] + ([nn.Dropout(0.2)] if dropout else []) + [nn.Linear(32, k)]
    model = nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model.eval()


@pytest.fixture(scope="module")
def mlp() -> nn.Module:
    return trained_mlp()


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return synthetic()


def binary_linear(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A fixed linear margin model f(x) = w . (x - 1/2) and labels +-1 from a noisy version of it."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(D, generator=g)
    x = torch.rand(300, D, generator=g)
    y = torch.where((x - 0.5) @ (w + 0.5 * torch.randn(D, generator=g)) > 0, 1.0, -1.0)
    return models.fixed_linear(w, -0.5 * float(w.sum())), x, y


FAST_STRONG = dict(steps=20, restarts=2, apgd_steps=20, apgd_targets=3)


def distances(x_adv: torch.Tensor, x: torch.Tensor, norm: str) -> torch.Tensor:
    delta = (x_adv - x).reshape(len(x), -1).double()
    return delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)


# ----------------------------------------------------------------------- basic properties


@pytest.mark.parametrize("attack", ["fgsm", "pgd", "strong", attacks.pgd])
def test_eps_zero_gives_clean_accuracy(mlp, data, attack):
    x, y = data
    kw = FAST_STRONG if attack == "strong" else {}
    assert evaluate.robust_accuracy(mlp, x, y, eps=0.0, attack=attack, **kw) == evaluate.accuracy(mlp, x, y)


def test_per_example_outcomes_are_the_accuracies_terms(mlp, data):
    """correct / robust_correct give one boolean per example (for intervals and paired differences); their
    means are accuracy / robust_accuracy, and an example robust under attack is correct clean."""
    x, y = data
    clean = evaluate.correct(mlp, x, y, batch_size=7)
    robust = evaluate.robust_correct(mlp, x, y, eps=0.05, attack="pgd", steps=10, batch_size=7,
                                     show_progress=False)
    assert clean.dtype == robust.dtype == torch.bool and clean.shape == robust.shape == (len(x),)
    assert clean.double().mean().item() == evaluate.accuracy(mlp, x, y)
    assert not (robust & ~clean).any() and robust.sum() < clean.sum()
    assert evaluate.robust_accuracy(mlp, x, y, eps=0.05, attack="fgsm") == pytest.approx(
        evaluate.robust_correct(mlp, x, y, eps=0.05, attack="fgsm").double().mean().item())


def test_robust_accuracy_is_exact_and_monotone_on_a_linear_model():
    """For a linear model FGSM is the exact worst case in the l_inf ball ∩ box (each coordinate moves by eps
    against the label, clamped), so robust accuracy equals a closed form and cannot rise with eps."""
    model, x, y = binary_linear()
    w = model.weight.detach()
    values = []
    for eps in (0.0, 0.02, 0.05, 0.1, 0.2):
        acc = evaluate.robust_accuracy(model, x, y, eps=eps, attack="fgsm")
        worst = (x - eps * y[:, None] * w.sign()).clamp(0, 1)     # move each pixel against y . w
        assert acc == pytest.approx(((model(worst) * y) > 0).float().mean().item())
        assert evaluate.robust_accuracy(model, x, y, eps=eps, attack="pgd", steps=10) == pytest.approx(acc)
        values.append(acc)
    assert values == sorted(values, reverse=True) and values[0] > values[-1]


def test_robust_accuracy_falls_with_eps_on_an_mlp(mlp, data):
    x, y = data
    torch.manual_seed(0)
    accs = [evaluate.robust_accuracy(mlp, x, y, eps=eps, steps=20) for eps in (0.0, 0.03, 0.08, 0.2)]
    assert all(a >= b for a, b in zip(accs, accs[1:])), accs
    assert accs[0] > 0.9 and accs[-1] < 0.2


def test_strong_is_at_most_pgd(mlp, data):
    x, y = data
    torch.manual_seed(0)
    pgd = evaluate.robust_accuracy(mlp, x, y, eps=0.05, attack="pgd", steps=10)
    strong = evaluate.robust_accuracy(mlp, x, y, eps=0.05, attack="strong", **FAST_STRONG)
    assert strong <= pgd
    assert 0.05 < strong < evaluate.accuracy(mlp, x, y)   # the test is not vacuous


@pytest.mark.parametrize("k", [2, 3, 4])
def test_strong_few_classes(k):
    """K = 2 runs APGD-CE + PGD, K = 3 swaps APGD-T for APGD-DLR, K >= 4 runs APGD-T."""
    model = trained_mlp(k=k)
    x, y = synthetic(k=k)
    x_adv = evaluate.strong_attack(model, x, y, eps=0.05, **FAST_STRONG)
    assert distances(x_adv, x, "linf").max() <= 0.05 + 1e-6
    robust = (model(x_adv).argmax(1) == y).float().mean().item()
    assert robust < evaluate.accuracy(model, x, y)


def test_binary_margin_models_work_with_every_attack():
    model, x, y = binary_linear()
    clean = evaluate.accuracy(model, x, y)
    fgsm = evaluate.robust_accuracy(model, x, y, eps=0.05, attack="fgsm")
    pgd = evaluate.robust_accuracy(model, x, y, eps=0.05, attack="pgd", steps=10)
    strong = evaluate.robust_accuracy(model, x, y, eps=0.05, attack="strong", **FAST_STRONG)
    assert clean > fgsm and strong <= pgd
    assert strong == pytest.approx(fgsm, abs=1 / len(x))   # FGSM is already optimal for a linear model


def test_callable_attack_gets_eps_and_norm_as_keywords(mlp, data):
    x, y = data
    seen = {}

    def attack(model, xb, yb, *, eps, norm, **kw):
        seen.update(eps=eps, norm=norm, **kw)
        return attacks.fgsm(model, xb, yb, eps=eps, norm=norm, **kw)

    acc = evaluate.robust_accuracy(mlp, x, y, eps=0.3, norm="l2", attack=attack, clip=(0.0, 1.0))
    assert seen == {"eps": 0.3, "norm": "l2", "clip": (0.0, 1.0)}
    assert acc == evaluate.robust_accuracy(mlp, x, y, eps=0.3, norm="l2", attack="fgsm")


# ------------------------------------------------------------------------------- the curve


def test_curve_is_non_increasing_by_construction(mlp, data):
    """Cumulative curve: an example counts at k only if it survives every PGD-k' with k' <= k."""
    x, y = data
    torch.manual_seed(0)
    curve = evaluate.robust_accuracy_curve(mlp, x, y, eps=0.05, steps=(10, 1, 3, 3))
    assert list(curve) == [1, 3, 10]
    values = list(curve.values())
    assert values == sorted(values, reverse=True)
    assert values[0] <= evaluate.accuracy(mlp, x, y)
    torch.manual_seed(0)                             # the same PGD runs, counted without keeping the best
    raw = evaluate.robust_accuracy_curve(mlp, x, y, eps=0.05, steps=(1, 3, 10), cumulative=False)
    assert all(c <= r for c, r in zip(values, raw.values()))


def test_curve_matches_robust_accuracy_for_one_k(mlp, data):
    x, y = data
    torch.manual_seed(3)
    curve = evaluate.robust_accuracy_curve(mlp, x, y, eps=0.05, steps=(7,), cumulative=False)
    torch.manual_seed(3)
    assert curve[7] == evaluate.robust_accuracy(mlp, x, y, eps=0.05, attack="pgd", steps=7)


# --------------------------------------------------------------------- pyautoattack's APGD


@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.3)])
@pytest.mark.parametrize("loss", ["ce", "dlr", "dlr-targeted"])
def test_apgd_stays_in_the_ball_and_the_box(mlp, data, norm, eps, loss):
    """Checked here independently of evaluate's own check: the package's output is not taken on trust."""
    x, y = data
    x_adv = evaluate.apgd(mlp, x, y, eps=eps, norm=norm, loss=loss, steps=20, targets=3)
    assert distances(x_adv, x, norm).max() <= eps * (1 + 1e-5)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    fooled = mlp(x_adv).argmax(1) != y
    assert fooled.float().mean() > 1 - evaluate.accuracy(mlp, x, y)   # it attacks


def test_apgd_on_another_box_and_rng_untouched(mlp, data):
    x, y = data
    x2 = 2 * x - 1                                   # data in [-1, 1]

    def shifted(z):
        return mlp((z + 1) / 2)

    model = _Lambda(shifted)
    state = torch.get_rng_state()
    x_adv = evaluate.apgd(model, x2, y, eps=0.1, loss="ce", steps=20, clip=(-1.0, 1.0))
    assert torch.equal(torch.get_rng_state(), state)
    assert distances(x_adv, x2, "linf").max() <= 0.1 * (1 + 1e-5)
    assert x_adv.min() >= -1 and x_adv.max() <= 1
    assert (model(x_adv).argmax(1) != y).any()


class _Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def test_attack_leaving_the_ball_is_caught(mlp, data):
    x, y = data

    def cheat(model, xb, yb, *, eps, norm, **kw):
        return (xb + 2 * eps).clamp(0, 1)

    with pytest.raises(AssertionError, match="left the linf ball"):
        evaluate.robust_accuracy(mlp, x, y, eps=0.1, attack=cheat)

    def out_of_box(model, xb, yb, *, eps, norm, **kw):
        return xb + 0.5 * eps

    with pytest.raises(AssertionError, match="left the input box"):
        evaluate.robust_accuracy(mlp, x, y, eps=0.1, attack=out_of_box)


def test_strong_without_pyautoattack_warns_and_falls_back(mlp, data, monkeypatch):
    x, y = data
    monkeypatch.setitem(sys.modules, "pyautoattack.autopgd_base", None)   # makes the import fail
    with pytest.warns(RuntimeWarning, match="pip install pyautoattack"):
        acc = evaluate.robust_accuracy(mlp, x, y, eps=0.05, attack="strong", **FAST_STRONG)
    assert acc < evaluate.accuracy(mlp, x, y)
    with pytest.raises(ImportError, match="pip install pyautoattack"):
        evaluate.apgd(mlp, x, y, eps=0.05)


# --------------------------------------------------------------------------- side effects


def test_mode_and_parameter_gradients_untouched(data):
    x, y = data
    model = trained_mlp(dropout=True).train()
    model[2].eval()                                  # a mixed state must come back exactly
    grads = [torch.full_like(p, 0.5) for p in model.parameters()]
    for p, g in zip(model.parameters(), grads):
        p.grad = g.clone()
    flags = [m.training for m in model.modules()]
    evaluate.accuracy(model, x, y)
    for attack in ("fgsm", "pgd", "strong"):
        kw = FAST_STRONG if attack == "strong" else {"steps": 3} if attack == "pgd" else {}
        evaluate.robust_accuracy(model, x, y, eps=0.05, attack=attack, **kw)
    evaluate.robust_accuracy_curve(model, x, y, eps=0.05, steps=(1, 2))
    evaluate.apgd(model, x, y, eps=0.05, loss="dlr-targeted", steps=5, targets=2)
    assert [m.training for m in model.modules()] == flags
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))


def test_evaluation_is_in_eval_mode():
    """Dropout off during the attack and the count: two runs of a dropout model agree exactly."""
    x, y = synthetic()
    model = trained_mlp(dropout=True).train()
    torch.manual_seed(0)
    a = evaluate.robust_accuracy(model, x, y, eps=0.05, steps=5, random_start=False)
    b = evaluate.robust_accuracy(model, x, y, eps=0.05, steps=5, random_start=False)
    assert a == b and model.training


# -------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("eps", [-0.1, float("nan"), float("inf")])
def test_bad_eps(mlp, data, eps):
    x, y = data
    for call in (lambda: evaluate.robust_accuracy(mlp, x, y, eps=eps),
                 lambda: evaluate.robust_accuracy_curve(mlp, x, y, eps=eps),
                 lambda: evaluate.strong_attack(mlp, x, y, eps=eps)):
        with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
            call()


def test_bad_arguments(mlp, data):
    x, y = data
    with pytest.raises(ValueError, match="unknown attack 'cw'.*'fgsm', 'pgd', 'strong'"):
        evaluate.robust_accuracy(mlp, x, y, eps=0.1, attack="cw")
    with pytest.raises(ValueError, match="unknown norm 'l1'.*'linf', 'l2'"):
        evaluate.robust_accuracy(mlp, x, y, eps=0.1, norm="l1")
    with pytest.raises(ValueError, match="steps must be >= 1"):
        evaluate.robust_accuracy(mlp, x, y, eps=0.1, steps=0)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        evaluate.robust_accuracy(mlp, x, y, eps=0.1, attack="strong", steps=0)
    with pytest.raises(ValueError, match="steps must be a non-empty sequence of integers >= 1"):
        evaluate.robust_accuracy_curve(mlp, x, y, eps=0.1, steps=(0, 5))
    with pytest.raises(ValueError, match="steps must be a non-empty sequence"):
        evaluate.robust_accuracy_curve(mlp, x, y, eps=0.1, steps=())
    with pytest.raises(ValueError, match="needs bounded inputs"):
        evaluate.robust_accuracy(mlp, x, y, eps=0.1, attack="strong", clip=None)
    with pytest.raises(ValueError, match="unknown APGD loss"):
        evaluate.apgd(mlp, x, y, eps=0.1, loss="cw")
    with pytest.raises(ValueError, match="x is empty"):
        evaluate.accuracy(mlp, x[:0], y[:0])
    model, xb, yb = binary_linear()
    with pytest.raises(ValueError, match="needs at least 4 classes"):
        evaluate.apgd(model, xb, yb, eps=0.1, loss="dlr-targeted")
