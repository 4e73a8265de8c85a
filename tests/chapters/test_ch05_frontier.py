"""The frontier of chapter 5: the Pareto front, the methods and their cost, shared and stored runs, a tiny
sweep."""

import dataclasses
import functools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from tradeoffs import models, recipes, store, train  # noqa: E402
from tradeoffs.book import profiles
from tradeoffs.chapters.ch03_joint_objective import joint_risk
from tradeoffs.chapters.ch05_frontier import frontier
from tradeoffs.data import data_dir  # noqa: E402

CPU = profiles.settings("05_frontier", "cpu")
SMOKE = profiles.settings("05_frontier", "smoke")


# ------------------------------------------------------------------------------- Pareto front


def test_pareto_front_small_example():
    points = [(99, 10), (98, 50), (97, 40), (90, 60), (90, 60), (80, 55), (99, 5)]
    # (97, 40) is dominated by (98, 50); (80, 55) by (90, 60); (99, 5) by (99, 10); the tie (90, 60) stays
    # twice
    assert frontier.pareto_front(points) == [0, 1, 3, 4]
    assert frontier.dominates((2, 2), (1, 2)) and not frontier.dominates((2, 2), (2, 2))
    assert not frontier.dominates((3, 1), (1, 3)) and not frontier.dominates((1, 3), (3, 1))
    assert frontier.pareto_front([]) == [] and frontier.pareto_front([(1, 1)]) == [0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=15))
def test_pareto_front_properties(points):
    front = frontier.pareto_front(points)
    assert front, "a finite non-empty set always has a maximal point"
    for i in front:  # no front point is dominated by any point
        assert not any(frontier.dominates(q, points[i]) for q in points)
    for i in set(range(len(points))) - set(front):  # every other point is dominated by a front point
        assert any(frontier.dominates(points[j], points[i]) for j in front)
    # the most accurate point with the best robustness among them is on it
    best_clean = max(p[0] for p in points)
    assert any(points[i][0] == best_clean for i in front)


# ----------------------------------------------------------------------------------- methods


def test_methods_cover_every_kind_in_order():
    runs = frontier.methods(CPU)
    assert [m.kind for m in runs] == (["standard"] + ["noise"] * len(CPU.noise_sigmas)
                                      + ["madry"] * len(CPU.madry_eps) + ["trades"] * len(CPU.trades_betas)
                                      + ["joint"] * len(CPU.joint_lambdas))
    assert set(frontier.METHODS) == {m.kind for m in runs}
    assert 10 <= len(runs) <= 14  # the chapter's budget
    assert frontier.Method("trades", 6.0).label == "TRADES 1/lambda=6"
    assert frontier.Method("standard").label == "standard"
    with pytest.raises(ValueError, match="unknown method"):
        frontier.Method("free", 1.0)
    with pytest.raises(ValueError, match="needs a parameter"):
        frontier.Method("madry")
    with pytest.raises(ValueError, match="needs no parameter"):
        frontier.Method("standard", 0.1)


def test_attack_steps_and_gradient_passes():
    n, k = CPU.train_size * CPU.epochs, CPU.train_steps
    cost = {m.label: (frontier.attack_steps(m, CPU), frontier.train_cost(m, CPU))
            for m in frontier.methods(CPU)}
    assert cost["standard"] == (0, n)
    assert cost["noise sigma=0.3"] == (0, n)
    assert cost["Madry eps=0.1"] == (k, n * (1 + k))
    assert cost["TRADES 1/lambda=1"] == (k, n * (1 + k))
    # lambda * adversarial - (lambda - 1) * clean: both passes
    assert cost["joint lambda=2"] == (k, n * (2 + k))
    assert frontier.train_cost(frontier.Method("joint", 1.0), CPU) == n * (1 + k)  # lambda = 1 is Madry
    assert frontier.attack_steps(frontier.Method("joint", 0.0), CPU) == 0  # lambda = 0 is standard training


def test_training_attack_radius_step_and_lambda():
    assert frontier.attack_eps(frontier.Method("madry", 0.2), CPU) == 0.2
    assert frontier.step_size(frontier.Method("madry", 0.2), CPU) == pytest.approx(0.2 / CPU.step_divisor)
    assert frontier.attack_eps(frontier.Method("trades", 6.0), CPU) == CPU.train_eps
    assert frontier.attack_eps(frontier.Method("noise", 0.3), CPU) == 0.0
    assert frontier.joint_lambda(frontier.Method("standard")) == 0.0
    assert frontier.joint_lambda(frontier.Method("madry", 0.1)) == 1.0
    assert frontier.joint_lambda(frontier.Method("joint", 2.0)) == 2.0
    objectives = {frontier.objective(m, CPU) for m in frontier.methods(CPU)}
    assert len(objectives) == len(frontier.methods(CPU))  # every run its own objective and store entry


def test_standard_and_madry_runs_share_chapter_3_models(monkeypatch, tmp_path):
    """With chapter 3's budget, standard (lambda = 0) and Madry at eps 0.05 (lambda = 1) are exactly chapter
    3's calls (Fig. 3a: one hidden layer of 400, eps 0.05), so the store hands over its models."""
    monkeypatch.setenv("TRADEOFFS_DATA", str(tmp_path))
    s3 = dataclasses.replace(profiles.settings("03_joint_objective", "cpu"), mnist_train=40, epochs=1,
                             batch_size=20)
    seen = []
    real_fit = train.fit
    monkeypatch.setattr(train, "fit",
                        functools.wraps(real_fit)(lambda *a, **k: seen.append(1) or real_fit(*a, **k)))
    x, y = torch.rand(60, 1, 28, 28), torch.randint(0, 10, (60,))
    for lam in (0.0, 1.0):
        joint_risk.train_joint(architecture="mlp", widths=(400,), x=x, y=y, lam=lam, eps=0.05, trial=0,
                               settings=s3, device=torch.device("cpu"))
    ours = dataclasses.replace(CPU, widths=(400,), train_size=s3.mnist_train, epochs=s3.epochs,
                               batch_size=s3.batch_size, lr=s3.lr, train_steps=s3.train_steps,
                               step_divisor=0.05 / s3.train_step_size, madry_eps=(0.05, 0.1))
    xs, ys = recipes.suggala_subset(x, y, ours.train_size, 0)
    for method in (frontier.Method("standard"), frontier.Method("madry", 0.05)):
        run = recipes.suggala_fit(lambda: models.MLP(784, (400,)), (xs, ys), frontier.objective(method, ours),
                                  trial=0, epochs=ours.epochs, batch_size=ours.batch_size, lr=ours.lr,
                                  device=torch.device("cpu"), name=method.label)
        assert run.hit, method.label
    assert len(seen) == 2  # chapter 3 trained two models, the frontier none


@pytest.fixture
def model_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "models_dir", lambda: tmp_path / "models")
    monkeypatch.setenv("TRADEOFFS_RESULT_CACHE", str(tmp_path / "results"))
    return tmp_path / "models"


# ---------------------------------------------------------------------------------- the sweep


@pytest.mark.skipif(not (data_dir() / "mnist.npz").exists(), reason="MNIST not fetched; run `make data`")
def test_tiny_sweep_end_to_end(model_cache):
    tiny = dataclasses.replace(SMOKE, widths=(8,), train_size=32, batch_size=16, clean_size=40, test_size=16,
                               noise_sigmas=(0.3,), madry_eps=(0.1,), trades_betas=(1.0,),
                               joint_lambdas=(2.0,))
    points = frontier.sweep(tiny, device=torch.device("cpu"), seed=0, show_progress=False)
    assert [p.method for p in points] == ["standard", "noise", "madry", "trades", "joint"]
    for p in points:
        assert 0 <= p.robust <= p.clean <= 100 and 0 <= p.robust_pgd <= p.clean
        assert p.train_seconds > 0 and not p.cache_hit
        # per-example outcomes: clean on clean_size images, the attacks on the first test_size of them
        assert {k: (v.dtype, len(v)) for k, v in p.correct.items()} == {
            "clean": (torch.bool, 40), "strong": (torch.bool, 16), "pgd": (torch.bool, 16),
            "large": (torch.bool, 16)}
        assert not (p.correct["strong"] & ~p.correct["clean"][:16]).any()  # robust implies right when clean
        assert p.accuracy("clean").n == 40 and p.accuracy("strong").value == pytest.approx(p.robust)
    assert not any(p.eval_cached for p in points) and all(p.eval_seconds > 0 for p in points)
    again = frontier.sweep(tiny, device=torch.device("cpu"), seed=0, show_progress=False)
    assert all(p.cache_hit and p.eval_cached for p in again)
    assert [p.train_seconds for p in again] == pytest.approx([p.train_seconds for p in points], abs=1e-3)
    assert [(p.clean, p.robust) for p in again] == [(p.clean, p.robust) for p in points]
    assert all(torch.equal(a.correct[k], b.correct[k])
               for a, b in zip(again, points) for k in frontier.OUTCOMES)
    other_eps = frontier.sweep(dataclasses.replace(tiny, eval_eps=0.05), device=torch.device("cpu"), seed=0,
                               show_progress=False)
    assert all(p.cache_hit and not p.eval_cached for p in other_eps)  # another protocol: evaluated again
    front = frontier.pareto_front([(p.clean, p.robust) for p in points])
    fig, ax = plt.subplots()
    frontier.plot_frontier(ax, points, front)
    assert ax.get_legend() is not None and ax.get_xlabel() == "clean accuracy (%)"
    frontier.plot_cost(ax, points)
    assert ax.get_xscale() == "log"
    plt.close(fig)
    steps = frontier.front_steps(points, front)
    assert len(steps) == len(front) - 1
    header, rows = frontier.step_rows(points, steps)
    assert len(rows) == len(steps) and all(len(r) == len(header) for r in rows)
    header, rows = frontier.cost_rows(points, front, tiny)
    assert "l_inf eps = 0.1" in header[2] and "16 images" in header[2]
    assert len(rows) == len(points) and all(len(r) == len(header) for r in rows)
    assert sum(r[header.index("Pareto")] == "yes" for r in rows) == len(front)
    # "dominated by" is filled off the front only
    assert all(bool(r[-1]) == (i not in front) for i, r in enumerate(rows))


def test_cached_evaluation_is_read_back_checked_and_recomputed_when_the_library_changes(model_cache,
                                                                                        monkeypatch):
    x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    model = models.MLP(5, (8,), classes=3)
    calls = []
    outcomes = {kind: torch.rand(64) < 0.5 for kind in frontier.OUTCOMES}
    monkeypatch.setattr(frontier, "evaluate_point", lambda *args: calls.append(1) or outcomes)
    first, hit = frontier.cached_evaluation(model, x, y, CPU)
    again, hit2 = frontier.cached_evaluation(model, x, y, CPU)
    assert (hit, hit2, len(calls)) == (False, True, 1)
    for kind in frontier.OUTCOMES:  # the per-example outcomes come back as they were, from the checked store
        assert first[kind].dtype == torch.bool and torch.equal(first[kind], outcomes[kind])
        assert torch.equal(again[kind], first[kind])
    (record,) = store.results_dir().glob("frontier.evaluation-*.pt")
    record.write_bytes(record.read_bytes().replace(b"\n", b"\n\x00", 1))  # edited: evaluated again
    with pytest.warns(UserWarning, match="corrupt"):
        assert frontier.cached_evaluation(model, x, y, CPU)[1] is False and len(calls) == 2
    record.write_bytes(record.read_bytes()[:40])  # truncated: evaluated again, no traceback
    with pytest.warns(UserWarning, match="corrupt"):
        assert frontier.cached_evaluation(model, x, y, CPU)[1] is False and len(calls) == 3
    monkeypatch.setattr(store, "library_digest", lambda: "an edited attack")
    assert frontier.cached_evaluation(model, x, y, CPU)[1] is False and len(calls) == 4


# ------------------------------------------------------------------- paired comparisons on the front


def _point(label, clean, strong):
    """A point with the given per-example outcomes (lists of 0/1), robust ones for every outcome kind."""
    c, r = torch.tensor(clean, dtype=torch.bool), torch.tensor(strong, dtype=torch.bool)
    return frontier.Point(method="standard", value=None, label=label,
                          correct={"clean": c, "strong": r, "pgd": r, "large": r}, train_seconds=1.0,
                          attack_steps=0, gradient_passes=1, cache_hit=False)


def test_difference_is_paired_on_the_same_points():
    """Two models that differ on few images of many are resolved by the paired interval, where the unpaired
    one (which ignores that they are right on the same images) is not."""
    from tradeoffs import stats
    n = 1000
    base = [1] * 600 + [0] * 400
    better = [1] * 630 + [0] * 370  # right wherever base is, and on 30 more images
    a, b = _point("a", [1] * n, better), _point("b", [1] * n, base)
    d = frontier.difference(a, b)
    assert d.value == pytest.approx(3.0) and d.method == "Newcombe paired" and d.lo > 0
    assert 100 * stats.difference(0.63, n, 0.60, n).lo < 0  # unpaired: not resolved
    assert frontier.difference(b, a).hi < 0
    with pytest.raises(ValueError, match="same length"):
        frontier.difference(a, _point("c", [1] * 10, [1] * 10))


def test_front_steps_are_ordered_and_resolved_only_when_both_intervals_exclude_zero():
    accurate = _point("accurate", [1] * 990 + [0] * 10, [1] * 200 + [0] * 800)
    robust = _point("robust", [1] * 900 + [0] * 100, [1] * 500 + [0] * 500)
    close = _point("close", [1] * 899 + [0] * 101, [1] * 503 + [0] * 497)  # 3 more robust, 1 less clean
    points = [robust, close, accurate]
    front = frontier.pareto_front([(p.clean, p.robust) for p in points])
    assert sorted(front) == [0, 1, 2]
    steps = frontier.front_steps(points, front)
    assert [(points[s.accurate].label, points[s.robust].label) for s in steps] == [
        ("accurate", "robust"), ("robust", "close")]
    assert steps[0].resolved and steps[0].clean_gain.value == pytest.approx(9.0)
    assert steps[0].robust_gain.value == pytest.approx(30.0)
    assert not steps[1].resolved and steps[1].robust_gain.lo < 0 < steps[1].robust_gain.hi
    header, rows = frontier.step_rows(points, steps)
    assert [r[-1] for r in rows] == ["yes", "no: the robust gain and the clean cost within noise"]
    fig, ax = plt.subplots()
    frontier.plot_frontier(ax, points, front)
    styles = [line.get_linestyle() for line in ax.get_lines() if len(line.get_xdata()) == 2]
    assert styles == ["-", ":"]  # the resolved step solid, the one within noise dotted
    plt.close(fig)
