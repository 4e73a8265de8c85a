"""Chapter 4 (TRADES): the Sec. 2.4 toy example, the Figure-1 helpers and the Theorem 3.1 terms."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from tradeoffs.chapters.ch04_trades import trades_mnist as tm
from tradeoffs.chapters.ch04_trades import trades_toy as toy

# ------------------------------------------------------------------------------ Table 1 toy


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.125, 0.25, 0.5])
def test_table1_when_one_over_two_eps_is_an_integer(eps):
    eta = toy.toy_eta(eps)
    bayes, all_one = toy.bayes_classifier(eta), toy.constant_classifier(+1)
    assert toy.errors(bayes, eta, eps) == pytest.approx({"nat": 0.0, "bdy": 1.0, "rob": 1.0}, abs=1e-12)
    assert toy.errors(all_one, eta, eps) == pytest.approx({"nat": 0.5, "bdy": 0.0, "rob": 0.5}, abs=1e-12)


def test_eta_of_eq2_alternates_and_all_one_error_follows_the_cut_at_one():
    eta = toy.toy_eta(0.3)  # pieces [0, .3) -> 0, (.3, .6] -> 1, [.6, .9) -> 0, (.9, 1] -> 1
    assert eta(np.array([0.1, 0.4, 0.7, 0.95])).tolist() == [0.0, 1.0, 0.0, 1.0]
    assert toy.errors(toy.constant_classifier(+1), eta, 0.3)["nat"] == pytest.approx(0.6)
    assert toy.errors(toy.constant_classifier(-1), eta, 0.3)["nat"] == pytest.approx(0.4)


def test_decomposition_holds_for_random_classifiers_and_soft_eta():
    rng = np.random.default_rng(0)
    for _ in range(200):
        f = toy.random_classifier(rng, int(rng.integers(1, 20)))
        eta = toy.Piecewise(tuple(np.sort(rng.uniform(0, 1, 4)).tolist()),
                            tuple(rng.uniform(0, 1, 5).tolist()))
        eps = float(rng.uniform(0.01, 0.3))
        e = toy.errors(f, eta, eps)
        assert e["rob"] == pytest.approx(e["nat"] + e["bdy"], abs=1e-12)
        assert 0 <= e["nat"] <= e["rob"] <= 1


def test_robust_error_of_a_threshold_classifier_is_its_dilated_error_set():
    eta = toy.Piecewise((0.5,), (0.0, 1.0))          # y = -1 on [0, .5), +1 on [.5, 1]
    f = toy.Piecewise((0.6,), (-1.0, 1.0))           # wrong on [.5, .6)
    e = toy.errors(f, eta, 0.05)
    assert e["nat"] == pytest.approx(0.1)
    assert e["bdy"] == pytest.approx(0.05)  # correct points within .05 of the boundary at .6: (.6, .65]
    assert e["rob"] == pytest.approx(0.15)


def test_monte_carlo_agrees_with_the_exact_errors():
    rng = np.random.default_rng(1)
    eta = toy.toy_eta(0.1)
    for f in (toy.bayes_classifier(eta), toy.constant_classifier(), toy.random_classifier(rng, 7)):
        exact, mc = toy.errors(f, eta, 0.1), toy.monte_carlo_errors(f, eta, 0.1, samples=40_000, rng=rng)
        for k in exact:
            assert abs(mc[k] - exact[k]) < 4 * math.sqrt(0.25 / 40_000) + 1e-3, (k, mc, exact)


@pytest.mark.parametrize("lam", [0.3, 1.0, 2.0, 5.0])
def test_trades_objective_of_bayes_and_all_one(lam):
    eta = toy.toy_eta(0.1)
    assert toy.trades_objective(toy.bayes_classifier(eta), eta, 0.1, lam) == pytest.approx(1 + 1 / lam)
    all_one = toy.trades_objective(toy.constant_classifier(), eta, 0.1, lam)
    assert all_one == pytest.approx(1 + max(0, 1 - 1 / lam))


def test_piecewise_rejects_bad_input():
    with pytest.raises(ValueError, match="len"):
        toy.Piecewise((0.5,), (1.0,))
    with pytest.raises(ValueError, match="sorted"):
        toy.Piecewise((0.6, 0.4), (1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match="eps"):
        toy.toy_eta(0.0)


# ------------------------------------------------------------------------------- Figure 1


def test_figure1_data_respects_its_margin():
    x, y = toy.figure1_data(100, margin=0.1, seed=3)
    assert x.shape == (100, 2) and set(y.tolist()) == {0, 1}
    assert x.min() >= 0.05 and x.max() <= 0.95
    gap = x[:, 1] - (0.5 + 0.15 * torch.sin(2 * math.pi * x[:, 0]))
    assert (gap.abs() >= 0.1 - 1e-6).all() and ((gap > 0).long() == y).all()


def test_grid_robust_error_of_a_vertical_boundary():
    net = nn.Linear(2, 2)
    with torch.no_grad():  # class 1 iff x1 > 0.5
        net.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
        net.bias.copy_(torch.tensor([0.5, -0.5]))
    x = torch.tensor([[0.2, 0.5], [0.47, 0.5], [0.54, 0.5], [0.9, 0.1]])
    y = torch.tensor([0, 0, 1, 1])
    assert toy.grid_robust_error(net, x, y, 0.05) == pytest.approx(0.5)  # the two within 0.05 of x1 = 0.5
    assert toy.grid_robust_error(net, x, y, 0.01) == pytest.approx(0.0)


# ------------------------------------------------------------------------- Theorem 3.1 terms


class Linear(nn.Module):
    """f(x) = w . x + b on [N, d] inputs (a binary margin)."""

    def __init__(self, w, b):
        super().__init__()
        self.w = nn.Parameter(torch.as_tensor(w, dtype=torch.float32))
        self.b = nn.Parameter(torch.tensor(float(b)))

    def forward(self, x):
        return x.flatten(1) @ self.w + self.b


def _linear_problem(n=400, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, generator=g)
    x = 0.3 + 0.4 * torch.rand(n, d, generator=g)   # the eps-balls below stay inside [0, 1]^d
    f = x @ w - (0.5 * w.sum())
    y = torch.where(f + 0.3 * torch.randn(n, generator=g) >= 0, 1.0, -1.0)
    return Linear(w, -0.5 * w.sum()), x, y


def test_theorem31_terms_are_exact_for_a_linear_model():
    model, x, y = _linear_problem()
    eps, lam = 0.05, 3.0
    terms = tm.theorem31_terms(model, x, y, lam=lam, eps=eps, steps=20, step_size=0.01, r_star_nat=0.02,
                               r_star_phi=0.05)
    with torch.no_grad():
        f = model(x)
        reach = eps * model.w.abs().sum()           # min over the l_inf ball of s f(x') is |f(x)| - reach
        worst = f - torch.where(f >= 0, 1.0, -1.0) * reach   # f(x') at the worst corner of the ball
        robust_error = ((f * y <= 0) | (worst * y <= 0)).float().mean().item()
        max_term = torch.relu(1 - f * worst / lam).mean().item()
        r_phi = torch.relu(1 - y * f).mean().item()
    assert terms["robust_accuracy"] == pytest.approx(1 - robust_error, abs=1e-6)
    assert terms["r_phi"] == pytest.approx(r_phi, abs=1e-5)
    assert terms["max_term"] == pytest.approx(max_term, abs=1e-4)
    assert terms["delta"] == pytest.approx(terms["delta_rhs"] - terms["delta_lhs"])
    assert terms["delta_lhs"] == pytest.approx(robust_error - 0.02, abs=1e-6)
    assert terms["delta_rhs"] == pytest.approx(r_phi - 0.05 + max_term, abs=1e-4)


def test_theorem31_bound_holds_per_example_when_the_star_terms_are_zero():
    model, x, y = _linear_problem(seed=4)
    for lam in (0.5, 2.0, 10.0):
        terms = tm.theorem31_terms(model, x, y, lam=lam, eps=0.1, steps=20, step_size=0.01, r_star_nat=0.0,
                                   r_star_phi=0.0)
        assert terms["delta"] >= 0


def test_hinge_trades_objective_for_a_linear_model():
    model, x, y = _linear_problem(n=50)
    lam, eps = 2.0, 0.05
    loss = tm.hinge_trades(lam=lam, eps=eps, step_size=0.01, steps=10)(model, x, y)
    with torch.no_grad():
        f = model(x)
        s = torch.where(f >= 0, 1.0, -1.0)
        f_worst = f - s * eps * model.w.abs().sum()
        expected = (torch.relu(1 - y * f) + torch.relu(1 - f_worst * f / lam)).mean()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-4)
    loss.backward()
    assert model.w.grad is not None and torch.isfinite(model.w.grad).all()


def test_mean_cross_entropy_is_at_least_error_times_ln2():
    """The argument behind Table 6's bracketed losses: a misclassified example has CE >= ln 2, and the bound
    is tight (a two-way near-tie). Checked on confident logits, where most errors are far from uniform."""

    class Fixed(nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.register_buffer("logits", logits)

        def forward(self, x):
            return self.logits[x.long().reshape(-1)]

    torch.manual_seed(0)
    confident = 20 * torch.randn(500, 10)             # sharp predictions, random labels: ~90% wrong
    y = torch.randint(0, 10, (500,))
    index = torch.arange(500, dtype=torch.float32)[:, None]
    accuracy, loss = tm.accuracy_and_loss(Fixed(confident), index, y)
    assert accuracy < 0.2 and loss >= (1 - accuracy) * math.log(2)
    near_tie = torch.full((1, 10), -1e4)
    near_tie[0, :2] = torch.tensor([0.0, 1e-3])        # class 1 wins by 1e-3 over the label 0
    accuracy, loss = tm.accuracy_and_loss(Fixed(near_tie), torch.zeros(1, 1),
                                          torch.zeros(1, dtype=torch.long))
    assert accuracy == 0 and loss == pytest.approx(math.log(2), abs=1e-3)
