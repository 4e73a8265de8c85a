"""One accuracy-robustness frontier for every training method of the book (chapter 5).

Standard training, data-randomized (Gaussian noise) training (the two-Gaussians paper, Eq. (5)), Madry et
al.'s PGD adversarial training (Eq. (2.1)), TRADES (Zhang et al. 2019, Eq. (5), Alg. 1; beta = 1/lambda) and
the joint objective of Suggala et al. (2019, Eq. (7)) are run on the same MNIST network, the same data and the
same budget (chapter 3's MNIST recipe: a one-hidden-layer ReLU network, Adam, the same training subset and
initialization), and each model becomes one point (clean accuracy, robust accuracy) evaluated by the same
attack at the same eps. A point is on the Pareto front when no other point is at least as good in both
coordinates and strictly better in one.

    points = frontier.sweep(settings, device=device, seed=seed)     # train (or load) and evaluate
    front = frontier.pareto_front([(p.clean, p.robust) for p in points])

Standard, Madry and joint runs are the joint objective at lambda = 0, 1 and lambda, trained by chapter 3's
recipe (``tradeoffs.recipes.suggala_fit``), so the store hands over chapter 3's models wherever the call is
the same. The training cost of a point is reported two ways: ``train_seconds``, the wall time measured when
the model was trained (kept in its store entry, so a hit reports the time of the run that trained it, in this
chapter or another, not 0), and the machine-independent ``gradient_passes``: forward-backward passes over one
example, examples x epochs x (1 + K) for a method whose inner maximization takes K attack steps, examples x
epochs for standard and noise training. Each model's evaluation goes through the store too
(:func:`cached_evaluation`), so a warm execution re-attacks nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tradeoffs import data, evaluate, models, recipes, stats, store, train
from tradeoffs.book.style import METHOD_COLORS
from tradeoffs.progress import progress

__all__ = ["METHODS", "OUTCOMES", "Method", "Point", "Step", "attack_eps", "attack_steps",
           "cached_evaluation", "cost_rows", "difference", "dominated_by", "dominates", "evaluate_point",
           "front_steps", "joint_lambda", "methods", "objective", "pareto_front", "plot_cost",
           "plot_frontier", "step_rows", "step_size", "sweep", "threat_model", "train_cost", "training_data"]

METHODS = ("standard", "noise", "madry", "trades", "joint")
"""The training methods, in the order the chapter lists them."""

PARAMETER = {"standard": "", "noise": "sigma", "madry": "eps", "trades": "1/lambda", "joint": "lambda"}


# ------------------------------------------------------------------------------------ methods


@dataclass(frozen=True)
class Method:
    """One training run of the sweep: ``kind`` in :data:`METHODS` and its parameter (noise sigma, Madry's
    training eps, TRADES's beta = 1/lambda, the joint objective's lambda; None for standard training)."""

    kind: str
    value: float | None = None

    def __post_init__(self):
        if self.kind not in METHODS:
            raise ValueError(f"unknown method {self.kind!r}; valid: {', '.join(METHODS)}")
        if (self.value is None) != (self.kind == "standard"):
            raise ValueError(f"{self.kind} needs "
                             f"{'no parameter' if self.kind == 'standard' else 'a parameter'}")

    @property
    def label(self) -> str:
        """``"Madry eps=0.1"``, ``"TRADES 1/lambda=6"``, ``"standard"``."""
        name = {"standard": "standard", "noise": "noise", "madry": "Madry", "trades": "TRADES",
                "joint": "joint"}[self.kind]
        return name if self.value is None else f"{name} {PARAMETER[self.kind]}={self.value:g}"


def methods(settings) -> list[Method]:
    """The runs of a :class:`tradeoffs.chapters.ch05_frontier.settings.Frontier` profile: standard, then each
    noise sigma, Madry eps, TRADES 1/lambda and joint lambda."""
    return ([Method("standard")] + [Method("noise", s) for s in settings.noise_sigmas]
            + [Method("madry", e) for e in settings.madry_eps] + [Method("trades",
                                                                         b) for b in settings.trades_betas]
            + [Method("joint", lam) for lam in settings.joint_lambdas])


def attack_eps(method: Method, settings) -> float:
    """The radius of the training attack: Madry's own eps; ``train_eps`` for TRADES and the joint objective;
    for standard training (the joint objective at lambda = 0, which runs no attack) the smallest Madry eps,
    as chapter 3 keys its lambda = 0 model; 0 for noise training."""
    if method.kind == "madry":
        return float(method.value)
    if method.kind == "standard":
        return float(min(settings.madry_eps, default=settings.train_eps))
    return settings.train_eps if method.kind in ("trades", "joint") else 0.0


def joint_lambda(method: Method) -> float:
    """Standard training is the joint objective at lambda = 0 and Madry's at lambda = 1 (Suggala et al.,
    Eq. (7))."""
    return {"standard": 0.0, "madry": 1.0}.get(method.kind, method.value)


def step_size(method: Method, settings) -> float:
    """The training attack's step: eps / ``step_divisor`` (chapter 3 cpu: 0.02 at eps 0.05, K = 5)."""
    return attack_eps(method, settings) / settings.step_divisor


def attack_steps(method: Method, settings) -> int:
    """K, the attack steps per training example and epoch (0 for standard and noise training, and for the
    joint objective at lambda = 0, which runs no attack)."""
    if method.kind in ("standard", "noise") or (method.kind == "joint" and method.value == 0):
        return 0
    return settings.train_steps


def objective(method: Method, settings) -> train.Objective:
    """The ``tradeoffs.train`` objective of ``method``, its attack K = ``settings.train_steps`` projected
    steps of :func:`step_size`."""
    eps, step = attack_eps(method, settings), step_size(method, settings)
    if method.kind == "noise":
        return train.noise(sigma=method.value)
    if method.kind == "trades":
        return train.trades(beta=method.value, eps=eps, steps=settings.train_steps, step_size=step)
    return train.joint(lam=joint_lambda(method), eps=eps, steps=settings.train_steps, step_size=step)


# ------------------------------------------------------------------------------ cost accounting


def train_cost(method: Method, settings) -> int:
    """Forward-backward passes over one example: examples x epochs x (1 + K). A joint objective with
    0 < lambda, lambda != 1 also runs a clean pass; it is counted (1 + K + 1)."""
    k = attack_steps(method, settings)
    extra = 1 if method.kind == "joint" and method.value not in (0, 1) else 0
    return settings.train_size * settings.epochs * (1 + k + extra)


# ---------------------------------------------------------------------------------- the sweep


OUTCOMES = ("clean", "strong", "pgd", "large")
"""The per-example outcomes of a model: clean, under the strong attack and PGD at ``eval_eps``, and under
PGD-40 at ``large_eps``."""


@dataclass
class Point:
    """One model on the frontier: its per-example outcomes, its cost, and where its numbers came from.

    ``correct[kind]`` for each kind in :data:`OUTCOMES` is a bool tensor, True where the model is right:
    ``"clean"`` on the first ``clean_size`` test images (all 10k when None), the robust ones on the first
    ``test_size`` of them, every model on the same images. The accuracies (``clean``, ``robust``, ...) are
    their means in %; :meth:`accuracy` gives one with its Wilson interval."""

    method: str
    value: float | None
    label: str
    correct: dict[str, Tensor]     # per-example outcomes, OUTCOMES
    train_seconds: float           # wall time of its training run (when it was trained)
    attack_steps: int              # K per example and epoch
    gradient_passes: int           # examples x epochs x (1 + K ...)
    cache_hit: bool                # loaded from the model cache (trained by this or another chapter)
    eval_seconds: float = 0.0      # wall time of its evaluation (when it ran)
    eval_cached: bool = False      # the evaluation was read from its record beside the cache entry

    def accuracy(self, kind: str) -> stats.Estimate:
        """The accuracy of outcome ``kind`` (:data:`OUTCOMES`) in %, with its 95% Wilson interval."""
        return 100 * stats.proportion(self.correct[kind])

    def _percent(self, kind: str) -> float:
        return 100 * self.correct[kind].double().mean().item()

    @property
    def clean(self) -> float:
        """% of the clean test images classified correctly."""
        return self._percent("clean")

    @property
    def robust(self) -> float:
        """% robust under the strong attack at ``eval_eps``."""
        return self._percent("strong")

    @property
    def robust_pgd(self) -> float:
        """% robust under PGD (the cheap protocol of chapter 4) at ``eval_eps``, same images."""
        return self._percent("pgd")

    @property
    def robust_large_eps(self) -> float:
        """% robust under PGD-40 (step 0.01) at ``large_eps`` (0.3), same images."""
        return self._percent("large")


def difference(a: Point, b: Point, kind: str = "strong") -> stats.Estimate:
    """a's accuracy minus b's for outcome ``kind`` (:data:`OUTCOMES`), in points, with Newcombe's paired 95%
    interval (``tradeoffs.stats.paired_difference``): both models are evaluated on the same test images."""
    return 100 * stats.paired_difference(a.correct[kind], b.correct[kind])


@dataclass(frozen=True)
class Step:
    """Two neighbours on the Pareto front, ``accurate`` (the index of the one with the higher clean
    accuracy) and ``robust`` (the other): ``clean_gain`` = clean(accurate) - clean(robust) and
    ``robust_gain`` = robust(robust) - robust(accurate), each a paired difference with its 95% interval."""

    accurate: int
    robust: int
    clean_gain: stats.Estimate
    robust_gain: stats.Estimate

    @property
    def resolved(self) -> bool:
        """The order of the two is not noise: both intervals lie above 0 (each model is better in one
        coordinate)."""
        return self.clean_gain.lo > 0 and self.robust_gain.lo > 0


def front_steps(points: Sequence[Point], front: Sequence[int]) -> list[Step]:
    """The steps along the front, from the most accurate model to the most robust: each pair of neighbours
    with the paired differences that separate them (:class:`Step`)."""
    order = sorted(front, key=lambda i: (-points[i].clean, points[i].robust))
    return [Step(a, b, difference(points[a], points[b], "clean"), difference(points[b], points[a], "strong"))
            for a, b in zip(order, order[1:])]


def threat_model(settings) -> str:
    """The attack and threat model of the frontier's robust accuracy, as the chapter states it next to each
    number: "strong attack (APGD-CE, APGD-T x 3, PGD-100 x 1), l_inf eps = 0.1"."""
    return (f"strong attack (APGD-CE, APGD-T x {settings.strong_targets}, PGD-{settings.strong_steps} x "
            f"{settings.strong_restarts}), l_inf eps = {settings.eval_eps:g}")


def evaluate_point(model: nn.Module, x: Tensor, y: Tensor, settings, *, show_progress: bool = False
                   ) -> dict[str, Tensor]:
    """The per-example outcomes of ``model`` (:data:`OUTCOMES`, bool tensors on the CPU): clean on all of
    (x, y), the robust ones on its first ``settings.test_size`` points, at ``settings.eval_eps`` except the
    last (PGD-40, step 0.01, at ``settings.large_eps`` = 0.3: the eps of Madry et al.'s and TRADES's MNIST
    tables).

    Strong: :func:`tradeoffs.evaluate.strong_attack` (APGD-CE, APGD-T with ``strong_targets`` targets,
    ``strong_apgd_steps`` iterations each, then PGD-``strong_steps`` x ``strong_restarts``). PGD: PGD-
    ``pgd_steps`` of step ``pgd_step_size``, one random start (TRADES's Table 4 protocol at eps 0.1)."""
    eps, xr, yr = settings.eval_eps, x[:settings.test_size], y[:settings.test_size]
    return {
        "clean": evaluate.correct(model, x, y),
        "strong": evaluate.robust_correct(
            model, xr, yr, eps=eps, attack="strong", apgd_steps=settings.strong_apgd_steps,
            apgd_targets=settings.strong_targets, steps=settings.strong_steps,
            restarts=settings.strong_restarts, show_progress=show_progress),
        "pgd": evaluate.robust_correct(model, xr, yr, eps=eps, attack="pgd", steps=settings.pgd_steps,
                                       step_size=settings.pgd_step_size, show_progress=show_progress),
        "large": evaluate.robust_correct(model, xr, yr, eps=settings.large_eps, attack="pgd", steps=40,
                                         step_size=0.01, show_progress=show_progress),
    }


def training_data(settings, seed: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The training subset (chapter 3's: ``settings.train_size`` images drawn for trial ``seed``,
    ``tradeoffs.recipes.suggala_subset``) and the first ``settings.clean_size`` test images (all of them when
    None; the robust accuracies use the first ``test_size`` of these), on ``device``."""
    x, y = data.load_mnist("train")
    xs, ys = recipes.suggala_subset(x, y, settings.train_size, seed)
    xt, yt = data.load_mnist("test")
    n = max(settings.clean_size or len(xt), settings.test_size)
    return xs.to(device), ys.to(device), xt[:n].to(device), yt[:n].to(device)


def sweep(settings, *, device: torch.device, seed: int = 0, show_progress: bool = True) -> list[Point]:
    """Train (or load from the cache) every run of ``settings`` and evaluate it on the same test images.

    Every run is ``models.MLP(784, settings.widths)`` from the same initialization (seed ``seed``), trained
    for ``settings.epochs`` epochs of Adam (lr ``settings.lr``, batch ``settings.batch_size``) on the same
    training subset with its own objective (:func:`objective`), then evaluated by :func:`evaluate_point`.
    """
    x, y, xt, yt = training_data(settings, seed, device)
    def build() -> nn.Module:
        return models.MLP(784, tuple(settings.widths))

    points = []
    bar = progress(methods(settings), desc="frontier", unit="model", disable=not show_progress)
    for method in bar:
        run = recipes.suggala_fit(build, (x, y), objective(method, settings), trial=seed,
                                  epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
                                  device=device, name=f"frontier {method.label}")
        result, eval_hit = cached_evaluation(run.model, xt, yt, settings)
        points.append(Point(method=method.kind, value=method.value, label=method.label,
                            correct={kind: result[kind] for kind in OUTCOMES},
                            train_seconds=run.record["train_seconds"],
                            attack_steps=attack_steps(method, settings),
                            gradient_passes=train_cost(method, settings), cache_hit=run.hit,
                            eval_seconds=result["seconds"], eval_cached=eval_hit))
    return points


EVAL_FIELDS = ("clean_size", "test_size", "eval_eps", "strong_apgd_steps", "strong_targets", "strong_steps",
               "strong_restarts", "pgd_steps", "pgd_step_size", "large_eps")


def cached_evaluation(model: nn.Module, x: Tensor, y: Tensor, settings) -> tuple[dict, bool]:
    """:func:`evaluate_point` of ``model`` on (x, y), through the store (``tradeoffs.store.cached``: checked,
    keyed by the model's weights, the test data, the evaluation settings and the library's source), so a warm
    execution does not attack the same model with the same attacks again, and a change to the attacks does.
    Returns ({"clean", "strong", "pgd", "large": per-example outcomes (bool tensors), "seconds"}, whether the
    store held it)."""
    protocol = {k: getattr(settings, k) for k in EVAL_FIELDS}
    key = store.key(model, x, y, protocol, store.library_digest())
    entry = store.results_dir() / f"frontier.evaluation-{key}.pt"

    def evaluation() -> dict:
        started = time.perf_counter()
        outcomes = evaluate_point(model, x, y, settings)
        return {**outcomes, "seconds": round(time.perf_counter() - started, 3)}
    return store.cached(entry, evaluation, what="frontier.evaluation")


# ------------------------------------------------------------------------------- Pareto front


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a dominates b: at least as good in every coordinate (larger is better) and better in one."""
    return all(ai >= bi for ai, bi in zip(a, b)) and any(ai > bi for ai, bi in zip(a, b))


def pareto_front(values: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates (maximizing every coordinate), in input order.
    Equal points are all kept."""
    return [i for i, v in enumerate(values) if not any(dominates(w,
                                                                 v) for j, w in enumerate(values) if j != i)]


# ------------------------------------------------------------------------------- presentation


METHOD_STYLE = {"standard": (METHOD_COLORS["standard"], "o"), "noise": (METHOD_COLORS["noise"], "s"),
                "madry": (METHOD_COLORS["adversarial"], "^"), "trades": (METHOD_COLORS["trades"], "D"),
                "joint": (METHOD_COLORS["joint"], "v")}
"""Colour (the book's colour per method, ``tradeoffs.book.style.METHOD_COLORS``) and marker of each method."""


def dominated_by(values: Sequence[Sequence[float]]) -> list[list[int]]:
    """For each point, the indices of the points that dominate it (empty for the Pareto front)."""
    return [[j for j, w in enumerate(values) if j != i and dominates(w, v)] for i, v in enumerate(values)]


def plot_frontier(ax, points: Sequence[Point], front: Sequence[int], *,
                  robust_label: str = "robust accuracy (%)"):
    """The natural-vs-robust scatter, one colour and marker per method, each point with its 95% Wilson
    intervals as error bars, the Pareto front as a step line: solid where the step between two neighbours is
    resolved (:meth:`Step.resolved`), dotted where an interval of the step contains 0."""
    for kind in METHODS:
        mine = [p for p in points if p.method == kind]
        if not mine:
            continue
        color, marker = METHOD_STYLE[kind]
        clean = [p.accuracy("clean") for p in mine]
        robust = [p.accuracy("strong") for p in mine]
        ax.errorbar([c.value for c in clean], [r.value for r in robust],
                    xerr=[[c.value - c.lo for c in clean], [c.hi - c.value for c in clean]],
                    yerr=[[r.value - r.lo for r in robust], [r.hi - r.value for r in robust]],
                    color=color, marker=marker, markersize=6, linestyle="none", elinewidth=0.8, capsize=2,
                    label={"madry": "Madry PGD-AT", "trades": "TRADES", "joint": "joint (Suggala)",
                           "noise": "noise (data-randomized)", "standard": "standard"}[kind], zorder=3)
        for p in mine:
            if p.value is not None:
                ax.annotate(f"{p.value:g}", (p.clean, p.robust), fontsize=7, xytext=(4, 3),
                            textcoords="offset points")
    for step in front_steps(points, front):
        a, b = points[step.accurate], points[step.robust]
        ax.plot([a.clean, b.clean], [a.robust, b.robust], color="0.3", linewidth=1,
                linestyle="-" if step.resolved else ":", zorder=2)
    on_front = [points[i] for i in front]
    ax.scatter([p.clean for p in on_front], [p.robust for p in on_front], facecolors="none", edgecolors="k",
               s=140, linewidths=1, zorder=4)
    ax.plot([], [], color="0.3", linewidth=1, label="Pareto front: resolved step")
    ax.plot([], [], color="0.3", linewidth=1, linestyle=":", label="Pareto front: step within noise")
    ax.set(xlabel="clean accuracy (%)", ylabel=robust_label)
    ax.legend(fontsize=8, loc="best")


def plot_cost(ax, points: Sequence[Point]) -> None:
    """Robust accuracy against training wall time (log scale), one colour and marker per method."""
    for kind in METHODS:
        color, marker = METHOD_STYLE[kind]
        mine = [p for p in points if p.method == kind]
        ax.scatter([p.train_seconds for p in mine], [p.robust for p in mine], marker=marker, s=45,
                   color=color, zorder=3)
    ax.set(xscale="log", xlabel="training wall time (s, log scale)",
           ylabel="robust accuracy (%)")


def cost_rows(points: Sequence[Point], front: Sequence[int], settings) -> tuple[list[str], list[list[str]]]:
    """The chapter's table: (header, rows) with each model's clean and robust accuracies (the clean and the
    strong one with their 95% intervals; each header names its attack, eps and number of test images), its
    training cost (K, gradient passes, seconds), whether it is on the front, and what dominates it."""
    beaten_by = dominated_by([(p.clean, p.robust) for p in points])
    n_clean, n = len(points[0].correct["clean"]), len(points[0].correct["strong"])
    eps = settings.eval_eps
    header = ["model", f"clean (%), {n_clean:,} images",
              f"robust (%), {threat_model(settings)}, {n:,} images",
              f"PGD-{settings.pgd_steps}, step {settings.pgd_step_size:g}, eps {eps:g} (%)",
              f"PGD-40, step 0.01, eps {settings.large_eps:g} (%)", "K", "gradient passes", "training (s)",
              "Pareto", "dominated by"]
    rows = []
    for i, p in enumerate(points):
        rows.append([p.label, _with_interval(p.accuracy("clean")),
                     f"**{_with_interval(p.accuracy('strong'))}**",
                     f"{p.robust_pgd:.1f}", f"{p.robust_large_eps:.1f}", str(p.attack_steps),
                     f"{p.gradient_passes:,}", f"{p.train_seconds:.1f}",
                     "yes" if i in front else "", ", ".join(points[j].label for j in beaten_by[i])])
    return header, rows


def step_rows(points: Sequence[Point], steps: Sequence[Step]) -> tuple[list[str], list[list[str]]]:
    """The steps along the front (:func:`front_steps`) as a table: the two neighbours, what the more robust
    one gains in robust accuracy and loses in clean accuracy (paired 95% intervals), and whether the step is
    resolved."""
    header = ["more accurate", "more robust", "robust gain (points) [95%]", "clean cost (points) [95%]",
              "resolved"]
    def verdict(s: Step) -> str:
        if s.resolved:
            return "yes"
        within = [what for what, e in (("robust gain", s.robust_gain), ("clean cost", s.clean_gain))
                  if e.lo <= 0]
        return f"no: the {' and the '.join(within)} within noise"
    rows = [[points[s.accurate].label, points[s.robust].label, _with_interval(s.robust_gain, signed=True),
             _with_interval(s.clean_gain, signed=True), verdict(s)] for s in steps]
    return header, rows


def _with_interval(e: stats.Estimate, *, signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{e.value:{sign}.1f} [{e.lo:{sign}.1f}, {e.hi:{sign}.1f}]"
