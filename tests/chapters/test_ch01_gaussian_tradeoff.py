"""Chapter 1's code: the closed forms of ``gaussian`` against numerical integration, brute force and Monte
Carlo, and the finite-sample experiments of ``finite_sample`` (the paper's direction, SGD hyperplanes against
the analytic ones, Theorem 2.2's soft-margin SVMs)."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, optimize
from scipy.stats import norm
from tradeoffs import attacks, evaluate, models
from tradeoffs.chapters.ch01_gaussian_tradeoff import finite_sample, gaussian

SETTINGS = [gaussian.TwoGaussians(3, 6, 28.0), gaussian.TwoGaussians(2, 18, 28.0),
            gaussian.TwoGaussians(1, 1.5, 4.0)]


def quadrature_error(w, model, eps_p):
    """beta~(w) by integrating each class density over its misclassified half-line."""
    class1 = integrate.quad(lambda t: norm.pdf(t, 0, model.sigma1), w - eps_p, np.inf)[0]
    class2 = integrate.quad(lambda t: norm.pdf(t, model.distance, model.sigma2), -np.inf, w + eps_p)[0]
    return 0.5 * (class1 + class2)


@pytest.mark.parametrize("model", SETTINGS)
@pytest.mark.parametrize("eps_p", [0.0, 0.5, 3.0])
def test_errors_match_quadrature(model, eps_p):
    for w in np.linspace(0, model.distance, 7):
        assert gaussian.robust_error(w, model, eps_p) == pytest.approx(quadrature_error(w, model, eps_p),
                                                                       abs=1e-9)


@pytest.mark.parametrize("model", SETTINGS)
@pytest.mark.parametrize("eps_p", [0.0, 0.3, 1.0])
def test_closed_form_optima_are_the_numerical_minimizers(model, eps_p):
    numeric = optimize.minimize_scalar(lambda w: gaussian.robust_error(w, model, eps_p),
                                       bounds=(0, model.distance), method="bounded",
                                       options={"xatol": 1e-10}).x
    assert gaussian.robust_optimum(model, eps_p) == pytest.approx(numeric, abs=1e-5)


def test_paper_table1_reproduces():
    """Table 1 of the two-Gaussians paper, to the printed two decimals (in %)."""
    printed = {(3, 6): [(0.09, 10.41), (0.25, 5.58), (0.21, 5.64)],
               (2, 18): [(5.34, 51.86), (8.86, 15.54), (8.04, 16.52)]}
    for (s1, s2), rows in printed.items():
        ours = gaussian.training_errors(gaussian.TwoGaussians(s1, s2, 28.0), eps_p=7.0, r_adv=7.0,
                                        delta_sigma=3.5)
        for (std, adv), (our_std, our_adv) in zip(rows, ours.values()):
            assert 100 * our_std == pytest.approx(std, abs=0.005)
            assert 100 * our_adv == pytest.approx(adv, abs=0.005)


@pytest.mark.parametrize("model", SETTINGS[:2])
def test_theorem1_tradeoff_optimum_lies_between_and_is_stationary(model):
    eps_p = 7.0
    w_star, w_robust = gaussian.standard_optimum(model), gaussian.robust_optimum(model, eps_p)
    assert w_star < w_robust
    previous = w_star
    for lam in [0.01, 0.1, 0.3, 1.0, 10.0]:
        w = gaussian.tradeoff_optimum(model, eps_p, lam)
        assert w_star <= w <= w_robust and w >= previous - 1e-9
        previous = w
        # Theorem 6: lambda(w) recovers the weight that made w optimal
        assert gaussian.lambda_at(w, model, eps_p) == pytest.approx(lam, rel=1e-4)
    with pytest.raises(ValueError, match="lambda"):
        gaussian.tradeoff_optimum(model, eps_p, -1.0)


def test_noise_conventions():
    model = gaussian.TwoGaussians(3, 6, 28.0)
    assert gaussian.noise_augmented(model, 1.0, "paper") == gaussian.TwoGaussians(4, 7, 28.0)
    real = gaussian.noise_augmented(model, 4.0, "gaussian")
    assert (real.sigma1, real.sigma2) == pytest.approx((5.0, math.sqrt(52)))
    with pytest.raises(ValueError, match="convention"):
        gaussian.noise_augmented(model, 1.0, "variance")


def test_adding_gaussian_noise_adds_variances():
    """The 'gaussian' convention is what sampling x + delta really gives (Monte Carlo)."""
    model, s = gaussian.TwoGaussians(3, 6, 28.0), 3.5
    g = torch.Generator().manual_seed(0)
    x, y = gaussian.sample_two_gaussians(200_000, model, torch.tensor([1.0]), g)
    noisy = x.squeeze(1) + s * torch.randn(len(x), generator=g)
    stds = noisy[y < 0].std().item(), noisy[y > 0].std().item()
    expected = gaussian.noise_augmented(model, s, "gaussian")
    assert stds == pytest.approx((expected.sigma1, expected.sigma2), rel=0.01)


@pytest.mark.parametrize("convention", ["paper", "gaussian"])
def test_noise_lambda_is_monotone_up_to_the_limit(convention):
    model, eps_p = gaussian.TwoGaussians(2, 18, 28.0), 7.0
    limit = gaussian.noise_limit(model, eps_p, convention)
    assert gaussian.standard_optimum(gaussian.noise_augmented(model, limit, convention)) == pytest.approx(
        gaussian.robust_optimum(model, eps_p), abs=1e-6)
    lambdas = gaussian.noise_lambda(model, eps_p, np.linspace(0, limit, 50, endpoint=False), convention)
    assert lambdas[0] == 0 and np.all(np.diff(lambdas) > 0) and np.all(np.isfinite(lambdas))
    assert np.isinf(gaussian.noise_lambda(model, eps_p, limit * 1.01, convention)[0])


def test_linf_distance_constant_is_the_largest_projection():
    """eps ||e||_1 / ||e||_2 equals the max over the cube's corners of delta . e / ||e|| (brute force)."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        v = rng.normal(size=6)
        corners = np.array(list(itertools.product([-0.3, 0.3], repeat=6)))
        assert gaussian.linf_distance_constant(v,
                                               0.3) == pytest.approx((corners @ v).max() / np.linalg.norm(v))


def test_uniform_on_linf_sphere():
    points = gaussian.uniform_on_linf_sphere(20_000, 5, np.random.default_rng(0))
    assert np.allclose(np.abs(points).max(1), 1.0)
    assert np.bincount(np.abs(points).argmax(1),
                       minlength=5) / 20_000 == pytest.approx(np.full(5, 0.2), abs=0.02)


def test_lemma7_and_theorems_2_3_hold():
    rng = np.random.default_rng(1)
    for d in (3, 50, 400):
        l2, ratio = gaussian.linf_sphere_norms(5_000, d, rng, chunk=10_000)
        assert l2.mean() >= gaussian.lemma7_bound(d)
        assert l2.mean() == pytest.approx(math.sqrt((d + 2) / 3), rel=0.05)  # E||X||^2 = (d+2)/3 exactly
        assert np.all(ratio <= math.sqrt(d) + 1e-9) and np.all(ratio >= 1 - 1e-9)  # Hoelder
    rows = gaussian.check_theorems_2_3(3, 6, (4, 100), (0.1, 1.0), 2_000, rng)
    assert len(rows) == 4
    for r in rows:
        assert r["lower_bound"] <= r["mean_gap"] <= r["max_gap"] <= r["upper_bound"] * (1 + 1e-9)


def test_linear_errors_match_monte_carlo_with_a_real_attack():
    """Closed-form errors of an arbitrary hyperplane = sampling + attacks.fgsm (exact for linear)."""
    model, d, eps = gaussian.TwoGaussians(3, 6, 28.0), 16, 0.5
    e12 = finite_sample.paper_direction(d)
    g = torch.Generator().manual_seed(0)
    weight, bias = e12 + 0.3 * torch.randn(d, generator=g), -11.0
    clf = models.fixed_linear(weight, bias)
    x, y = gaussian.sample_two_gaussians(100_000, model, e12, g)
    standard, robust = gaussian.linear_errors(weight, bias, model, e12, eps)
    assert 1 - evaluate.accuracy(clf, x, y) == pytest.approx(standard, abs=0.005)
    assert 1 - evaluate.robust_accuracy(clf, x, y, eps=eps, attack=attacks.fgsm,
                                        clip=None) == pytest.approx(robust, abs=0.005)


@pytest.mark.parametrize("attack", ["linf", "proof"])
def test_tsipras_accuracy_matches_simulation(attack):
    model = gaussian.TsiprasModel(d=50, eta=0.3)
    g = torch.Generator().manual_seed(0)
    weight, bias, eps = np.r_[0.4, np.linspace(0.0, 0.1, 50)], 0.1, 0.2
    x, y = model.sample(200_000, g)
    if attack == "linf":
        x = x - eps * y[:, None] * torch.sign(torch.tensor(weight, dtype=torch.float32))
    else:
        x[:, 1:] -= eps * y[:, None]
    simulated = evaluate.accuracy(models.fixed_linear(weight, bias), x, y)
    assert simulated == pytest.approx(gaussian.tsipras_linear_accuracy(weight, bias, model, eps, attack),
                                      abs=0.005)


def test_tsipras_model_and_theorem2_1():
    model = gaussian.TsiprasModel(d=1000, eta=3 / math.sqrt(1000))
    x, y = model.sample(50_000, torch.Generator().manual_seed(0))
    assert x.shape == (50_000, 1001)
    assert (x[:, 0] == y).float().mean().item() == pytest.approx(0.7, abs=0.01)
    assert (x[:, 1:] * y[:, None]).mean().item() == pytest.approx(model.eta, abs=0.002)
    averaging = np.r_[0.0, np.full(1000, 1e-3)]
    assert gaussian.tsipras_linear_accuracy(averaging, 0.0, model) == pytest.approx(norm.cdf(3))
    assert gaussian.tsipras_linear_accuracy(averaging, 0.0, model,
                                            2 * model.eta) == pytest.approx(norm.cdf(-3))
    family = gaussian.check_theorem2_1(model, 2 * model.eta, angles=31)
    assert np.all(family["adversarial_accuracy"] <= 7 / 3 * family["delta"] + 1e-12)
    assert np.all(family["optimal_attack_accuracy"] <= family["adversarial_accuracy"] + 1e-12)
    with pytest.raises(ValueError, match="attack"):
        gaussian.tsipras_linear_accuracy(averaging, 0.0, model, 0.1, attack="l2")


def test_bad_model_parameters_are_refused():
    with pytest.raises(ValueError, match="sigma1 < sigma2"):
        gaussian.TwoGaussians(6, 3, 28.0)
    with pytest.raises(ValueError, match="mu2 - mu1"):
        gaussian.TwoGaussians(3, 6, 0.0)


def test_paper_direction():
    e12 = finite_sample.paper_direction(784)
    assert e12.norm().item() == pytest.approx(1.0)
    assert e12.abs().sum().item() == pytest.approx(14.0)  # eps_inf = 0.5 sqrt(d) eps
    with pytest.raises(ValueError, match="multiple of 4"):
        finite_sample.paper_direction(10)


def test_sgd_hyperplanes_converge_to_the_analytic_ones():
    """With n large in a small d, each method lands near its own closed-form hyperplane."""
    model, d, eps, delta_sigma = gaussian.TwoGaussians(2, 18, 28.0), 16, 3.5, 3.5
    eps_p = eps * math.sqrt(d / 4)  # 7, as in the paper's Table 1
    results = finite_sample.train_hyperplanes(model, d=d, eps=eps, delta_sigma=delta_sigma,
                                              sample_sizes=(50_000,), seeds=1, steps=600, show_progress=False)
    targets = finite_sample.analytic_positions(model, eps_p, delta_sigma)
    assert {r.method for r in results} == set(finite_sample.METHODS)
    for r in results:
        assert r.position == pytest.approx(targets[r.method], abs=0.6), r
        assert r.cosine > 0.99
    positions = {r.method: r.position for r in results}
    assert positions["standard"] < positions["noise"] < positions["adversarial"]


def test_soft_margin_svms_of_theorem_2_2():
    model = gaussian.TsiprasModel(d=1000, eta=4 / math.sqrt(1000))
    eps = 2 * model.eta
    standard = finite_sample.soft_margin_svm(model, eps=0.0, samples=5_000, steps=300).numpy()
    robust = finite_sample.soft_margin_svm(model, eps=eps, samples=5_000, steps=300).numpy()
    assert np.linalg.norm(standard) == pytest.approx(1, abs=1e-3) and np.linalg.norm(robust) <= 1 + 1e-6
    assert gaussian.tsipras_linear_accuracy(standard, 0, model) > 0.99
    assert gaussian.tsipras_linear_accuracy(standard, 0, model, eps) < 0.01
    assert robust[0] > 0.9
    assert gaussian.tsipras_linear_accuracy(robust, 0, model) == pytest.approx(0.7, abs=0.01)
    assert gaussian.tsipras_linear_accuracy(robust, 0, model, eps) == pytest.approx(0.7, abs=0.01)
