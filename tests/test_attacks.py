"""Tests for tradeoffs.attacks: threat-model invariants (also on random inputs, hypothesis), exact answers on
linear models, attack strength ordering and monotone strength in eps, steps and restarts, side effects on the
model, argument validation, the untargeted reference outputs and the targeted mode."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from tradeoffs import attacks, train
from tradeoffs.attacks import default_loss, fgsm, pgd, trades_attack

TOL = 1e-6


pytestmark = pytest.mark.usefixtures("single_thread")


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


def test_bad_numbers_are_refused():
    model, x, y = mlp(), torch.randn(6, 20), torch.randint(0, 3, (6,))
    with pytest.raises(ValueError, match=r"step_size must be a finite number > 0.*got inf"):
        pgd(model, x, y, eps=0.1, step_size=float("inf"), clip=None)
    with pytest.raises(ValueError, match=r"step_size must be a finite number > 0.*got nan"):
        trades_attack(model, x, y, eps=0.1, step_size=float("nan"), clip=None)
    with pytest.raises(ValueError, match=r"step_size must be a finite number > 0.*got 0"):
        pgd(model, x, y, eps=0.1, step_size=0, clip=None)
    with pytest.raises(ValueError, match=r"step_size must be a finite number > 0.*got '0.1'"):
        pgd(model, x, y, eps=0.1, step_size="0.1", clip=None)
    with pytest.raises(TypeError, match=r"steps must be an integer >= 1, got 2.5 of type float"):
        pgd(model, x, y, eps=0.1, steps=2.5, clip=None)
    with pytest.raises(ValueError, match=r"restarts must be >= 1, got 0"):
        pgd(model, x, y, eps=0.1, restarts=0, clip=None)


# ------------------------------------------------------------------ input checks at the edges


@pytest.mark.parametrize("attack", ATTACKS)
def test_non_numeric_eps_is_a_type_error(attack):
    model, x, y = tiny_cnn(), torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    for eps in ("0.3", None, True):
        message = rf"eps must be a number.*got {eps!r} of type {type(eps).__name__}"
        with pytest.raises(TypeError, match=message):
            ATTACKS[attack](model, x, y, eps=eps)
    with pytest.raises(ValueError, match="eps must be a finite number >= 0, got inf"):
        ATTACKS[attack](model, x, y, eps=float("inf"))


@pytest.mark.parametrize("attack", ATTACKS)
def test_batch_sizes_must_match(attack):
    model, x = tiny_cnn(), torch.rand(4, 1, 8, 8)
    for y in (torch.tensor([1]), torch.tensor([0, 1, 2, 0, 1, 2])):   # broadcast / silently cut before
        with pytest.raises(ValueError, match=rf"y has shape \({len(y)},\) but x has 4 examples.*shape \[4\]"):
            ATTACKS[attack](model, x, y, eps=0.1)


@pytest.mark.parametrize("attack", [fgsm, pgd])
def test_labels_are_required_tensors(attack):
    model, x = tiny_cnn(), torch.rand(4, 1, 8, 8)
    with pytest.raises(TypeError, match="y must be a torch.Tensor with one label per example, got NoneType"):
        attack(model, x, None, eps=0.1)
    with pytest.raises(TypeError, match="y must be a torch.Tensor.*got list"):
        attack(model, x, [0, 1, 2, 0], eps=0.1)


@pytest.mark.parametrize("attack", [fgsm, pgd])
def test_target_size_and_type(attack):
    model, x, y = tiny_cnn(), torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"target has shape \(3,\) but x has 4 examples"):
        attack(model, x, y, eps=0.1, target=torch.tensor([1, 2, 0]))
    with pytest.raises(TypeError, match="target must be a torch.Tensor.*got int"):
        attack(model, x, y, eps=0.1, target=1)
    with pytest.raises(TypeError, match=r"integer class indices, got dtype torch.float32; pass y.long\(\)"):
        attack(model, x, y, eps=0.1, target=torch.tensor([1.0, 2.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match=r"class indices in 0..2 .* got values from 1 to 3"):
        attack(model, x, y, eps=0.1, target=torch.tensor([1, 2, 3, 1]))


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("clip", [(0.0, 1.0), None])
def test_non_finite_inputs_are_refused(attack, value, clip):
    model, x, y = tiny_cnn(), torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    x[1, 0, 3, 3] = value
    with pytest.raises(ValueError, match=r"x has 1 non-finite values \(NaN or inf\)"):
        ATTACKS[attack](model, x, y, eps=0.1, clip=clip)


@pytest.mark.parametrize("attack", ATTACKS)
def test_input_dtypes(attack):
    model, y = tiny_cnn(), torch.tensor([0, 1, 2, 0])
    x = torch.rand(4, 1, 8, 8)
    with pytest.raises(TypeError, match=r"floating-point tensor, got dtype torch.uint8.*x.float\(\) / 255"):
        ATTACKS[attack](model, (255 * x).to(torch.uint8), y, eps=0.1)
    with pytest.raises(TypeError, match=r"x is torch.float64 but the model's parameters are torch.float32"):
        ATTACKS[attack](model, x.double(), y, eps=0.1)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        ATTACKS[attack](model, x.numpy(), y, eps=0.1)


@pytest.mark.parametrize("attack", [fgsm, pgd])
def test_class_labels_must_be_integers(attack):
    model, x = tiny_cnn(), torch.rand(4, 1, 8, 8)
    message = r"class logits \[N, 3\] must be integer class indices, got dtype torch.float32"
    with pytest.raises(TypeError, match=message):
        attack(model, x, torch.tensor([0.0, 1.0, 2.0, 0.0]), eps=0.1)
    with pytest.raises(ValueError, match=r"class indices in 0..2"):
        attack(model, x, torch.tensor([0, 1, -1, 0]), eps=0.1)
    torch.manual_seed(0)
    as_int32 = attack(model, x, torch.tensor([0, 1, 2, 0], dtype=torch.int32), eps=0.1)
    torch.manual_seed(0)
    assert torch.equal(as_int32, attack(model, x, torch.tensor([0, 1, 2, 0]), eps=0.1))  # any integer dtype


# -------------------------------------------------- untargeted results, unchanged by the targeted mode

REFERENCE = Path(__file__).parent / "data" / "attacks_untargeted_reference.pt"


def untargeted_outputs() -> dict[str, torch.Tensor]:
    """Untargeted fgsm/pgd on fixed seeds; ``REFERENCE`` holds their outputs bit for bit: the targeted mode
    and the input checks leave the untargeted attacks' results unchanged."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 4))
    binary = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    x, y = torch.rand(24, 1, 8, 8), torch.randint(0, 4, (24,))
    xb, yb = torch.rand(10, 6, dtype=torch.float64), torch.randint(0, 2, (10,)) * 2 - 1
    calls = {
        "fgsm_linf": lambda: fgsm(net, x, y, eps=0.1),
        "fgsm_l2": lambda: fgsm(net, x, y, eps=1.0, norm="l2"),
        "pgd_linf": lambda: pgd(net, x, y, eps=0.1, steps=10),
        "pgd_l2": lambda: pgd(net, x, y, eps=1.0, norm="l2", steps=10),
        "pgd_linf_restarts": lambda: pgd(net, x, y, eps=0.1, steps=5, restarts=3),
        "pgd_l2_unclipped": lambda: pgd(net, x, y, eps=1.0, norm="l2", steps=5, restarts=3, clip=None),
        "pgd_no_random_start": lambda: pgd(net, x, y, eps=0.1, steps=8, random_start=False, step_size=0.02),
        "pgd_early_stop": lambda: pgd(net, x, y, eps=0.1, steps=10, early_stop=True),
        "pgd_binary": lambda: pgd(binary, xb, yb, eps=0.3, steps=6, restarts=2),
        "fgsm_binary": lambda: fgsm(binary, xb, yb, eps=0.3, norm="l2"),
    }
    out = {}
    for name, call in calls.items():
        torch.manual_seed(1)
        out[name] = call()
    return out


def test_untargeted_results_are_bit_identical_to_the_reference():
    reference = torch.load(REFERENCE, weights_only=True)
    ours = untargeted_outputs()
    assert set(ours) == set(reference)
    differing = [name for name in ours if not torch.equal(ours[name], reference[name])]
    assert not differing, f"untargeted outputs changed: {differing}"


# --------------------------------------------------------------------------- targeted mode


def plain_targeted_loop(model, x, t, *, eps, steps, alpha, norm):
    """The textbook targeted PGD: descend CE(f(x'), t) by normalized steps, project, keep the last iterate."""
    x_adv = x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(x_adv), t), x_adv)
        g = g.sign() if norm == "linf" else g / g.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None, None]
        delta = x_adv.detach() - alpha * g - x
        if norm == "linf":
            delta = delta.clamp(-eps, eps)
        else:
            scale = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1)
            delta = delta * scale[:, None, None, None]
        x_adv = (x + delta).clamp(0, 1)
    return x_adv


def share_on(model, x_adv, t) -> float:
    with torch.no_grad():
        return (model(x_adv).argmax(1) == t).float().mean().item()


@pytest.mark.parametrize("norm,eps", [("l2", 5.0), ("linf", 0.4)])
def test_targeted_pgd_reaches_the_target_where_a_plain_loop_does(mnist_mlp, norm, eps):
    model, x, y = mnist_mlp
    t = (y + 1) % 10
    steps = 20
    plain = share_on(model, plain_targeted_loop(model, x, t, eps=eps, steps=steps, alpha=2.5 * eps / steps,
                                                norm=norm), t)
    x_adv = pgd(model, x, y, eps=eps, norm=norm, steps=steps, random_start=False, target=t)
    ours = share_on(model, x_adv, t)
    assert plain >= 0.9                                   # the radius is one where targeting works
    assert ours >= 0.9 and ours >= plain - 0.01
    assert (perturbation_norm(x_adv, x, norm) <= eps + 1e-4).all() and x_adv.min() >= 0 and x_adv.max() <= 1
    # the target passed as the label of an untargeted call is the opposite objective's best point
    untargeted = pgd(model, x, t, eps=eps, norm=norm, steps=steps, random_start=False,
                     loss_fn=lambda logits, t: -default_loss(logits, t))
    assert share_on(model, untargeted, t) < 0.1


def test_targeted_fgsm_and_pgd_are_exact_on_a_linear_model():
    model, x, y, w, _ = linear_binary_problem()
    t = -y                                                # targeted towards the other side
    expected = x + 0.3 * t.double()[:, None] * w.sign()
    torch.testing.assert_close(fgsm(model, x, y, eps=0.3, clip=None, target=t), expected, atol=1e-9, rtol=0)
    torch.testing.assert_close(pgd(model, x, y, eps=0.3, clip=None, target=t), expected, atol=1e-9, rtol=0)
    # targeting the true label is the untargeted attack's opposite: it pushes away from the boundary
    torch.testing.assert_close(fgsm(model, x, y, eps=0.3, clip=None, target=y),
                               x + 0.3 * y.double()[:, None] * w.sign(), atol=1e-9, rtol=0)


def test_targeted_restarts_keep_a_success(mnist_mlp):
    """pgd(target, restarts=R) puts an example on target iff one of R single runs from the same random stream
    does, and otherwise keeps the best targeted objective (-CE towards t) of the R."""
    model, x, y = mnist_mlp
    x, y = x[:200], y[:200]
    t = (y + 3) % 10
    kwargs = {"eps": 0.15, "norm": "linf", "steps": 3, "target": t}
    torch.manual_seed(2)
    singles = [pgd(model, x, y, **kwargs) for _ in range(4)]
    torch.manual_seed(2)
    multi = pgd(model, x, y, restarts=4, **kwargs)
    with torch.no_grad():
        hit = torch.stack([model(s).argmax(1) == t for s in singles])
        objective = torch.stack([-F.cross_entropy(model(s), t, reduction="none") for s in singles])
        multi_hit = model(multi).argmax(1) == t
        multi_objective = -F.cross_entropy(model(multi), t, reduction="none")
    assert torch.equal(multi_hit, hit.any(0))
    assert 0 < hit[0].sum() < hit.any(0).sum() < len(t)     # restarts helped, and not everything is on target
    for i in torch.nonzero(~multi_hit).flatten():
        assert torch.isclose(multi_objective[i], objective[:, i].max(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize("norm,eps,alpha", [("l2", 1.5, 0.1), ("linf", 0.1, 0.01)])
def test_more_steps_at_a_fixed_step_size_never_lose_a_success(mnist_mlp, targeted, norm, eps, alpha):
    model, x, y = mnist_mlp
    t = (y + 1) % 10 if targeted else None
    success = {}
    for steps in (5, 10, 20):
        x_adv = pgd(model, x, y, eps=eps, norm=norm, steps=steps, step_size=alpha, random_start=False,
                    target=t)
        with torch.no_grad():
            pred = model(x_adv).argmax(1)
        success[steps] = pred == t if targeted else pred != y
    assert (success[10] >= success[5]).all() and (success[20] >= success[10]).all()
    assert success[20].sum() > success[5].sum()


# ---------------------------------------------------------------------------- early stopping


@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.75), ("l2", 1.0)])
def test_early_stop_changes_no_outcome_with_restarts(mnist_mlp, targeted, norm, eps):
    """On a trained MNIST model, 8 restarts of PGD-3: with early_stop every example ends up broken (or on
    target) exactly when it does without (random starts drawn for the shrunken batch changed a few)."""
    model, x, y = mnist_mlp
    t = (y + 1) % 10 if targeted else None
    outcome = {}
    for early_stop in (False, True):
        torch.manual_seed(3)
        x_adv = pgd(model, x, y, eps=eps * (2 if targeted else 1), norm=norm, steps=3, restarts=8,
                    early_stop=early_stop, target=t)
        with torch.no_grad():
            pred = model(x_adv).argmax(1)
        outcome[early_stop] = pred == t if targeted else pred != y
    assert 0.1 < outcome[False].float().mean() < 0.9
    assert torch.equal(outcome[True], outcome[False])


def test_early_stop_leaves_the_random_stream_as_without(mnist_mlp):
    """A call that breaks every example in its first restart still draws the later restarts' starts, so the
    next batch of an evaluation gets the random starts it gets without early stopping."""
    model, x, y = mnist_mlp
    states = {}
    for early_stop in (False, True):
        torch.manual_seed(4)
        pgd(model, x[:50], y[:50], eps=0.5, steps=5, restarts=3, early_stop=early_stop)
        states[early_stop] = torch.get_rng_state()
    assert torch.equal(states[True], states[False])


# ------------------------------------------------- properties on random inputs and a small trained MLP


def seeded_mlp(d_in: int = 12, classes: int = 3, dropout: float = 0.0, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d_in, 32), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(32, classes))


def uniform_data(n: int = 64, d: int = 12, classes: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g), torch.randint(0, classes, (n,), generator=g)


def robust_accuracy(model, x, y, **pgd_kw) -> float:
    x_adv = attacks.pgd(model, x, y, **pgd_kw)
    with torch.no_grad():
        return (model(x_adv).argmax(1) == y).float().mean().item()


@settings(max_examples=40, deadline=None)
@given(eps=st.floats(0.0, 2.0), norm=st.sampled_from(["linf", "l2"]), n=st.integers(1, 6),
       shape=st.sampled_from([(12,), (3, 4), (1, 2, 6)]), attack=st.sampled_from(["fgsm", "pgd", "trades"]),
       seed=st.integers(0, 2**16))
def test_attacks_stay_in_the_ball_and_the_box(eps, norm, n, shape, attack, seed):
    torch.manual_seed(seed)
    x = torch.rand(n, *shape)
    x[0].view(-1)[0] = 0.0  # pixels on the box's edges
    x[-1].view(-1)[-1] = 1.0
    y = torch.randint(0, 3, (n,))
    model = seeded_mlp()
    kw = {"eps": eps, "norm": norm}
    x_adv = {"fgsm": lambda: attacks.fgsm(model, x, y, **kw),
             "pgd": lambda: attacks.pgd(model, x, y, steps=3, restarts=2, **kw),
             "trades": lambda: attacks.trades_attack(model, x, steps=3, **kw)}[attack]()
    delta = (x_adv - x).reshape(n, -1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert x_adv.shape == x.shape
    assert bool((size <= eps * (1 + 1e-5) + 1e-6).all())
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    if eps == 0:
        assert torch.equal(x_adv, x)


@pytest.fixture(scope="module")
def trained():
    x, y = uniform_data(256)
    model = train.fit(seeded_mlp(), x, y, train.standard(), epochs=30, batch_size=64, lr=0.1,
                      show_progress=False)
    return model, x, y


@pytest.mark.parametrize("norm,eps_grid",
                         [("linf", (0.0, 0.02, 0.05, 0.1, 0.2)), ("l2", (0.0, 0.1, 0.3, 0.6))])
def test_robust_accuracy_never_increases_with_eps(trained, norm, eps_grid):
    model, x, y = trained
    accuracies = []
    for eps in eps_grid:
        torch.manual_seed(0)  # the same random start direction for every eps, scaled
        accuracies.append(robust_accuracy(model, x, y, eps=eps, norm=norm, steps=10,
                                          step_size=eps / 4 + 1e-9))
    assert accuracies == sorted(accuracies, reverse=True), accuracies
    assert accuracies[0] > accuracies[-1]


@pytest.mark.parametrize("norm,eps", [("linf", 0.08), ("l2", 0.4)])
def test_more_steps_or_restarts_never_raise_robust_accuracy(trained, norm, eps):
    """At a fixed step size and seed, a longer run visits the shorter run's iterates and keeps any
    adversarial example it found; a run with more restarts contains the one with fewer."""
    model, x, y = trained
    by_steps, by_restarts = [], []
    for steps in (1, 2, 5, 10, 20):
        torch.manual_seed(1)
        by_steps.append(robust_accuracy(model, x, y, eps=eps, norm=norm, steps=steps, step_size=eps / 8))
    for restarts in (1, 2, 4):
        torch.manual_seed(1)
        by_restarts.append(robust_accuracy(model, x, y, eps=eps, norm=norm, steps=5, restarts=restarts))
    assert by_steps == sorted(by_steps, reverse=True) and by_steps[0] > by_steps[-1], by_steps
    assert by_restarts == sorted(by_restarts, reverse=True), by_restarts


def test_early_stop_gives_the_same_robust_accuracy(trained):
    model, x, y = trained
    wrong = []
    for early_stop in (False, True):
        torch.manual_seed(2)
        x_adv = attacks.pgd(model, x, y, eps=0.08, steps=10, restarts=3, early_stop=early_stop)
        assert (x_adv - x).abs().max() <= 0.08 + 1e-6
        with torch.no_grad():
            wrong.append(model(x_adv).argmax(1) != y)
    assert torch.equal(wrong[0], wrong[1])


def test_dropout_model_gets_a_deterministic_attack():
    """Attacks run in eval mode: with dropout, two runs from the same start agree, and train mode is
    restored."""
    model = seeded_mlp(dropout=0.5).train()
    x, y = uniform_data(16)
    runs = [attacks.pgd(model, x, y, eps=0.1, steps=5, random_start=False) for _ in range(2)]
    assert torch.equal(runs[0], runs[1]) and model.training
