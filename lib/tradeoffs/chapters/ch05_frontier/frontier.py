"""One accuracy-robustness frontier for every training method of the book (chapter 5).

Standard training, data-randomized (Gaussian noise) training (paper 000, Eq. (5)), Madry et al.'s PGD
adversarial training (Eq. (2.1)), TRADES (Zhang et al. 2019, Eq. (5), Alg. 1; beta = 1/lambda) and the joint
objective of Suggala et al. (2019, Eq. (7)) are run on the same MNIST network, the same data and the same
budget (chapter 3's MNIST recipe: a one-hidden-layer ReLU network, Adam, the same training subset and
initialization), and each model becomes one point (clean accuracy, robust accuracy) evaluated by the same
attack at the same eps. A point is on the Pareto front when no other point is at least as good in both
coordinates and strictly better in one.

    points = frontier.sweep(settings, device=device, seed=seed)     # train (or load) and evaluate
    front = frontier.pareto_front([(p.clean, p.robust) for p in points])

Standard, Madry and joint runs are the joint objective at lambda = 0, 1 and lambda, cached under chapter 3's
names and settings (:func:`tradeoffs.chapters.ch03_joint_objective.joint_risk.train_joint`), so chapter 3's models are shared where the
settings agree. The training cost of a point is reported two ways: ``train_seconds``, the wall time measured
when the model was trained (stored beside the model-cache entry, so a cache hit reports the time of the run
that made the entry, not 0; an entry trained by another chapter without that record gets its gradient
passes times the measured seconds per pass of the sweep's other runs, ``seconds_source = "estimated"``:
:func:`fill_estimates`), and the machine-independent
``gradient_passes``: forward-backward passes over one example, examples x epochs x (1 + K) for a method whose
inner maximization takes K attack steps, examples x epochs for standard and noise training. Each model's
evaluation is recorded beside its cache entry too (:func:`cached_evaluation`, keyed by the model's SHA-256,
the attack settings, the test images and the library's source), so a warm execution re-attacks nothing.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from tradeoffs import data, evaluate, models, store, train
from tradeoffs.book.style import METHOD_COLORS
from tradeoffs.chapters.ch03_joint_objective import joint_risk
from tradeoffs.progress import progress

__all__ = ["METHODS", "Method", "Point", "attack_eps", "attack_steps", "cached_evaluation", "cost_rows",
           "dominated_by", "dominates", "estimate_seconds", "evaluate_point", "fill_estimates", "joint_lambda", "method_recipe",
           "methods", "objective", "pareto_front", "plot_cost", "plot_frontier", "step_size", "sweep",
           "timed_model", "train_cost", "training_data"]

METHODS = ("standard", "noise", "madry", "trades", "joint")
"""The training methods, in the order the chapter lists them."""

PARAMETER = {"standard": "", "noise": "sigma", "madry": "eps", "trades": "1/lambda", "joint": "lambda"}
COST_SUFFIX = ".train.json"  # beside a cache entry <name>-<key>.pt: the measured training time


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
            raise ValueError(f"{self.kind} needs {'no parameter' if self.kind == 'standard' else 'a parameter'}")

    @property
    def label(self) -> str:
        """``"Madry eps=0.1"``, ``"TRADES 1/lambda=6"``, ``"standard"``."""
        name = {"standard": "standard", "noise": "noise", "madry": "Madry", "trades": "TRADES",
                "joint": "joint"}[self.kind]
        return name if self.value is None else f"{name} {PARAMETER[self.kind]}={self.value:g}"

    def cache_name(self, settings) -> str:
        """The model-cache name: chapter 3's ``joint-mnist-mlp-<widths>-lam<lambda>-eps<eps>-t<seed>`` for
        standard (lambda = 0), Madry (lambda = 1) and joint runs, ``frontier-mnist-mlp-...`` for the others."""
        widths = "x".join(map(str, settings.widths))
        if self.kind in ("standard", "madry", "joint"):
            return f"joint-mnist-mlp-{widths}-lam{joint_lambda(self):g}-eps{attack_eps(self, settings):g}-t{{trial}}"
        knob = f"sigma{self.value:g}" if self.kind == "noise" else f"beta{self.value:g}-eps{settings.train_eps:g}"
        return f"frontier-mnist-mlp-{widths}-{self.kind}-{knob}-t{{trial}}"


def methods(settings) -> list[Method]:
    """The runs of a :class:`tradeoffs.chapters.ch05_frontier.settings.Frontier` profile: standard, then each noise sigma,
    Madry eps, TRADES 1/lambda and joint lambda."""
    return ([Method("standard")] + [Method("noise", s) for s in settings.noise_sigmas]
            + [Method("madry", e) for e in settings.madry_eps] + [Method("trades", b) for b in settings.trades_betas]
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
    """Standard training is the joint objective at lambda = 0 and Madry's at lambda = 1 (Suggala et al., Eq. (7))."""
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


def method_recipe(method: Method, settings, seed: int) -> dict:
    """A run's cache settings: chapter 3's key (:func:`tradeoffs.chapters.ch03_joint_objective.joint_risk.train_joint`) for standard, Madry
    and joint runs (so its models are shared where the settings agree), the same plus ``method`` and the
    method's parameter for noise and TRADES."""
    key = {"data": "mnist", "n": settings.train_size, "architecture": "mlp", "widths": list(settings.widths),
           "vgg_width": None, "lam": joint_lambda(method), "eps": attack_eps(method, settings),
           "epochs": settings.epochs, "batch_size": settings.batch_size, "lr": settings.lr, "optimizer": "adam",
           "pgd_steps": settings.train_steps, "pgd_step_size": step_size(method, settings), "seed": seed}
    if method.kind == "noise":
        key |= {"method": "noise", "sigma": method.value, "lam": None, "eps": 0.0, "pgd_steps": 0,
                "pgd_step_size": None}
    elif method.kind == "trades":
        key |= {"method": "trades", "beta": method.value, "lam": None}
    return key


# ------------------------------------------------------------------------------ cost accounting


def train_cost(method: Method, settings) -> int:
    """Forward-backward passes over one example: examples x epochs x (1 + K). A joint objective with
    0 < lambda, lambda != 1 also runs a clean pass; it is counted (1 + K + 1)."""
    k = attack_steps(method, settings)
    extra = 1 if method.kind == "joint" and method.value not in (0, 1) else 0
    return settings.train_size * settings.epochs * (1 + k + extra)


def _entry(name: str, settings: dict) -> Path:
    return store.models_dir() / f"{name}-{store.cache_key(name, settings)}.pt"


def timed_model(name: str, settings: dict, build: Callable[[], nn.Module],
                fit: Callable[[nn.Module, Path], object], *, device: torch.device,
                estimate: Callable[[], float] | None = None) -> tuple[nn.Module, float | None, str, bool]:
    """:func:`tradeoffs.store.trained_model` that also returns the training wall time.

    On a miss the training is timed and the seconds are written to ``<entry>.train.json`` beside the cache
    entry; on a hit they are read from there (``"measured"``, the time of the run that made the entry).
    An entry without that record (trained by another chapter) is timed by ``estimate()`` if given
    (``"estimated"``, and recorded as such), else reported as None (``"unknown"``).
    Returns (model, seconds, source, hit).
    """
    entry = _entry(name, settings)
    record = entry.with_name(entry.name.removesuffix(".pt") + COST_SUFFIX)
    hit = entry.exists()
    spent: dict[str, float] = {}

    def timed(model: nn.Module, checkpoint: Path) -> None:
        started = time.perf_counter()
        fit(model, checkpoint)
        spent["seconds"] = time.perf_counter() - started

    model = store.trained_model(name, settings, build, timed, device=device)
    if "seconds" in spent:  # trained now (a corrupt entry counts as a miss)
        record.write_text(json.dumps({"train_seconds": round(spent["seconds"], 3), "device": str(device),
                                      "torch_threads": torch.get_num_threads(),
                                      "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")
        return model, spent["seconds"], "measured", False
    if record.exists():
        saved = json.loads(record.read_text())
        return model, float(saved["train_seconds"]), saved.get("source", "measured"), hit
    if estimate is not None:  # recorded too, so that every later execution reports the same estimate
        seconds = estimate()
        record.write_text(json.dumps({"train_seconds": round(seconds, 3), "source": "estimated",
                                      "device": str(device), "torch_threads": torch.get_num_threads(),
                                      "estimated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")
        return model, seconds, "estimated", hit
    return model, None, "unknown", hit


def estimate_seconds(build: Callable[[], nn.Module], objective_: train.Objective, x: Tensor, y: Tensor, *,
                     batch_size: int, epochs: int, lr: float, batches: int = 20, warmup: int = 3) -> float:
    """Wall time of ``epochs`` passes over (x, y), extrapolated from the median of ``batches`` timed Adam steps
    of ``objective_`` on a fresh model, after ``warmup`` untimed steps (the first steps of a process are slow:
    kernels are set up, memory is allocated)."""
    per_epoch = -(-len(x) // batch_size)
    times = []
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        model = build().to(x.device).train()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for i in range(warmup + batches):
            started = time.perf_counter()
            idx = torch.arange(i * batch_size, (i + 1) * batch_size, device=x.device) % len(x)
            opt.zero_grad(set_to_none=True)
            objective_(model, x[idx], y[idx]).backward()
            opt.step()
            if i >= warmup:
                times.append(time.perf_counter() - started)
    times.sort()
    return times[len(times) // 2] * per_epoch * epochs


# ---------------------------------------------------------------------------------- the sweep


@dataclass
class Point:
    """One model on the frontier: accuracies in %, cost, and where its numbers came from."""

    method: str
    value: float | None
    label: str
    clean: float                   # % of the test images
    robust: float                  # % under the strong attack at the sweep's eps
    robust_pgd: float              # % under PGD (the cheap protocol of chapter 4), same images
    robust_large_eps: float        # % under PGD-40 (step 0.01) at settings.large_eps (0.3), same images
    train_seconds: float | None    # wall time of its training run
    seconds_source: str            # "measured", "estimated" or "unknown"
    attack_steps: int              # K per example and epoch
    gradient_passes: int           # examples x epochs x (1 + K ...)
    cache_hit: bool                # loaded from the model cache (trained by this or another chapter)
    eval_seconds: float = 0.0      # wall time of its evaluation (when it ran)
    eval_cached: bool = False      # the evaluation was read from its record beside the cache entry

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate_point(model: nn.Module, x: Tensor, y: Tensor, settings, *, show_progress: bool = False
                   ) -> tuple[float, float, float, float]:
    """(clean, strong robust, PGD robust, PGD robust at ``settings.large_eps``) accuracy in % on (x, y);
    the robust accuracies at ``settings.eval_eps`` except the last (PGD-40, step 0.01, at 0.3: the eps
    of Madry et al.'s and TRADES's MNIST tables).

    Strong: :func:`tradeoffs.evaluate.strong_attack` (APGD-CE, APGD-T with ``strong_targets`` targets,
    ``strong_apgd_steps`` iterations each, then PGD-``strong_steps`` x ``strong_restarts``). PGD: PGD-
    ``pgd_steps`` of step ``pgd_step_size``, one random start (TRADES's Table 4 protocol at eps 0.1)."""
    eps = settings.eval_eps
    clean = 100 * evaluate.accuracy(model, x, y)
    strong = 100 * evaluate.robust_accuracy(
        model, x, y, eps=eps, attack="strong", apgd_steps=settings.strong_apgd_steps,
        apgd_targets=settings.strong_targets, steps=settings.strong_steps, restarts=settings.strong_restarts,
        show_progress=show_progress)
    pgd = 100 * evaluate.robust_accuracy(model, x, y, eps=eps, attack="pgd", steps=settings.pgd_steps,
                                         step_size=settings.pgd_step_size, show_progress=show_progress)
    large = 100 * evaluate.robust_accuracy(model, x, y, eps=settings.large_eps, attack="pgd", steps=40,
                                           step_size=0.01, show_progress=show_progress)
    return clean, strong, pgd, large


def training_data(settings, seed: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The training subset (chapter 3's: ``settings.train_size`` images drawn for trial ``seed``) and the first
    ``settings.test_size`` test images, on ``device``."""
    x, y = data.load_mnist("train")
    xs, ys = joint_risk.training_subset(x, y, settings.train_size, seed)
    xt, yt = data.load_mnist("test")
    return xs.to(device), ys.to(device), xt[: settings.test_size].to(device), yt[: settings.test_size].to(device)


def sweep(settings, *, device: torch.device, seed: int = 0, show_progress: bool = True) -> list[Point]:
    """Train (or load from the cache) every run of ``settings`` and evaluate it on the same test images.

    Every run is ``models.MLP(784, settings.widths)`` from the same initialization (seed ``seed``), trained
    for ``settings.epochs`` epochs of Adam (lr ``settings.lr``, batch ``settings.batch_size``) on the same
    training subset with its own objective (:func:`objective`), then evaluated by :func:`evaluate_point`.
    """
    x, y, xt, yt = training_data(settings, seed, device)
    build = lambda: models.MLP(784, tuple(settings.widths))  # noqa: E731
    points = []
    bar = progress(methods(settings), desc="frontier", unit="model", disable=not show_progress)
    for method in bar:
        objective_ = objective(method, settings)
        name = method.cache_name(settings).format(trial=seed)
        fit_kw = dict(epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr, optimizer="adam",
                      seed=seed)

        def fit(model: nn.Module, checkpoint: Path, objective_=objective_) -> None:
            train.fit(model, x, y, objective_, checkpoint=checkpoint, show_progress=False, **fit_kw)

        model, seconds, source, hit = timed_model(name, method_recipe(method, settings, seed), build, fit,
                                                  device=device)
        result, eval_hit = cached_evaluation(model, _entry(name, method_recipe(method, settings, seed)), xt, yt,
                                             settings)
        points.append(Point(method=method.kind, value=method.value, label=method.label, clean=result["clean"],
                            robust=result["strong"], robust_pgd=result["pgd"], robust_large_eps=result["large"],
                            train_seconds=seconds, seconds_source=source, attack_steps=attack_steps(method, settings),
                            gradient_passes=train_cost(method, settings), cache_hit=hit,
                            eval_seconds=result["seconds"], eval_cached=eval_hit))
    return fill_estimates(points)


def fill_estimates(points: Sequence[Point]) -> list[Point]:
    """Give the points whose training time is unknown (models another chapter trained) an estimate: their
    gradient passes times the median seconds per gradient pass of the measured points of the same kind (with
    an attack, or without). Timing a few batches in this process instead proved unreliable (the first steps
    of a process are several times slower than a run's average). Points stay unknown when nothing of their
    kind was measured."""
    out = list(points)
    for attack in (True, False):
        rates = sorted(p.train_seconds / p.gradient_passes for p in points
                       if p.seconds_source == "measured" and (p.attack_steps > 0) == attack)
        if not rates:
            continue
        rate = rates[len(rates) // 2]
        for i, p in enumerate(out):
            if p.seconds_source == "unknown" and (p.attack_steps > 0) == attack:
                out[i] = dataclasses.replace(p, train_seconds=rate * p.gradient_passes, seconds_source="estimated")
    return out


EVAL_FIELDS = ("test_size", "eval_eps", "strong_apgd_steps", "strong_targets", "strong_steps", "strong_restarts",
               "pgd_steps", "pgd_step_size", "large_eps")


def cached_evaluation(model: nn.Module, entry: Path, x: Tensor, y: Tensor, settings) -> tuple[dict, bool]:
    """:func:`evaluate_point` of the cached model ``entry``, itself cached beside the entry
    (``<entry>.eval-<key>.json``), keyed by the model's SHA-256, the evaluation settings, the test data and the
    library's source (``store.library_digest``, as for memoized results), so a warm execution does not attack
    the same model with the same attacks again, and a change to the attacks does. An unreadable record is
    evaluated again. Returns (result, cache hit)."""
    protocol = {"model_sha256": _sidecar_sha(entry), "data_sha256": store.tensor_digest(x, y),
                "library": store.library_digest()[:16], **{k: getattr(settings, k) for k in EVAL_FIELDS}}
    key = store.cache_key("evaluation", protocol)
    record = entry.with_name(entry.name.removesuffix(".pt") + f".eval-{key}.json")
    if protocol["model_sha256"] is not None and record.exists():
        try:
            return json.loads(record.read_text()), True
        except (json.JSONDecodeError, UnicodeDecodeError):
            record.unlink()
    started = time.perf_counter()
    clean, strong, pgd, large = evaluate_point(model, x, y, settings)
    result = {"clean": clean, "strong": strong, "pgd": pgd, "large": large,
              "seconds": round(time.perf_counter() - started, 3), "protocol": protocol}
    if protocol["model_sha256"] is not None:
        record.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result, False


def _sidecar_sha(entry: Path) -> str | None:
    sidecar = entry.with_name(entry.name + ".sha256")
    return sidecar.read_text().strip() if sidecar.exists() else None


# ------------------------------------------------------------------------------- Pareto front


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a dominates b: at least as good in every coordinate (larger is better) and better in one."""
    return all(ai >= bi for ai, bi in zip(a, b)) and any(ai > bi for ai, bi in zip(a, b))


def pareto_front(values: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates (maximizing every coordinate), in input order.
    Equal points are all kept."""
    return [i for i, v in enumerate(values) if not any(dominates(w, v) for j, w in enumerate(values) if j != i)]


# ------------------------------------------------------------------------------- presentation


METHOD_STYLE = {"standard": (METHOD_COLORS["standard"], "o"), "noise": (METHOD_COLORS["noise"], "s"),
                "madry": (METHOD_COLORS["adversarial"], "^"), "trades": (METHOD_COLORS["trades"], "D"),
                "joint": ("#ff7f0e", "v")}
"""Colour (the book's colour per method, ``tradeoffs.style.METHOD_COLORS``) and marker of each method."""


def dominated_by(values: Sequence[Sequence[float]]) -> list[list[int]]:
    """For each point, the indices of the points that dominate it (empty for the Pareto front)."""
    return [[j for j, w in enumerate(values) if j != i and dominates(w, v)] for i, v in enumerate(values)]


def plot_frontier(ax, points: Sequence[Point], front: Sequence[int], *, robust_label: str = "robust accuracy (%)"):
    """The natural-vs-robust scatter, one colour and marker per method, the Pareto front as a step line."""
    for kind in METHODS:
        mine = [p for p in points if p.method == kind]
        if not mine:
            continue
        color, marker = METHOD_STYLE[kind]
        ax.scatter([p.clean for p in mine], [p.robust for p in mine], color=color, marker=marker, s=45,
                   label={"madry": "Madry PGD-AT", "trades": "TRADES", "joint": "joint (Suggala)",
                          "noise": "noise (data-randomized)", "standard": "standard"}[kind], zorder=3)
        for p in mine:
            if p.value is not None:
                ax.annotate(f"{p.value:g}", (p.clean, p.robust), fontsize=7, xytext=(4, 3), textcoords="offset points")
    on_front = sorted((points[i] for i in front), key=lambda p: p.clean)
    ax.plot([p.clean for p in on_front], [p.robust for p in on_front], color="0.3", linestyle="--", linewidth=1,
            label="Pareto front", zorder=2)
    ax.scatter([p.clean for p in on_front], [p.robust for p in on_front], facecolors="none", edgecolors="k", s=140,
               linewidths=1, zorder=4)
    ax.set(xlabel="clean accuracy (%)", ylabel=robust_label)
    ax.legend(fontsize=8, loc="best")


def plot_cost(ax, points: Sequence[Point]) -> None:
    """Robust accuracy against training wall time (log scale), one colour and marker per method; hollow
    markers for estimated times (:func:`fill_estimates`)."""
    for kind in METHODS:
        color, marker = METHOD_STYLE[kind]
        for estimated in (False, True):
            mine = [p for p in points if p.method == kind and p.train_seconds is not None
                    and (p.seconds_source == "estimated") == estimated]
            ax.scatter([p.train_seconds for p in mine], [p.robust for p in mine], marker=marker, s=45,
                       color="none" if estimated else color, edgecolors=color, zorder=3)
    ax.set(xscale="log", xlabel="training wall time (s, log scale; hollow: estimated)",
           ylabel="robust accuracy (%)")


def cost_rows(points: Sequence[Point], front: Sequence[int], settings) -> tuple[list[str], list[list[str]]]:
    """The chapter's table: (header, rows) with each model's clean and robust accuracies, its training cost
    (K, gradient passes, seconds; "est." when estimated), whether it is on the front, and what dominates it."""
    beaten_by = dominated_by([(p.clean, p.robust) for p in points])
    header = ["model", "clean (%)", "robust, strong (%)", f"robust, PGD-{settings.pgd_steps} (%)",
              f"PGD-40 at eps {settings.large_eps:g} (%)", "K", "gradient passes", "training (s)", "Pareto",
              "dominated by"]
    rows = []
    for i, p in enumerate(points):
        seconds = "unknown" if p.train_seconds is None else f"{p.train_seconds:.1f}" + (
            " (est.)" if p.seconds_source == "estimated" else "")
        rows.append([p.label, f"{p.clean:.1f}", f"**{p.robust:.1f}**", f"{p.robust_pgd:.1f}",
                     f"{p.robust_large_eps:.1f}", str(p.attack_steps), f"{p.gradient_passes:,}", seconds,
                     "yes" if i in front else "", ", ".join(points[j].label for j in beaten_by[i])])
    return header, rows
