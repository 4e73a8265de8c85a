"""The behaviour of the kernels: attack invariants (hypothesis), monotone attack strength, the
objectives' special cases, TRADES' batch scaling, checkpoint/resume, seeding (the store: test_store.py)."""

import functools
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from tradeoffs import attacks, train

ROOT = Path(__file__).resolve().parents[1]


def mlp(d_in: int = 12, classes: int = 3, dropout: float = 0.0, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d_in, 32), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(32, classes))


def data(n: int = 64, d: int = 12, classes: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g), torch.randint(0, classes, (n,), generator=g)


def robust_accuracy(model, x, y, **pgd_kw) -> float:
    x_adv = attacks.pgd(model, x, y, **pgd_kw)
    with torch.no_grad():
        return (model(x_adv).argmax(1) == y).float().mean().item()


# ------------------------------------------------------------------------------ attacks


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
    model = mlp()
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
    x, y = data(256)
    model = train.fit(mlp(), x, y, train.standard(), epochs=30, batch_size=64, lr=0.1, show_progress=False)
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
    model = mlp(dropout=0.5).train()
    x, y = data(16)
    runs = [attacks.pgd(model, x, y, eps=0.1, steps=5, random_start=False) for _ in range(2)]
    assert torch.equal(runs[0], runs[1]) and model.training


# ----------------------------------------------------------------------------- objectives


def one_step(objective, seed: int = 0) -> list[torch.Tensor]:
    """Parameters after one SGD step of ``objective`` from a fixed model, batch and random state."""
    model, (x, y) = mlp(seed=3), data(32)
    torch.manual_seed(seed)
    train.fit(model, x, y, objective, steps=1, batch_size=32, lr=0.1, momentum=0.0,
              generator=torch.Generator().manual_seed(0), show_progress=False)
    return [p.detach().clone() for p in model.parameters()]


def test_joint_at_lambda_1_is_madry_and_at_0_is_standard():
    pgd_kw = {"eps": 0.1, "steps": 5, "step_size": 0.03}
    for joint, reference in ((train.joint(lam=1, **pgd_kw), train.adversarial(**pgd_kw)),
                             (train.joint(lam=0, **pgd_kw), train.standard())):
        assert all(torch.equal(a, b) for a, b in zip(one_step(joint), one_step(reference)))
    # in between, Eq. (7): lam * adversarial - (lam - 1) * clean, evaluated on the same batch
    model, (x, y) = mlp(), data(32)
    torch.manual_seed(0)
    value = train.joint(lam=2.5, **pgd_kw)(model, x, y)
    torch.manual_seed(0)
    expected = 2.5 * train.adversarial(**pgd_kw)(model, x, y) - 1.5 * train.standard()(model, x, y)
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)


def test_trades_loss_scales_the_kl_by_the_batch_size():
    model, (x, y) = mlp(), data(40)
    kw = {"eps": 0.1, "step_size": 0.02, "steps": 3}
    torch.manual_seed(0)
    loss = train.trades_loss(model, x, y, beta=6.0, **kw)
    torch.manual_seed(0)  # the same x' (same start noise)
    x_adv = attacks.trades_attack(model, x, **kw)
    natural = F.cross_entropy(model(x), y)
    kl_sum = F.kl_div(F.log_softmax(model(x_adv), 1), F.softmax(model(x), 1), reduction="sum")
    assert loss.item() == pytest.approx((natural + 6.0 * kl_sum / len(x)).item(), rel=1e-5)
    torch.manual_seed(0)
    assert train.trades_loss(model, x, y, beta=0.0, **kw).item() == pytest.approx(natural.item(), rel=1e-6)


def test_trades_loss_with_batchnorm_uses_separate_forwards():
    """With BatchNorm, x and x' go through the model in two forward passes (one concatenated pass would mix
    their batch statistics): the loss equals the two-pass formula and differs from the one-pass value."""
    import copy

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    with torch.no_grad():
        model(torch.rand(32, 12) * 3)                      # running statistics away from their init
    x, y = data(16)
    reference = copy.deepcopy(model)
    torch.manual_seed(1)
    loss = train.trades_loss(model.train(), x, y, beta=1.0, eps=0.5, step_size=0.2, steps=3)
    torch.manual_seed(1)
    x_adv = attacks.trades_attack(reference, x, eps=0.5, step_size=0.2, steps=3)
    reference.train()

    def formula(logits_clean, logits_adv):
        kl = F.kl_div(F.log_softmax(logits_adv, 1), F.log_softmax(logits_clean, 1), reduction="sum",
                      log_target=True)
        return F.cross_entropy(logits_clean, y) + kl / len(x)

    two_passes = formula(reference(x), reference(x_adv))
    one_pass = formula(*reference(torch.cat([x, x_adv])).split(len(x)))
    assert loss.item() == pytest.approx(two_passes.item(), rel=1e-5)
    assert abs(loss.item() - one_pass.item()) > 1e-3
    loss.backward()
    assert model[1].weight.grad is not None


def test_every_objective_trains_a_binary_margin_model():
    x = torch.rand(32, 12)
    y = torch.where(x[:, 0] > 0.5, 1.0, -1.0)
    for objective in (train.standard(train.hinge_loss), train.adversarial(eps=0.05, steps=2),
                      train.trades(beta=1.0, eps=0.05, step_size=0.02, steps=2), train.noise(sigma=0.1),
                      train.joint(lam=2, eps=0.05, steps=2)):
        model = mlp(classes=1)
        before = [p.detach().clone() for p in model.parameters()]
        train.fit(model, x, y.unsqueeze(1).squeeze(1), lambda m, a, b: objective(_margin(m), a, b),
                  epochs=1, batch_size=16, lr=0.1, show_progress=False)
        assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def _margin(model):
    """The [N, 1] output of an nn.Linear(., 1) head as the margin [N]."""
    class Margin(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, x):
            return self.inner(x).squeeze(1)
    return Margin()


def test_eps_ramp_scales_eps_and_step_size_linearly_then_holds():
    for objective, step_of in ((train.adversarial(eps=0.3, steps=7, step_size=0.1),
                                lambda o: dict(o.options)["step_size"]),
                               (train.trades(beta=6.0, eps=0.3, step_size=0.1, steps=7),
                                lambda o: o.step_size)):
        ramp = train.eps_ramp(objective, warmup=0.5)
        for progress, scale in ((0.1, 0.2), (0.25, 0.5), (0.5, 1.0), (0.9, 1.0)):
            at = ramp.at(progress)
            assert type(at) is type(objective)
            assert at.eps == pytest.approx(0.3 * scale) and step_of(at) == pytest.approx(0.1 * scale)
        assert train.eps_ramp(objective, warmup=1.0, start=0.5).at(0.0).eps == pytest.approx(0.15)
    with pytest.raises(TypeError, match="Adversarial, Trades or Joint"):
        train.eps_ramp(train.standard(), warmup=0.5)
    with pytest.raises(ValueError, match="warmup"):
        train.eps_ramp(train.adversarial(eps=0.3), warmup=0.0)


def test_fit_asks_a_scheduled_objective_for_each_minibatch():
    seen = []

    class Scheduled:
        def at(self, progress):
            seen.append(progress)
            return train.standard()

    x, y = data(40)
    train.fit(mlp(), x, y, Scheduled(), epochs=2, batch_size=10, lr=0.1, show_progress=False)
    assert seen == pytest.approx([(t + 1) / 8 for t in range(8)])


def test_an_eps_ramp_trains_differently_from_the_full_eps():
    ramped = train_run(objective=train.eps_ramp(train.adversarial(eps=0.05, steps=2), warmup=1.0))
    assert not all(torch.equal(a, b) for a, b in zip(train_run(), ramped))


@pytest.mark.parametrize("bad", [
    lambda: train.adversarial(eps=-0.1),
    lambda: train.adversarial(eps=math.inf),
    lambda: train.trades(beta=-1.0, eps=0.1, step_size=0.01, steps=1),
    lambda: train.trades(beta=1.0, eps=math.nan, step_size=0.01, steps=1),
    lambda: train.noise(sigma=-1.0),
    lambda: train.joint(lam=-1.0, eps=0.1),
])
def test_bad_objective_arguments(bad):
    with pytest.raises(ValueError):
        bad()


def test_bad_fit_arguments():
    x, y = data(8)
    for kw in ({"epochs": 1, "steps": 1}, {}, {"epochs": 0}, {"epochs": 1, "optimizer": "rmsprop"},
               {"steps": 2, "checkpoint": "x.ckpt"}):
        with pytest.raises(ValueError):
            train.fit(mlp(), x, y, train.standard(), batch_size=4, lr=0.1, show_progress=False, **kw)
    with pytest.raises(ValueError, match="same number"):
        train.fit(mlp(), x, y[:4], train.standard(), epochs=1, batch_size=4, lr=0.1, show_progress=False)


# ------------------------------------------------------------------- seeds, checkpoints


def train_run(checkpoint=None, objective=None, epochs=3, optimizer="sgd"):
    x, y = data(96)
    model = mlp(dropout=0.2, seed=5)
    torch.manual_seed(11)
    train.fit(model, x, y, objective or train.adversarial(eps=0.05, steps=2), epochs=epochs, batch_size=32,
              lr=0.05, optimizer=optimizer, milestones=(2,), checkpoint=checkpoint, show_progress=False)
    return [p.detach().clone() for p in model.parameters()]


def test_seeded_runs_are_identical():
    assert all(torch.equal(a, b) for a, b in zip(train_run(), train_run()))


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_interrupted_and_resumed_training_equals_uninterrupted(tmp_path, optimizer):
    uninterrupted = train_run(optimizer=optimizer)
    calls = {"n": 0}

    @functools.wraps(attacks.pgd)  # the same objective, printed and checked as the one resumed below ...
    def dies_in_epoch_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:  # ... interrupted at the second of the 3 batches of epoch 3
            raise Interrupted
        return attacks.pgd(*args, **kwargs)

    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(Interrupted):
        train_run(checkpoint, train.adversarial(eps=0.05, steps=2, attack=dies_in_epoch_3),
                  optimizer=optimizer)
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2
    # a fresh process would rebuild the model and the random state from scratch, then resume
    resumed = train_run(checkpoint, optimizer=optimizer)
    assert all(torch.equal(a, b) for a, b in zip(uninterrupted, resumed))


def test_checkpoint_of_another_run_is_an_error_and_a_corrupt_one_is_set_aside(tmp_path):
    checkpoint = tmp_path / "run.ckpt"
    train_run(checkpoint, epochs=2)
    with pytest.raises(ValueError, match="different training run.*epochs"):
        train_run(checkpoint, epochs=3)
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="unreadable"):
        train_run(checkpoint, epochs=3)
    assert (tmp_path / "run.ckpt.corrupt").exists() and torch.load(checkpoint,
                                                                   weights_only=True)["epoch"] == 3


def test_no_cuda_calls_in_the_library():
    """Device-agnostic: tensors follow the input's device, never a hard-coded .cuda()."""
    offenders = [f"{p.name}:{i}" for p in (ROOT / "lib" / "tradeoffs").glob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\.cuda\(\)", line)]
    assert not offenders
