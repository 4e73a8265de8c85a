"""The dry run's caps (tradeoffs.dryrun): the kernels' loops, the evaluation, the caches, the claims and the
chapters' settings."""

import json

import pytest
import torch
from tradeoffs import attacks, dryrun, evaluate, models, store, train
from tradeoffs.book import claims, profiles, runtime

CHAPTERS = list(profiles.CHAPTERS)


@pytest.fixture
def dry(monkeypatch):
    monkeypatch.setenv(dryrun.ENV, "1")


def test_active_only_when_set(monkeypatch):
    for value, expected in (("", False), ("0", False), ("false", False), ("1", True), ("yes", True)):
        monkeypatch.setenv(dryrun.ENV, value)
        assert dryrun.active() is expected and dryrun.label("paper") == ("paper (dry run)" if expected
                                                                         else "paper")
    monkeypatch.delenv(dryrun.ENV)
    assert not dryrun.active() and dryrun.cap(100, 2) == 100


def test_fit_runs_a_capped_number_of_small_batches(dry):
    seen = []

    def objective(model, x, y):
        seen.append(len(x))
        return train.standard()(model, x, y)

    model = models.MLP(4, (8,), classes=2)
    train.fit(model, torch.rand(64, 4), torch.randint(0, 2, (64,)), objective, epochs=30, batch_size=32,
              lr=0.1, milestones=(10,), show_progress=False)
    assert seen == [dryrun.BATCH_SIZE] * (dryrun.EPOCHS * dryrun.BATCHES)
    seen.clear()
    train.fit(model, torch.rand(64, 4), torch.randint(0, 2, (64,)), objective, steps=500, batch_size=16,
              lr=0.1, generator=torch.Generator().manual_seed(0), show_progress=False)
    assert seen == [dryrun.BATCH_SIZE] * dryrun.BATCHES


def test_attacks_and_evaluation_are_capped_and_stay_in_the_ball(dry, monkeypatch):
    model = models.MLP(4, (8,), classes=3).eval()
    calls = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda x: calls.append(len(x)) or forward(x))
    x, y = torch.rand(50, 4), torch.randint(0, 3, (50,))
    x_adv = attacks.pgd(model, x, y, eps=0.1, steps=1000, restarts=5)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6 and len(calls) <= dryrun.ATTACK_STEPS + 2
    calls.clear()
    accuracy = evaluate.robust_accuracy(model, x, y, eps=0.1, steps=1000, show_progress=False)
    assert max(calls) == dryrun.POINTS and accuracy * dryrun.POINTS == round(accuracy * dryrun.POINTS)


def test_caches_and_claims_are_apart_from_the_real_ones(dry, tmp_path, monkeypatch):
    monkeypatch.setenv("TRADEOFFS_DATA", str(tmp_path))
    monkeypatch.delenv("TRADEOFFS_RESULT_CACHE", raising=False)
    assert store.models_dir() == tmp_path.resolve() / "dry-run" / "models"
    assert store.results_dir() == tmp_path.resolve() / "dry-run" / "results"
    monkeypatch.setenv(claims.RESULTS_ENV, str(tmp_path / "results"))
    start = runtime.start_chapter("01_gaussian_tradeoff", "paper", "cpu")
    assert start.settings == profiles.settings("01_gaussian_tradeoff", "paper")
    record = claims.claim("gaussian.table1.sigma3_6.standard_training.std_error", 0.0)
    assert record.status == "dry-run"
    saved = json.loads((tmp_path / "results" / "01_gaussian_tradeoff.json").read_text())
    assert saved["profile"] == "paper" and saved["dry_run"] is True


def test_dry_run_settings_keep_the_paper_code_paths(monkeypatch):
    """The dry run's settings differ from the paper's in sizes only: architectures, switches, learning rates,
    radii and schedules are the paper's."""
    monkeypatch.setenv(dryrun.ENV, "1")
    for name in CHAPTERS:
        monkeypatch.delenv(dryrun.ENV)
        paper = profiles.settings(name, "paper")
        monkeypatch.setenv(dryrun.ENV, "1")
        capped = profiles.settings(name, "paper")
        assert capped is not paper
        for nested_paper, nested_capped in _pairs(paper, capped):
            for field, value in vars(nested_paper).items():
                other = getattr(nested_capped, field)
                if isinstance(value, (str, bool, float)) or hasattr(value, "__dataclass_fields__"):
                    assert type(other) is type(value), (name, field)
                if isinstance(value, (str, bool, float)):
                    assert other == value, (name, field)
        with pytest.raises(ValueError, match="dry run.*profile 'paper'"):
            profiles.settings(name, "cpu")


def _pairs(a, b):
    yield a, b
    for field, value in vars(a).items():
        if hasattr(value, "__dataclass_fields__"):
            yield from _pairs(value, getattr(b, field))
