"""Tests for tradeoffs.attacks: threat-model invariants, exact answers on linear models,
attack strength ordering, restarts, side effects on the model, and argument validation."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from tradeoffs.attacks import default_loss, fgsm, pgd, trades_attack

TOL = 1e-6


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """The tensors here are tiny: intra-op threading only adds overhead (and stalls badly on a
    busy machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ----------------------------------------------------------------------------- helpers


def mlp(d_in: int = 20, k: int = 3) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(d_in, 32), nn.ReLU(), nn.Linear(32, k))


def tiny_cnn(k: int = 3) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 4 * 4, k),
    )


def perturbation_norm(x_adv: torch.Tensor, x: torch.Tensor, norm: str) -> torch.Tensor:
    delta = (x_adv - x).reshape(x.shape[0], -1)
    return delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)


ATTACKS = {
    "fgsm": fgsm,
    "pgd": functools.partial(pgd, steps=7),
    "pgd_restarts": functools.partial(pgd, steps=5, restarts=3),
    "pgd_no_random_start": functools.partial(pgd, steps=5, random_start=False),
    "trades": functools.partial(trades_attack, steps=5),
}


# ------------------------------------------------------------------ threat-model invariants


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("clip", [(0.0, 1.0), None])
@pytest.mark.parametrize("arch", ["mlp", "cnn"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stays_in_ball_and_box(attack, norm, clip, arch, seed):
    torch.manual_seed(seed)
    model = mlp(64) if arch == "mlp" else tiny_cnn()
    x = torch.rand(16, 1, 8, 8) if clip else 3 * torch.randn(16, 1, 8, 8)
    if clip:  # put some pixels exactly on the box faces
        x[:4] = (x[:4] > 0.5).float()
    y = torch.randint(0, 3, (16,))
    # eps from small to larger than the box, so both constraints bind
    eps = float(torch.empty(1).uniform_(0.05, 0.6)) * (1.0 if norm == "linf" else 8.0)

    x_adv = ATTACKS[attack](model, x, y, eps=eps, norm=norm, clip=clip)

    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and not x_adv.requires_grad
    assert (perturbation_norm(x_adv, x, norm) <= eps + TOL).all()
    if clip:
        assert x_adv.min() >= clip[0] and x_adv.max() <= clip[1]
    assert (x_adv != x).any()  # it did move


@pytest.mark.parametrize("attack", ATTACKS)
def test_binary_model_and_float64(attack):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    x = torch.rand(10, 5, dtype=torch.float64)
    y = torch.randint(0, 2, (10,)) * 2 - 1
    x_adv = ATTACKS[attack](model, x, y, eps=0.2, norm="l2")
    assert x_adv.dtype == torch.float64
    assert (perturbation_norm(x_adv, x, "l2") <= 0.2 + TOL).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("attack", ATTACKS)
def test_output_on_input_device(attack, device):
    torch.manual_seed(0)
    model, x = tiny_cnn().to(device), torch.rand(4, 1, 8, 8, device=device)
    x_adv = ATTACKS[attack](model, x, torch.tensor([0, 1, 2, 0], device=device), eps=0.5, norm="l2")
    assert x_adv.device == x.device
    assert (perturbation_norm(x_adv, x, "l2") <= 0.5 + TOL).all()


@pytest.mark.parametrize("attack", ATTACKS)
def test_eps_zero_returns_x(attack):
    torch.manual_seed(0)
    x = torch.rand(4, 1, 8, 8)
    x_adv = ATTACKS[attack](tiny_cnn(), x, torch.tensor([0, 1, 2, 0]), eps=0.0)
    assert torch.equal(x_adv, x)


# ------------------------------------------------------------- exact answers, linear model


def linear_binary_problem(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Linear(12, 1).double()
    x = torch.randn(32, 12, dtype=torch.float64)
    y = torch.randint(0, 2, (32,)) * 2 - 1
    return model, x, y, model.weight.detach()[0], model.bias.detach()


@pytest.mark.parametrize(
    "attack",
    [fgsm, pgd, functools.partial(pgd, restarts=3), functools.partial(pgd, random_start=False)],
)
def test_linf_linear_worst_case_is_exact(attack):
    model, x, y, w, b = linear_binary_problem()
    eps = 0.3
    x_adv = attack(model, x, y, eps=eps, norm="linf", clip=None)
    yf = y.double()[:, None]
    torch.testing.assert_close(x_adv, x - eps * yf * w.sign(), atol=1e-9, rtol=0)
    margin_drop = y * (x @ w + b) - y * (x_adv @ w + b)
    torch.testing.assert_close(margin_drop, torch.full_like(margin_drop, eps * w.abs().sum().item()))


@pytest.mark.parametrize(
    "attack",
    [
        fgsm,
        functools.partial(pgd, random_start=False),
        functools.partial(pgd, step_size=0.25),  # eps / 2: random starts converge in 40 steps
        functools.partial(pgd, step_size=0.25, restarts=2),
    ],
)
def test_l2_linear_worst_case_is_exact(attack):
    model, x, y, w, b = linear_binary_problem(1)
    eps = 0.5
    x_adv = attack(model, x, y, eps=eps, norm="l2", clip=None)
    yf = y.double()[:, None]
    torch.testing.assert_close(x_adv, x - eps * yf * w / w.norm(), atol=1e-6, rtol=0)
    margin_drop = y * (x @ w + b) - y * (x_adv @ w + b)
    torch.testing.assert_close(
        margin_drop, torch.full_like(margin_drop, eps * w.norm().item()), atol=1e-6, rtol=0
    )


# ---------------------------------------------------------------------- attack strength


@pytest.fixture(scope="module")
def trained_mlp():
    """A small ReLU MLP fitted to XOR-labelled Gaussian data in R^4 (clean accuracy ~ 1).
    The curved decision boundary is what makes multi-step PGD beat one-step FGSM."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(300, 4, generator=gen)
    y = (x[:, 0] * x[:, 1] > 0).long()
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    model.eval()
    assert (model(x).argmax(1) == y).float().mean() > 0.95
    return model, x, y


def loss_and_accuracy(model, x, y):
    with torch.no_grad():
        logits = model(x)
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("norm,eps", [("linf", 0.3), ("l2", 0.5)])
def test_pgd_at_least_as_strong_as_fgsm(trained_mlp, norm, eps, seed):
    """Empirical, not a theorem (the loss is not concave in x), but expected on any fitted net."""
    model, x, y = trained_mlp
    torch.manual_seed(seed)
    clean_loss, clean_acc = loss_and_accuracy(model, x, y)
    fgsm_loss, fgsm_acc = loss_and_accuracy(model, fgsm(model, x, y, eps=eps, norm=norm, clip=None), y)
    pgd_loss, pgd_acc = loss_and_accuracy(model, pgd(model, x, y, eps=eps, norm=norm, steps=20, clip=None), y)
    assert clean_loss < fgsm_loss < pgd_loss
    assert pgd_acc <= fgsm_acc < clean_acc


@pytest.mark.parametrize("norm,eps", [("linf", 0.3), ("l2", 0.5)])
def test_restarts_keep_per_example_best(trained_mlp, norm, eps):
    """pgd(restarts=R) equals, per example, the best of R single runs drawn from the same
    random stream: misclassified first, then highest loss."""
    model, x, y = trained_mlp
    kwargs = dict(norm=norm, steps=5, clip=None)
    torch.manual_seed(1)
    singles = [pgd(model, x, y, eps=eps, **kwargs) for _ in range(4)]
    torch.manual_seed(1)
    x_multi = pgd(model, x, y, eps=eps, restarts=4, **kwargs)

    with torch.no_grad():
        logits = torch.stack([model(s) for s in singles])  # [R, N, K]
        losses = torch.stack([F.cross_entropy(lg, y, reduction="none") for lg in logits])
        wrong = logits.argmax(-1) != y
        multi_logits = model(x_multi)
    multi_loss = F.cross_entropy(multi_logits, y, reduction="none")
    multi_wrong = multi_logits.argmax(-1) != y

    assert torch.equal(multi_wrong, wrong.any(0))  # misclassified iff some restart was
    for i in range(len(y)):
        candidates = losses[wrong[:, i] == multi_wrong[i], i]
        assert torch.isclose(multi_loss[i], candidates.max(), rtol=1e-5, atol=1e-6)
    # never weaker than the first restart
    assert (multi_wrong >= wrong[0]).all()
    same = multi_wrong == wrong[0]
    assert (multi_loss[same] >= losses[0, same] - 1e-6).all()
    assert (multi_loss > losses[0] + 1e-4).any()  # and the restarts did help somewhere


def kl_from_clean(model, x, x_adv):
    with torch.no_grad():
        log_p, log_q = F.log_softmax(model(x), 1), F.log_softmax(model(x_adv), 1)
    return (log_p.exp() * (log_p - log_q)).sum(1)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.0)])
def test_trades_attack_increases_kl(norm, eps, seed):
    torch.manual_seed(seed)
    model, x = tiny_cnn(), torch.rand(64, 1, 8, 8)
    x_adv = trades_attack(model, x, None, eps=eps, norm=norm)
    assert (perturbation_norm(x_adv, x, norm) <= eps + TOL).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    kl_adv = kl_from_clean(model, x, x_adv)
    # KL is 0 at x; the attack must beat, for every example, a random point of the sphere
    noise = torch.randn_like(x)
    if norm == "linf":
        noise = eps * noise.sign()
    else:
        noise = eps * noise / noise.flatten(1).norm(dim=1)[:, None, None, None]
    kl_rand = kl_from_clean(model, x, (x + noise).clamp(0, 1))
    assert (kl_adv > kl_rand).all()
    assert kl_adv.mean() > 5 * kl_rand.mean()


def test_trades_attack_binary_model():
    model, x, y, w, b = linear_binary_problem()
    x_adv = trades_attack(model, x, y, eps=0.3, norm="linf", clip=None)
    # KL(p(x) || p(x')) grows with |f(x') - f(x)|, and for f linear every ascent step moves
    # the logit further from f(x) by alpha * ||w||_1: the attack ends on a corner of the ball
    assert (perturbation_norm(x_adv, x, "linf") <= 0.3 + TOL).all()
    torch.testing.assert_close(((x_adv - x) @ w).abs(), torch.full((32,), 0.3 * w.abs().sum().item(),
                               dtype=torch.float64))


def test_default_loss_is_cross_entropy():
    torch.manual_seed(0)
    logits, y = 5 * torch.randn(50, 4), torch.randint(0, 4, (50,))
    torch.testing.assert_close(default_loss(logits, y), F.cross_entropy(logits, y, reduction="none"))


def test_gradient_survives_softmax_saturation():
    """With logit gaps of 20-80, float32 rounds softmax_y to 1 and the textbook CE gradient
    loses its -w_y term; the default loss must still give the exact FGSM direction."""
    torch.manual_seed(0)
    model = nn.Linear(5, 2)
    with torch.no_grad():
        model.weight.mul_(30)
    x = torch.randn(64, 5)
    y = model(x).argmax(1)
    assert (model(x)[:, 0] - model(x)[:, 1]).abs().max() > 40
    x_adv = fgsm(model, x, y, eps=0.1, clip=None)
    w = model.weight.detach()
    torch.testing.assert_close(x_adv, x + 0.1 * (w[1 - y] - w[y]).sign())


# --------------------------------------------------------------- side effects on the model


def bn_dropout_net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(),
                         nn.Dropout(0.5), nn.Linear(16, 3))


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("mode", ["train", "eval", "mixed"])
def test_model_mode_and_grads_untouched(attack, mode):
    torch.manual_seed(0)
    model = bn_dropout_net()
    model.train(mode != "eval")
    if mode == "mixed":
        model[2].eval()  # a frozen BatchNorm inside a training model
    flags = [m.training for m in model.modules()]
    bn_stats = (model[2].running_mean.clone(), model[2].running_var.clone())
    x, y = torch.rand(8, 1, 8, 8), torch.randint(0, 3, (8,))

    with torch.no_grad():  # the attacks must work even when called under no_grad
        ATTACKS[attack](model, x, y, eps=0.1)

    assert [m.training for m in model.modules()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(model[2].running_mean, bn_stats[0]) and torch.equal(model[2].running_var, bn_stats[1])


# ---------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("attack", ATTACKS)
def test_bad_arguments(attack):
    model, x, y = tiny_cnn(), torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"unknown norm 'l1'.*'linf', 'l2'"):
        ATTACKS[attack](model, x, y, eps=0.1, norm="l1")
    with pytest.raises(ValueError, match="eps must be"):
        ATTACKS[attack](model, x, y, eps=-0.1)
    with pytest.raises(ValueError, match="outside the clip range"):
        ATTACKS[attack](model, x + 1.0, y, eps=0.1)


@pytest.mark.parametrize("attack", [fgsm, pgd])
def test_binary_labels_must_be_pm1(attack):
    model, x = nn.Linear(5, 1), torch.randn(6, 5)
    with pytest.raises(ValueError, match=r"\{-1, \+1\}.*2 \* y - 1"):
        attack(model, x, torch.tensor([0, 1, 1, 0, 1, 0]), eps=0.1, clip=None)


def test_loss_fn_must_be_per_example():
    model, x, y = mlp(), torch.randn(6, 20), torch.randint(0, 3, (6,))
    with pytest.raises(ValueError, match="reduction='none'"):
        pgd(model, x, y, eps=0.1, clip=None, loss_fn=F.cross_entropy)  # mean-reduced: wrong
    # a valid custom per-example loss (the CW-style margin) is used
    def margin(logits, y):
        true = logits.gather(1, y[:, None])[:, 0]
        other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), -torch.inf).amax(1)
        return other - true
    x_adv = pgd(model, x, y, eps=0.1, clip=None, loss_fn=margin)
    assert (margin(model(x_adv), y) >= margin(model(x), y) - 1e-6).all()


def test_pgd_argument_checks():
    model, x, y = mlp(), torch.randn(6, 20), torch.randint(0, 3, (6,))
    with pytest.raises(ValueError, match="random_start"):
        pgd(model, x, y, eps=0.1, restarts=2, random_start=False, clip=None)
    with pytest.raises(ValueError, match="steps"):
        pgd(model, x, y, eps=0.1, steps=0, clip=None)
    with pytest.raises(ValueError, match="step_size"):
        pgd(model, x, y, eps=0.1, step_size=-1.0, clip=None)
