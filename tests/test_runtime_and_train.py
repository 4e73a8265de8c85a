"""Profiles, devices, the chapter start, the training loop and the finite-sample experiments."""

import math

import numpy as np
import pytest
import torch
from tradeoffs import attacks, evaluate, models, train
from tradeoffs.book import claims, profiles, runtime
from tradeoffs.chapters.ch01_gaussian_tradeoff import finite_sample, gaussian


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(ValueError, match="smoke, cpu, paper"):
        profiles.settings("01_gaussian_tradeoff", "fast")
    with pytest.raises(ValueError, match="01_gaussian_tradeoff"):
        profiles.settings("99_nothing", "cpu")


def test_every_chapter_has_every_profile():
    for chapter in profiles.CHAPTERS:
        for profile in profiles.PROFILES:
            assert profiles.settings(chapter, profile) is not None, (chapter, profile)


def test_devices():
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    assert runtime.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="auto, cpu, cuda, cuda:N, mps"):
        runtime.resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            runtime.resolve_device("cuda:0")


def test_start_chapter_opens_the_record(tmp_path, monkeypatch):
    monkeypatch.setenv(claims.RESULTS_ENV, str(tmp_path))
    run = runtime.start_chapter("01_gaussian_tradeoff", "smoke", "cpu", 3)
    assert run.settings == profiles.settings("01_gaussian_tradeoff", "smoke")
    assert run.seed == 3 and run.device == torch.device("cpu")
    assert claims.load_record(tmp_path / "01_gaussian_tradeoff.json")["profile"] == "smoke"
    first = torch.rand(3)
    runtime.start_chapter("01_gaussian_tradeoff", "smoke", "cpu", 3)
    assert torch.equal(first, torch.rand(3))  # seeded


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


def test_linear_classifier_and_fixed_linear():
    clf = models.LinearClassifier(5)
    with torch.no_grad():
        clf.weight.copy_(torch.tensor([3.0, 4.0, 0, 0, 0]))
        clf.bias.fill_(-1.0)
    x = torch.tensor([[1.0, 1.0, 9, 9, 9]])
    assert clf(x).item() == pytest.approx(3 / 5 + 4 / 5 - 1)
    fixed = models.fixed_linear([1.0, -2.0], bias=0.5)
    assert fixed(torch.tensor([[1.0, 1.0]])).item() == pytest.approx(-0.5)


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
