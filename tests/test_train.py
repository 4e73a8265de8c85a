"""Tests for tradeoffs.train: fit learns (and adversarial training trades accuracy for robustness on Tsipras
et al.'s distribution), the objectives' special cases, TRADES' batch scaling, the eps ramp, argument checks,
seeding and checkpoint/resume (training through the store: test_store.py)."""

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from tradeoffs import attacks, evaluate, models, train
from tradeoffs.chapters.ch01_gaussian_tradeoff import gaussian


def mlp(d_in: int = 12, classes: int = 3, dropout: float = 0.0, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d_in, 32), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(32, classes))


def data(n: int = 64, d: int = 12, classes: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g), torch.randint(0, classes, (n,), generator=g)


# ------------------------------------------------------------------------------- learning


def separable_data(n=2000, d=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.where(x[:, 0] + 0.5 * x[:, 1] > 0, 1.0, -1.0)
    return x, y


def logistic(logits, y):
    return torch.nn.functional.softplus(-y * logits)


@pytest.mark.parametrize("objective", [
    train.standard(logistic),
    train.adversarial(eps=0.05, attack=attacks.fgsm, loss=logistic, clip=None),
    train.noise(sigma=0.1, loss=logistic),
])
def test_fit_learns_a_separable_problem(objective):
    x, y = separable_data()
    torch.manual_seed(0)
    model = train.fit(models.LinearClassifier(10), x, y, objective, steps=300, batch_size=128, lr=0.5,
                      cosine=True, generator=torch.Generator().manual_seed(0))
    assert evaluate.accuracy(model, x, y) > 0.95
    assert not model.training


def test_adversarial_training_trades_accuracy_for_robustness():
    """On Tsipras et al.'s distribution, standard training leans on the weak features, adversarial does not.

    (eps must stay small against the robust feature's scale 1: with the logistic loss the robust feature
    only pays while 0.7 (1 - eps) > 0.3 (1 + eps).)
    """
    model = gaussian.TsiprasModel(d=1000, eta=3 / math.sqrt(1000))
    eps = 2 * model.eta
    x, y = model.sample(4000, torch.Generator().manual_seed(0))
    trained = {}
    for name, objective in (("standard", train.standard(logistic)),
                            ("adversarial",
                             train.adversarial(eps=eps, attack=attacks.fgsm, loss=logistic, clip=None))):
        torch.manual_seed(0)
        trained[name] = train.fit(models.LinearClassifier(1001, unit_norm=False), x, y, objective, steps=400,
                                  batch_size=128, lr=0.1, cosine=True,
                                  generator=torch.Generator().manual_seed(0))
    clean = {k: evaluate.accuracy(m, x, y) for k, m in trained.items()}
    robust = {k: evaluate.robust_accuracy(m, x, y, eps=eps, attack="pgd", clip=None,
                                          steps=10) for k, m in trained.items()}
    assert clean["standard"] > 0.97 and robust["standard"] < 0.2
    assert robust["adversarial"] > 0.6 and clean["adversarial"] < 0.8


def test_projection_keeps_the_constraint():
    x, y = separable_data()
    model = train.fit(models.LinearClassifier(10, unit_norm=False), x, y, train.standard(train.hinge_loss),
                      steps=50, batch_size=64, lr=5.0, cosine=True,
                      generator=torch.Generator().manual_seed(0),
                      project=lambda m: m.weight.div_(m.weight.norm().clamp(min=1.0)))
    assert model.weight.norm().item() <= 1 + 1e-6


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
