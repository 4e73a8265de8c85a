"""Chapter 3 (Suggala et al.): the mixture closed forms against brute force and Monte Carlo, the exact
Definition-2 attack against a linear-programming solver, the squares closed form against a grid search,
and the risk measurement."""

import math

import numpy as np
import pytest
import torch
from scipy import optimize
from tradeoffs.chapters.ch03_joint_objective import joint_risk, mixture, squares


def brute_force_attackable(w, theta, x, eps):
    """Definition 2 for one point by an LP solver: min g w^T delta s.t. g theta^T delta >= -m, |delta_i| <=
    eps."""
    g = 1.0 if x @ theta > 0 else -1.0
    m = g * (x @ theta)
    res = optimize.linprog(g * w, A_ub=[-g * theta], b_ub=[m], bounds=[(-eps, eps)] * len(w), method="highs")
    return g * (x @ w) + res.fun < -1e-7, g * (x @ w) + res.fun


@pytest.mark.parametrize("p", [2, 3, 8])
def test_attackable_matches_a_linear_program(p):
    rng = np.random.default_rng(p)
    checked = 0
    for _ in range(60):
        w, theta = rng.standard_normal(p), rng.standard_normal(p)
        if rng.random() < 0.3:
            theta[rng.integers(p)] = 0.0  # zeros in theta (sparse models) take another branch
        x, eps = rng.standard_normal(p), rng.uniform(0.05, 1.0)
        expected, gap = brute_force_attackable(w, theta, x, eps)
        if abs(gap) < 1e-6:
            continue  # on the boundary; measure zero
        assert bool(mixture.attackable(w, theta, x[None], eps)[0]) == expected
        checked += 1
    assert checked > 40


def test_the_bayes_classifier_and_its_multiples_cannot_be_attacked():
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(10)
    x = rng.standard_normal((5000, 10))
    for c in (1.0, 2.0, 0.3):
        assert not mixture.attackable(c * theta, theta, x, eps=5.0).any()
    assert mixture.attackable(theta + rng.standard_normal(10), theta, x, eps=5.0).mean() > 0.5


def test_theorem1_closed_forms_match_monte_carlo():
    rng = np.random.default_rng(1)
    n = 200_000
    tol = mixture.monte_carlo_tolerance(n)
    for p in (2, 5, 30):
        w, theta, sigma = mixture.random_instance(p, rng)
        eps = 0.15
        mc = mixture.monte_carlo_risks(w, mixture.Mixture(theta, sigma), eps, n, rng)
        assert mc["classification"] == pytest.approx(mixture.classification_risk(w, theta, sigma), abs=tol)
        assert mc["usual_adversarial"] == pytest.approx(mixture.usual_adversarial_risk(w, theta, eps, sigma),
                                                        abs=tol)
        assert mc["adversarial"] <= mixture.adversarial_risk_bound(w, theta, eps, sigma) + tol
        assert mc["adversarial"] <= mc["usual_adversarial"]  # Definition 2 counts a subset of G_adv's points


def test_mixture_sampling_and_low_dimensional_support():
    rng = np.random.default_rng(2)
    theta = np.array([2.0, 0.0, -1.0, 0.0])
    x, y = mixture.Mixture(theta, 0.5, low_dimensional=True).sample(20_000, rng)
    assert set(np.unique(y)) == {-1.0, 1.0} and abs(y.mean()) < 0.03
    assert np.all(x[:, [1, 3]] == 0)
    assert np.allclose((x * y[:, None]).mean(0), theta, atol=0.02)
    with pytest.raises(ValueError):
        mixture.Mixture(np.zeros(3))


def test_corollary2_closed_forms_and_threshold():
    for p in (2, 10, 100, 1000):
        theta, tilde = mixture.corollary2_vectors(p)
        assert theta @ theta == pytest.approx(2.0)
        for eps in (0.0, 0.1, 0.4):
            g_bayes, g_tilde = mixture.corollary2_risks(p, eps)
            assert g_bayes == pytest.approx(mixture.usual_adversarial_risk(theta, theta, eps))
            assert g_tilde == pytest.approx(mixture.usual_adversarial_risk(tilde, theta, eps))
        t = mixture.corollary2_threshold(p)
        below, above = mixture.corollary2_risks(p, 0.99 * t), mixture.corollary2_risks(p, 1.01 * t)
        assert below[1] > below[0] and above[1] < above[0]


def test_corollary3_numbers():
    norm_sq = 2 + 2 * math.sqrt(2)
    assert mixture.corollary3_proof_bound(norm_sq) == pytest.approx(2 * 0.9772498680518208 - 1)
    theta, w = mixture.corollary3_instance(400, 5, norm_sq, np.random.default_rng(3))
    assert theta @ theta == pytest.approx(norm_sq) and np.count_nonzero(theta) == 5
    assert np.abs(w[5:]).sum() == pytest.approx(math.sqrt(395))
    excess = mixture.classification_risk(w, theta) - mixture.classification_risk(theta, theta)
    assert excess == pytest.approx(mixture.corollary3_excess_risk(norm_sq))
    assert 0 < excess <= 0.02


def test_gradient_descent_never_moves_off_the_support():
    rng = np.random.default_rng(4)
    out = mixture.corollary4_run(500, 2, 2.0, n=500, steps=300, lr=1.0, rng=rng)
    support = out["mixture"].theta != 0
    assert np.array_equal(out["theta_hat"][~support], out["theta0"][~support])
    w_s, t_s = out["theta_hat"][support], out["mixture"].theta[support]
    assert w_s @ t_s / (np.linalg.norm(w_s) * np.linalg.norm(t_s)) > 0.98
    assert 1.2 < w_s @ t_s / (t_s @ t_s) < 2.5  # logistic regression heads for 2 theta* / sigma^2


def test_squares_closed_form_matches_a_grid_search():
    b = np.linspace(-3, 3, 60_001)
    for eps in (0.0, 0.1, 0.2, 0.3, 0.39, 0.41, 0.5, 0.8, 1.1, 1.19):
        g = squares.usual_adversarial_risk_of_threshold(b, eps)
        best = b[g <= g.min() + 1e-12]
        risk = squares.classification_risk_of_threshold(best)
        assert risk.max() == pytest.approx(squares.threshold_minimizer_risk(eps), abs=1e-3)
    assert squares.threshold_minimizer_risk(0.4) == pytest.approx(0, abs=1e-12)
    assert squares.threshold_minimizer_risk(0.8) == pytest.approx(0.05)


def test_squares_sampler():
    box = squares.Squares()
    x, y = box.sample(50_000, torch.Generator().manual_seed(0))
    assert box.gap == pytest.approx(0.4)
    assert (y == 1).float().mean().item() == pytest.approx(0.75, abs=0.01)
    assert torch.all(y * x[:, 0] >= 0.2 - 1e-6) and torch.all(y * x[:, 0] <= 2.2 + 1e-6)
    assert torch.all(x[:, 1].abs() <= 1.0)


class Linear(torch.nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.weight = torch.nn.Parameter(weight)

    def forward(self, x):
        return x.flatten(1) @ self.weight.T


def test_risks_follow_definition_2():
    torch.manual_seed(0)
    weight = torch.randn(3, 16)
    model = Linear(weight).eval()
    x, y = torch.rand(300, 16), torch.randint(0, 3, (300,))
    clean_wrong = (model(x).argmax(1) != y).float().mean().item()
    r0 = joint_risk.risks(model, x, y, eps=0.0, steps=5, step_size=0.01)
    assert r0.classification == pytest.approx(clean_wrong) and r0.adversarial == 0
    r = joint_risk.risks(model, x, y, eps=0.2, steps=20, step_size=0.02, batch_size=64)
    assert r.classification == pytest.approx(clean_wrong)
    assert 0 < r.adversarial <= 1 - r.classification
    assert r.joint == pytest.approx(r.classification + r.adversarial)
    # per example: a point counts as adversarial only where f is right on it (Definition 2 with g = y)
    assert r.clean_correct.dtype == torch.bool and len(r.adv_correct) == 300
    assert not (r.events("adversarial") & r.events("classification")).any()
    assert torch.equal(r.events("joint"), r.events("adversarial") | r.events("classification"))
    with pytest.raises(ValueError, match="unknown risk"):
        r.events("robust")


def test_risks_without_the_box_are_at_least_as_high():
    """On inputs in [0, 1] with many zeros (as MNIST's background), keeping x' in the box removes half of the
    directions of the ball: the box-free attack (the paper's projection onto the ball only) finds more."""
    torch.manual_seed(0)
    model = Linear(torch.randn(3, 16)).eval()
    x, y = (torch.rand(300, 16) < 0.3).float(), torch.randint(0, 3, (300,))
    boxed = joint_risk.risks(model, x, y, eps=0.1, steps=20, step_size=0.01)
    free = joint_risk.risks(model, x, y, eps=0.1, steps=20, step_size=0.01, clip=None)
    assert torch.equal(boxed.clean_correct, free.clean_correct)
    assert free.adversarial > boxed.adversarial


def test_paired_risk_differences_and_pooled_trials():
    right = torch.tensor([True] * 90 + [False] * 10)
    a = joint_risk.Risks(right, right.clone())
    worse = right.clone()
    worse[:5] = False  # wrong on 5 more points than a, the same points otherwise
    b = joint_risk.Risks(worse, worse.clone())
    d = joint_risk.difference(b, a, "classification")
    assert d.value == pytest.approx(5.0) and d.method == "Newcombe paired" and d.lo > 0
    pooled = joint_risk.pooled([a, b], "classification")
    assert pooled.n == 200 and pooled.value == pytest.approx(100 * 25 / 200)
    assert joint_risk.difference([b, b], [a, a], "classification").n == 200
    with pytest.raises(ValueError, match="as many runs"):
        joint_risk.difference([a], [a, b], "joint")


def test_strong_risks_never_below_pgd():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 5)).eval()
    x, y = torch.rand(64, 16), torch.randint(0, 5, (64,))
    pgd = joint_risk.risks(model, x, y, eps=0.1, steps=10, step_size=0.02)
    strong = joint_risk.strong_risks(model, x, y, eps=0.1, apgd_steps=10, targets=2, steps=10, restarts=1)
    assert torch.equal(strong.clean_correct, pgd.clean_correct)
    assert strong.adversarial >= pgd.adversarial - 1e-12


def test_summarize_and_labels():
    def risks(wrong, flipped):  # 10 test points: `wrong` misclassified, `flipped` more broken by the attack
        clean = torch.arange(10) >= wrong
        return joint_risk.Risks(clean, clean & (torch.arange(10) >= wrong + flipped))
    res = {(0.0, 0): risks(1, 5), (0.0, 1): risks(2, 3), (1.0, 0): risks(1, 1)}
    table = joint_risk.summarize(res)
    assert table[0.0]["classification"][0] == pytest.approx(0.15)
    assert table[0.0]["joint"][0] == pytest.approx(0.55)
    assert table[0.0]["adversarial"][0] == pytest.approx(0.4)
    assert table[0.0]["adversarial"][1] == pytest.approx(np.std([0.5, 0.3], ddof=1))
    assert math.isnan(table[1.0]["classification"][1])
    assert [joint_risk.lambda_label(v) for v in (0.0, 0.001, 0.01, 0.1, 1.0, 2.0)] == [
        "lambda0", "lambda0_001", "lambda0_01", "lambda0_1", "lambda1", "lambda2"]


def test_projected_sampling_matches_full_sampling():
    rng = np.random.default_rng(5)
    theta = np.array([1.5, -0.5, 0.0, 0.0, 0.0])
    w = np.array([1.0, 0.2, 0.3, -0.4, 0.1])
    for low in (False, True):
        mix = mixture.Mixture(theta, 0.8, low_dimensional=low)
        x, y = mix.sample(100_000, rng)
        full = {"classification": np.mean(mixture.sign(x @ w) != y),
                "usual_adversarial": np.mean(y * (x @ w) - 0.3 * np.abs(w).sum() <= 0),
                "adversarial": np.mean((mixture.sign(x @ w) == mixture.sign(x @ theta))
                                       & mixture.attackable(w, theta, x, 0.3))}
        projected = mixture.monte_carlo_risks(w, mix, 0.3, 100_000, rng)
        for key, value in full.items():
            assert projected[key] == pytest.approx(value, abs=0.01), (low, key)
