"""Chapter 2's kernels: robust Gaussian MLE (002 App. E) against brute force and Monte Carlo, and the
robust-feature tools (001 Sec. 2.3, 3; 002 App. C) on small synthetic data."""

import numpy as np
import pytest
import torch
from tradeoffs import attacks, models, train
from tradeoffs.book import profiles
from tradeoffs.chapters.ch02_robust_features import features, robust_mle

SPECTRA = [np.array([0.5, 2.0]), np.array([0.1, 1.0, 4.0]), np.array([1.0, 1.0, 1.0, 1.0])]


# --------------------------------------------------------------------------- 002 App. E


@pytest.mark.parametrize("s", SPECTRA)
@pytest.mark.parametrize("eps", [0.05, 0.5, 2.0])
def test_lemma4_solves_the_minimax_problem(s, eps):
    sigma, lam = robust_mle.robust_covariance(s, eps)
    m = robust_mle.adversary(s, sigma, lam)
    assert np.sum(s * m**2) == pytest.approx(eps**2, rel=1e-9)            # the adversary spends its budget
    assert sigma == pytest.approx(s * (1 + m) ** 2, rel=1e-9)               # Eq. (24)
    assert np.all(m > 0)                                                    # M is PSD (Lemma 5's regime)
    assert robust_mle.minimax_numerically(s, eps) == pytest.approx(sigma, rel=1e-4)


def test_no_adversary_gives_the_standard_mle_and_budget_is_monotone():
    s = np.array([0.2, 1.0, 5.0])
    sigma, lam = robust_mle.robust_covariance(s, 0.0)
    assert np.array_equal(sigma, s) and lam == float("inf")
    budgets = [robust_mle.budget(s, lam) for lam in np.geomspace(1e-3, 1e3, 50)]
    assert np.all(np.diff(budgets) < 0)
    lams = [robust_mle.solve_lambda(s, e) for e in (0.01, 0.1, 1.0, 10.0)]
    assert np.all(np.diff(lams) < 0)                                        # lambda falls as eps grows


def test_theorem2_bounds_and_condition_number_on_a_grid():
    rows = robust_mle.theorem2_grid((3, 40), (2.0, 50.0), np.geomspace(0.01, 5, 5), seed=1,
                                    brute_force_dims=())
    assert all(r["lower"] <= r["lambda"] <= r["upper"] for r in rows)
    assert all(r["kappa_robust"] < r["kappa_star"] for r in rows)
    assert all(r["cos_robust"] > r["cos_standard"] for r in rows)


def test_random_covariance_has_the_condition_number_asked_for():
    s = robust_mle.random_covariance(7, 30.0, np.random.default_rng(0))
    assert robust_mle.condition_number(s) == pytest.approx(30.0) and s.sum() == pytest.approx(7)


@pytest.mark.parametrize("factor", [1.5, 5.0])
def test_theorem1_closed_form_matches_monte_carlo(factor):
    s = np.array([0.5, 1.0, 3.0])
    c = factor / s.min()
    mean, se = robust_mle.lagrangian_excess_loss_mc(s, c, 40_000, np.random.default_rng(0), steps=400)
    assert abs(mean - robust_mle.lagrangian_excess_loss(s, c)) < 4 * se


def test_theorem1_needs_concavity_and_isotropic_is_best():
    with pytest.raises(ValueError, match="concavity"):
        robust_mle.lagrangian_excess_loss(np.array([0.5, 1.0]), 1.0)
    iso = robust_mle.lagrangian_excess_loss(np.full(4, 1.0), 3.0)
    assert robust_mle.lagrangian_excess_loss(np.array([0.7, 0.9, 1.1, 1.3]), 3.0) > iso


@pytest.mark.parametrize("kappa", [1.0, 4.0, 100.0])
def test_lemma8_worst_case_cosine(kappa):
    sigma = np.array([1.0, np.sqrt(kappa), kappa])
    expected = robust_mle.worst_case_cosine(kappa)
    assert robust_mle.worst_case_cosine_numerically(sigma) == pytest.approx(expected, abs=1e-7)


# ----------------------------------------------------------------------- 001 Sec. 2.3: linear


def toy_binary(n=400, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.where(torch.rand(n, generator=g) < 0.5, 1.0, -1.0)
    x = (0.5 + 0.15 * y[:, None] * torch.linspace(1, 0, d) + 0.1 * torch.randn(n, d, generator=g)).clamp(0, 1)
    return x, y


def test_linear_worst_case_is_fgsm_for_a_linear_model():
    x, y = toy_binary()
    model = models.fixed_linear(torch.randn(x.shape[1]), 0.1)
    exact = features.linear_worst_case(x, y, model.weight.detach(), 0.1)
    assert torch.allclose(exact, attacks.fgsm(model, x, y, eps=0.1), atol=1e-6)


def test_train_linear_standard_and_adversarial():
    x, y = toy_binary()
    std = features.train_linear(x, y, epochs=100)
    adv = features.train_linear(x, y, eps=0.1, epochs=100)
    row_std = features.linear_table_row(std, (x, y), (x, y), 0.1)
    row_adv = features.linear_table_row(adv, (x, y), (x, y), 0.1)
    assert row_std.train_accuracy > 90
    assert row_adv.train_adversarial_accuracy > row_std.train_adversarial_accuracy
    weak = features.robust_pixels(x, y, 0.1)
    assert weak[0] and not weak[-1]  # the first feature is the strongly correlated one
    assert features.weight_share(adv.weight, ~weak) < features.weight_share(std.weight, ~weak)


def test_train_linear_on_a_pixel_subset_leaves_the_rest_at_zero():
    x, y = toy_binary()
    model = features.train_linear(x, y, epochs=20, pixels=torch.tensor([0, 3]))
    w = model.weight.detach()
    assert torch.count_nonzero(w) == 2 and w[0] != 0 and w[3] != 0


def test_smoothness_step_is_one_over_the_curvature_bound():
    x, _ = toy_binary()
    xb = torch.cat([x, torch.ones(len(x), 1)], 1).double()
    exact = 4 / torch.linalg.eigvalsh(xb.T @ xb / len(x)).max().item()
    assert features.smoothness_step(x) == pytest.approx(exact, rel=1e-4)


def test_feature_label_correlation_is_pearson():
    x, y = toy_binary()
    x[:, 5] = 0.3                                             # a constant pixel has correlation 0
    ours = features.feature_label_correlation(x, y).numpy()
    numpy = [np.corrcoef(x[:, i].numpy(), y.numpy())[0, 1] for i in range(x.shape[1]) if i != 5]
    assert np.allclose(np.delete(ours, 5), numpy, atol=1e-5) and ours[5] == 0


# --------------------------------------------------------------- 001 Sec. 3 and 002 App. C


@pytest.fixture(scope="module")
def mlp_and_images():
    torch.manual_seed(0)
    model = models.MLP(784, (32, 16), classes=10).eval()
    x = torch.rand(12, 1, 28, 28) * (torch.rand(12, 1, 28, 28) > 0.7)
    return model, x, torch.arange(12) % 10


def test_interpolation_endpoints(mlp_and_images):
    _, x, _ = mlp_and_images
    strip = features.interpolation(x[0], x[1], 5)
    assert strip.shape == (5, 1, 28, 28) and torch.equal(strip[0], x[0]) and torch.allclose(strip[-1], x[1])


def test_large_eps_examples_stay_in_the_ball(mlp_and_images):
    model, x, y = mlp_and_images
    x_adv = features.large_eps_examples(model, x, y, eps=4.0, norm="l2", steps=10)
    assert (x_adv - x).flatten(1).norm(dim=1).max() <= 4.0 + 1e-4 and x_adv.min() >= 0 and x_adv.max() <= 1


def test_gradient_share_and_nearest_neighbours(mlp_and_images):
    model, x, y = mlp_and_images
    grads = features.loss_gradients(model, x, y)
    share = features.gradient_share_on_digit(grads, x)
    assert grads.shape == x.shape and ((share >= 0) & (share <= 100)).all()
    only_ink = grads * features.digit_region(x)
    assert torch.allclose(features.gradient_share_on_digit(only_ink, x), torch.full((12,), 100.0))
    assert torch.equal(features.nearest_neighbour_labels(x, x, y, k=1), y)


@pytest.mark.parametrize("build", [lambda: models.MLP(784, (32, 16)), models.MadryCNN, models.SmallCNN])
def test_matching_the_representation_moves_towards_it(build):
    torch.manual_seed(0)
    model = build().eval()
    x_target, x_start = torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    g = features.representation(model)
    z = features.match_representation(model, x_target, x_start, steps=20, step_size=0.1)
    with torch.no_grad():
        before = (g(x_start) - g(x_target)).norm(dim=1)
        after = (g(z) - g(x_target)).norm(dim=1)
    assert (after < before).all() and z.min() >= 0 and z.max() <= 1
    residual = features.representation_residual(model, z, x_target)
    assert torch.allclose(residual, after / g(x_target).norm(dim=1).detach())
    assert torch.equal(features.representation_residual(model, x_target, x_target), torch.zeros(4))


def test_evaluate_row_keeps_per_example_outcomes(mnist_mlp):
    """Natural and relabelled outcomes on every test point, robust ones on the first robust_size; the
    percentages are their means, and a larger radius leaves fewer points correct."""
    model, x, y = mnist_mlp
    row = features.evaluate_row(model, x[:300], y[:300], (0.5, 2.0), attack_steps=5, relabel=True,
                                robust_size=100)
    assert row.correct.shape == (300,) and row.relabelled_correct.shape == (300,)
    assert all(c.shape == (100,) and c.dtype == torch.bool for c in row.robust_correct.values())
    assert row.accuracy == pytest.approx(100 * row.correct.double().mean().item())
    assert row.robust[2.0] < row.robust[0.5] <= 100 * row.correct[:100].double().mean().item()
    assert not (row.correct & row.relabelled_correct).any()       # y and (y + 1) mod 10 never both right


def test_representation_dataset_keeps_labels_and_starts_elsewhere(mlp_and_images):
    model, x, y = mlp_and_images
    xr = features.representation_dataset(model, x, y, steps=0, step_size=0.1, seed=3)
    assert xr.shape == x.shape
    assert not any(torch.equal(xr[i], x[i]) for i in range(len(x)))     # each starts from another image


@pytest.mark.parametrize("mode", ["rand", "det"])
def test_targeted_dataset_puts_the_images_on_their_target(mnist_mlp, mode):
    """002 Fig. 6 on a trained MNIST MLP, at an l2 radius where a plain targeted PGD loop puts >= 90% of the
    images on t (tests/test_attacks.py): the builder's share of images on t is >= 90% as well."""
    model, x, y = mnist_mlp
    x_nr, t = features.targeted_dataset(model, x, y, eps=5.0, steps=20, mode=mode, seed=0, batch_size=200)
    assert (x_nr - x).flatten(1).norm(dim=1).max() <= 5.0 + 1e-4 and x_nr.min() >= 0 and x_nr.max() <= 1
    if mode == "det":
        assert torch.equal(t, (y + 1) % 10)
    else:
        assert 0.05 < (t == y).float().mean() < 0.2                      # t uniform over the 10 classes
    assert features.target_success(model, x_nr, t) >= 90
    with pytest.raises(ValueError, match="rand"):
        features.targeted_dataset(model, x, y, eps=1.0, steps=1, mode="other")


def test_target_success_grows_with_the_radius(mnist_mlp):
    model, x, y = mnist_mlp
    shares = features.target_success_by_radius(model, x[:200], y[:200], (0.5, 2.0, 5.0), steps=20)
    assert list(shares) == [0.5, 2.0, 5.0]
    assert shares[0.5] < shares[2.0] < shares[5.0] and shares[0.5] < 20 and shares[5.0] >= 90


def test_profiles_and_training_settings():
    for name in profiles.PROFILES:
        settings = profiles.settings("02_robust_features", name)
        assert settings.linear_epochs == 100                              # 001 App. A.2 in every profile
        for method in ("standard", "l2"):
            training = features.training_settings(settings.mnist, method)
            assert isinstance(training.objective,
                              train.Standard if method == "standard" else train.Adversarial)
    assert profiles.settings("02_robust_features", "paper").cifar10.robust_eps == 0.5   # 002 Table 4
    with pytest.raises(ValueError, match="standard"):
        features.training_settings(settings.mnist, "trades")
