"""Accuracy, clean and under attack: white-box, strong (PGD + AutoAttack's APGD), step curves.

Predictions are the sign of a binary margin (logits [N] or [N, 1], labels in {-1, +1}), else the arg-max
logit (labels = class indices). Every function here

* runs the model(s) in ``eval()`` mode and restores every submodule's training flag afterwards;
* never touches the parameters' ``.grad`` (the attacks differentiate with respect to the input only);
* checks every adversarial example it counts: ``||x_adv - x||_p <= eps`` and ``x_adv`` inside the input
  box ``clip`` (default (0, 1), as the attacks'), raising ``AssertionError`` otherwise, whatever attack
  produced it (ours, a callable passed in, or the ``pyautoattack`` package);
* validates its arguments with a ``ValueError`` naming the valid choices.

Report a robust accuracy with the attack that produced it, e.g. "PGD-40, step 0.01, 1 restart"
(``attack="pgd"``) or "worst case of APGD-CE, APGD-T and PGD-100 x 5 restarts" (``attack="strong"``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from tradeoffs import attacks, dryrun
from tradeoffs.progress import progress

__all__ = [
    "ATTACKS", "accuracy", "apgd", "check_threat_model", "correct", "predict", "robust_accuracy",
    "robust_accuracy_curve", "robust_correct", "strong_attack",
]

ATTACKS = ("fgsm", "pgd", "strong")
"""Attack names ``robust_accuracy`` accepts (besides a callable with the attack call shape)."""

APGD_LOSSES = ("ce", "dlr", "dlr-targeted")
PYAUTOATTACK_FIX = "pip install pyautoattack"

Clip = tuple[float, float] | None


# ---------------------------------------------------------------------------- clean accuracy


def predict(logits: Tensor) -> Tensor:
    """Labels in {-1, +1} for binary margins ([N] or [N, 1]), class indices for [N, K] logits."""
    if logits.ndim == 1 or logits.shape[1] == 1:
        return torch.where(logits.flatten() > 0, 1.0, -1.0)
    return logits.argmax(1)


@torch.no_grad()
def correct(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 4096) -> Tensor:
    """Per-example outcomes: a bool tensor [N], True where the model classifies (x, y) correctly (eval mode;
    the model's mode is restored). ``tradeoffs.stats`` turns them into intervals and paired differences."""
    _check_data(x, y)
    with attacks.eval_mode(model):
        return torch.cat([(predict(model(xb)) == yb).cpu()
                          for xb, yb in zip(x.split(batch_size), y.split(batch_size))])


def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 4096) -> float:
    """Fraction of (x, y) the model classifies correctly: the mean of :func:`correct`."""
    return correct(model, x, y, batch_size).double().mean().item()


# ------------------------------------------------------------------------- robust accuracy


def robust_accuracy(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, **kw) -> float:
    """Robust accuracy: the fraction of (x, y) still classified correctly at the attack's x_adv, the mean of
    :func:`robust_correct` (same arguments: the attack, its settings, the batch size)."""
    return robust_correct(model, x, y, eps=eps, **kw).double().mean().item()


def robust_correct(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    norm: str = "linf",
    attack: str | Callable[..., Tensor] = "pgd",
    batch_size: int | None = None,
    show_progress: bool = True,
    **attack_kw,
) -> Tensor:
    """Per-example robust outcomes: a bool tensor [N], True where (x, y) is still classified correctly at
    the attack's x_adv. Their mean, the robust accuracy, is an upper bound on the accuracy under the threat
    model {||x' - x||_p <= eps} ∩ box (Madry et al., ICLR 2018, Eq. (2.1); TRADES, Zhang et al. 2019, the
    robust error R_rob(f)).

    ``attack``:

    * ``"fgsm"``: :func:`tradeoffs.attacks.fgsm` (``attack_kw``: clip, loss_fn). Exact for linear models.
    * ``"pgd"``: :func:`tradeoffs.attacks.pgd` (``attack_kw``: steps, step_size, restarts,
      random_start, clip, loss_fn, early_stop), by default PGD-40 with step 2.5 eps / 40 and one random
      start; ``early_stop`` defaults to True here (it changes no example's outcome, only saves work).
    * ``"strong"``: :func:`strong_attack`, the per-example worst case of AutoAttack's APGD-CE and
      APGD-T (Croce & Hein, ICML 2020) and our PGD-100 with 5 restarts (``attack_kw``: see there).
    * a callable ``attack(model, x, y, *, eps, norm=..., **attack_kw) -> x_adv``.

    Binary margin models (logits [N], labels +-1) work with every attack. The data are attacked
    in batches of ``batch_size`` (default 1024, 250 for "strong" as in AutoAttack), with a progress
    bar when there are several. Every x_adv is checked to lie in the eps-ball and in ``clip``
    (``attack_kw["clip"]``, default (0, 1)); an attack that leaves them raises ``AssertionError``.
    """
    _check_eps(eps)
    attacks.check_norm(norm)
    _check_data(x, y)
    x, y = _dry_run_points(x, y)
    if isinstance(attack, str):
        if attack not in ATTACKS:
            raise ValueError(f"unknown attack {attack!r}; valid attacks are {', '.join(map(repr, ATTACKS))} "
                             "or a callable attack(model, x, y, *, eps, norm=..., **kw)")
        run = {"fgsm": attacks.fgsm, "pgd": attacks.pgd, "strong": strong_attack}[attack]
        name = attack
    elif callable(attack):
        run, name = attack, getattr(attack, "__name__", "attack")
    else:
        raise ValueError(f"attack must be one of {', '.join(map(repr, ATTACKS))} or a callable, "
                         f"got {attack!r}")
    _check_steps(attack_kw)
    if attack == "pgd":
        attack_kw.setdefault("early_stop", True)   # same correct/wrong outcome, less work on broken examples
    clip = attack_kw.get("clip", (0.0, 1.0))
    if batch_size is None:
        batch_size = 250 if attack == "strong" else 1024
    batches = list(zip(x.split(batch_size), y.split(batch_size)))
    if show_progress and len(batches) > 1:
        batches = progress(batches, desc=f"robust accuracy ({name}, eps={eps:g})", unit="batch")
    outcomes = []
    with attacks.eval_mode(model):
        for xb, yb in batches:
            x_adv = run(model, xb, yb, eps=eps, norm=norm, **attack_kw)
            check_threat_model(x_adv, xb, eps=eps, norm=norm, clip=clip, source=name)
            with torch.no_grad():
                outcomes.append((predict(model(x_adv)) == yb).cpu())
    return torch.cat(outcomes)


def robust_accuracy_curve(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    steps: Sequence[int] = (1, 2, 5, 10, 20, 40, 100),
    restarts: int = 1,
    norm: str = "linf",
    cumulative: bool = True,
    batch_size: int = 1024,
    show_progress: bool = True,
    **pgd_kw,
) -> dict[int, float]:
    """Robust accuracy under PGD-k for each k in ``steps``: the gradient-masking check of Athalye,
    Carlini & Wagner (ICML 2018, Sec. 3.1: "iterative attacks should be strictly stronger than
    single-step attacks" and accuracy should settle as the attack's budget grows; Madry et al. 2018,
    Fig. 1, show the PGD loss plateauing). A curve that keeps falling at the largest k says the
    evaluation has not converged; a flat one from k = 1 on says nothing was found at all.

    Each k is an independent :func:`tradeoffs.attacks.pgd` run with ``steps=k``, ``restarts`` random
    starts and the default step 2.5 eps / k (or ``pgd_kw["step_size"]`` for every k); other
    ``pgd_kw`` (clip, random_start, loss_fn, early_stop - default True) go to ``pgd``.

    ``cumulative=True`` (default) keeps the best attack so far: the value at k is the fraction of
    examples that are correct clean and survive every PGD-k' with k' <= k in ``steps``. It is
    therefore non-increasing in k and at most the clean accuracy by construction (a rise between
    two raw values, a sign of a poor step size or masking, shows as a flat stretch instead).
    ``cumulative=False`` returns the raw accuracy of each PGD-k, which is not monotone in general.
    Returns ``{k: accuracy}`` in increasing k.
    """
    _check_eps(eps)
    attacks.check_norm(norm)
    _check_data(x, y)
    x, y = _dry_run_points(x, y)
    ks = sorted({int(k) for k in steps})
    if not ks or ks[0] < 1 or any(int(k) != k for k in steps):
        raise ValueError(f"steps must be a non-empty sequence of integers >= 1, got {tuple(steps)}")
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")
    if "steps" in pgd_kw or "restarts" in pgd_kw:
        raise ValueError("pass steps and restarts as the curve's own arguments")
    pgd_kw.setdefault("early_stop", True)
    clip = pgd_kw.get("clip", (0.0, 1.0))
    survivors = dict.fromkeys(ks, 0)
    batches = list(zip(x.split(batch_size), y.split(batch_size)))
    bar = progress(total=len(batches) * len(ks), desc=f"PGD steps curve (eps={eps:g})",
                   disable=not show_progress)
    with attacks.eval_mode(model), bar:
        for xb, yb in batches:
            with torch.no_grad():
                alive = predict(model(xb)) == yb
            for k in ks:
                x_adv = attacks.pgd(model, xb, yb, eps=eps, norm=norm, steps=k, restarts=restarts, **pgd_kw)
                check_threat_model(x_adv, xb, eps=eps, norm=norm, clip=clip, source=f"PGD-{k}")
                with torch.no_grad():
                    correct = predict(model(x_adv)) == yb
                if cumulative:
                    alive &= correct
                    survivors[k] += int(alive.sum())
                else:
                    survivors[k] += int(correct.sum())
                bar.update(1)
    return {k: survivors[k] / len(x) for k in ks}


# -------------------------------------------------------------------------- strong attack


def strong_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    norm: str = "linf",
    clip: Clip = (0.0, 1.0),
    steps: int = 100,
    restarts: int = 5,
    step_size: float | None = None,
    apgd_steps: int = 100,
    apgd_targets: int = 9,
    seed: int = 0,
) -> Tensor:
    """Per-example worst case of several attacks, for a robust accuracy that a single PGD run does not
    overestimate (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
    diverse parameter-free attacks", ICML 2020).

    In order, each run only on the examples that are still correctly classified:

    1. APGD-CE: AutoAttack's APGD on the cross-entropy, ``apgd_steps`` iterations, 1 restart;
    2. APGD-T: APGD on the targeted DLR loss, 1 restart per target, the ``apgd_targets`` most likely
       other classes (AutoAttack "standard": 100 iterations, 9 targets). Needs K >= 4 classes (the
       targeted DLR loss uses the 4th-largest logit); with K = 3 the untargeted APGD-DLR runs instead,
       with K = 2 (and binary margin models) neither, as in AutoAttack, whose DLR losses are undefined;
    3. our :func:`tradeoffs.attacks.pgd` with ``restarts`` random starts of ``steps`` steps (default
       step 2.5 eps / steps) on the numerically stable loss of ``tradeoffs.attacks.default_loss``, which
       keeps a gradient where float32 cross-entropy saturates.

    An example counts as robust only if it survives all of them; the returned x_adv is the first
    adversarial example found for it (x itself if it is misclassified clean, the last attack's point
    otherwise). This is AutoAttack's "standard" version without its last two attacks, FAB-T
    (minimum-norm, targeted) and Square (gradient-free, 5000 queries: the check against gradient
    masking), which are left out for time on a CPU, plus PGD with restarts. So it is an upper bound
    on full AutoAttack's robust accuracy, not equal to it.

    APGD comes from the PyPI package ``pyautoattack`` (the authors' code); without it a warning
    names the fix (``pip install pyautoattack``) and only step 3 runs. Each APGD output is checked
    against the eps-ball and the box. ``clip=(lo, hi)`` other than (0, 1) is handled by rescaling
    the inputs to [0, 1] for APGD; ``clip=None`` (unbounded inputs) is rejected: APGD clamps to a box.
    Binary margin models f are attacked through the two-class logits [0, f] with labels (y + 1) / 2.
    APGD's seeding (``seed``) does not disturb the caller's random state.
    """
    _check_eps(eps)
    attacks.check_norm(norm)
    if clip is None:
        raise ValueError("attack='strong' needs bounded inputs (clip=(lo, hi)): AutoAttack's APGD works in a "
                         "box; for unbounded inputs use attack='pgd'")
    x_adv = x.detach().clone()
    if eps == 0 or len(x) == 0:
        return x_adv
    with attacks.eval_mode(model), torch.no_grad():
        logits = model(x)
        alive = predict(logits) == y
        n_classes = 2 if attacks._is_binary(logits) else logits.shape[1]

    stages: list[tuple[str, Callable[[Tensor, Tensor], Tensor]]] = []
    try:
        _import_apgd()
    except ImportError:
        warnings.warn("attack='strong' without AutoAttack: the package pyautoattack is not installed, so "
                      f"only PGD with {restarts} restarts runs and the robust accuracy may be overestimated; "
                      f"fix: {PYAUTOATTACK_FIX}", RuntimeWarning, stacklevel=2)
    else:
        apgd_kw = dict(eps=eps, norm=norm, clip=clip, steps=apgd_steps, seed=seed)
        stages.append(("APGD-CE", lambda xs, ys: apgd(model, xs, ys, loss="ce", **apgd_kw)))
        if n_classes >= 4 and apgd_targets >= 1:
            stages.append(("APGD-T", lambda xs, ys: apgd(model, xs, ys, loss="dlr-targeted",
                                                         targets=apgd_targets, **apgd_kw)))
        elif n_classes == 3:
            stages.append(("APGD-DLR", lambda xs, ys: apgd(model, xs, ys, loss="dlr", **apgd_kw)))
    stages.append((f"PGD-{steps} x {restarts}", lambda xs, ys: attacks.pgd(
        model, xs, ys, eps=eps, norm=norm, steps=steps, restarts=restarts, step_size=step_size, clip=clip,
        early_stop=True)))

    with attacks.eval_mode(model):
        for name, run in stages:
            idx = alive.nonzero().flatten()
            if len(idx) == 0:
                break
            xs, ys = x[idx], y[idx]
            found = run(xs, ys)
            check_threat_model(found, xs, eps=eps, norm=norm, clip=clip, source=name)
            with torch.no_grad():
                fooled = predict(model(found)) != ys
            # fooled examples keep the point that fooled them (no later stage runs on them);
            # survivors get the latest stage's point, which is in the ball too
            x_adv[idx] = found.to(x_adv.dtype)
            alive[idx[fooled]] = False
    return x_adv


def apgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    norm: str = "linf",
    loss: str = "ce",
    steps: int = 100,
    restarts: int = 1,
    targets: int = 9,
    seed: int = 0,
    clip: Clip = (0.0, 1.0),
) -> Tensor:
    """AutoAttack's APGD (Croce & Hein, ICML 2020, Algorithm 1), called from the ``pyautoattack`` package.

    ``loss``: "ce" (APGD-CE), "dlr" (APGD-DLR, Eq. (6), needs K >= 3 classes) or "dlr-targeted" (APGD-T:
    the targeted DLR loss against each of the ``targets`` most likely other classes, needs K >= 4;
    ``targets`` is capped at K - 1). Step size, momentum and checkpoints are APGD's own
    (parameter-free); ``steps`` iterations and ``restarts`` restarts (per target for APGD-T).
    Examples APGD does not fool come back unchanged (x itself). The output is checked to lie in the
    eps-ball and in ``clip``; ``clip=(lo, hi)`` is mapped to APGD's [0, 1] by rescaling the inputs.
    Binary margin models are attacked through the logits [0, f] with labels (y + 1) / 2.
    The package seeds the global RNG with ``seed``; the caller's random state is restored afterwards.
    Raises ImportError naming the fix when ``pyautoattack`` is missing.
    """
    _check_eps(eps)
    attacks.check_norm(norm)
    if loss not in APGD_LOSSES:
        raise ValueError(f"unknown APGD loss {loss!r}; valid losses are {', '.join(map(repr, APGD_LOSSES))}")
    if steps < 1 or restarts < 1 or targets < 1:
        raise ValueError(f"steps, restarts and targets must be >= 1, got {steps}, {restarts}, {targets}")
    steps, restarts = dryrun.cap(steps, dryrun.ATTACK_STEPS), dryrun.cap(restarts, dryrun.RESTARTS)
    targets = dryrun.cap(targets, dryrun.TARGETS)
    if clip is None:
        raise ValueError("APGD needs bounded inputs (clip=(lo, hi)); "
                         "use tradeoffs.attacks.pgd for unbounded ones")
    lo, hi = float(clip[0]), float(clip[1])
    if not hi > lo:
        raise ValueError(f"clip must be (lo, hi) with lo < hi, got {clip}")
    if bool(((x < lo) | (x > hi)).any()):
        raise ValueError(f"x lies outside the clip range {clip}")
    if eps == 0 or len(x) == 0:
        return x.detach().clone()
    APGDAttack, APGDAttack_targeted = _import_apgd()
    scale = hi - lo
    with attacks.eval_mode(model):
        with torch.no_grad():
            probe = model(x[:1])
        binary = attacks._is_binary(probe)
        n_classes = 2 if binary else probe.shape[1]
        need = {"ce": 2, "dlr": 3, "dlr-targeted": 4}[loss]
        if n_classes < need:
            raise ValueError(f"APGD loss {loss!r} needs at least {need} classes, the model has {n_classes}")
        net = _UnitBox(model, lo, scale, x.dtype, binary)
        z = ((x.detach() - lo) / scale).float()
        labels = ((y > 0) if binary else y).long()
        options = dict(n_iter=steps, norm={"linf": "Linf", "l2": "L2"}[norm], n_restarts=restarts,
                       eps=float(eps) / scale, seed=seed, device=x.device)
        if loss == "dlr-targeted":
            attacker = APGDAttack_targeted(net, n_target_classes=min(targets, n_classes - 1), **options)
        else:
            attacker = APGDAttack(net, loss=loss, **options)
        cuda = [x.device.index or 0] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*zero gradient.*")
            z_adv = attacker.perturb(z, labels)
    x_adv = z_adv.detach().to(x.dtype)
    if (lo, scale) != (0.0, 1.0):
        x_adv = lo + scale * x_adv
    check_threat_model(x_adv, x, eps=eps, norm=norm, clip=clip, source=f"pyautoattack APGD ({loss})")
    return x_adv


class _UnitBox(nn.Module):
    """The model seen by APGD: inputs z in [0, 1]^d mapped to lo + scale * z in the model's dtype, outputs
    float32 logits; a binary margin f becomes the two-class logits [0, f]."""

    def __init__(self, model: nn.Module, lo: float, scale: float, dtype: torch.dtype, binary: bool):
        super().__init__()
        self.model, self.lo, self.scale, self.dtype, self.binary = model, lo, scale, dtype, binary

    def forward(self, z: Tensor) -> Tensor:
        x = z.to(self.dtype)
        if (self.lo, self.scale) != (0.0, 1.0):
            x = self.lo + self.scale * x
        logits = self.model(x)
        if self.binary:
            f = logits.reshape(-1)
            logits = torch.stack([torch.zeros_like(f), f], dim=1)
        return logits.float()


def _import_apgd():
    try:
        from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted
    except ImportError as err:
        raise ImportError(f"AutoAttack's APGD needs the package pyautoattack: {PYAUTOATTACK_FIX}") from err
    return APGDAttack, APGDAttack_targeted


# ------------------------------------------------------------------------------ the checks


def check_threat_model(x_adv: Tensor, x: Tensor, *, eps: float, norm: str, clip: Clip,
                       source: str = "attack", rtol: float = 1e-5, atol: float = 1e-5) -> None:
    """Raise ``AssertionError`` unless every x_adv lies in the eps-ball around x (up to float rounding:
    ``||x_adv - x||_p <= eps (1 + rtol) + atol``) and inside the box ``clip`` (exactly)."""
    if x_adv.shape != x.shape:
        raise AssertionError(f"{source} returned shape {tuple(x_adv.shape)} for inputs {tuple(x.shape)}")
    if len(x) == 0:
        return
    if not bool(torch.isfinite(x_adv).all()):
        raise AssertionError(f"{source} returned non-finite adversarial examples")
    delta = (x_adv.detach() - x.detach()).reshape(len(x), -1).double()
    dist = delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)
    bound = eps * (1 + rtol) + atol
    if bool((dist > bound).any()):
        worst = int(dist.argmax())
        raise AssertionError(f"{source} left the {norm} ball of radius {eps:g}: example {worst} is at "
                             f"distance {float(dist[worst]):.6g} ({int((dist > bound).sum())} of {len(x)} "
                             "examples outside)")
    if clip is not None:
        lo, hi = clip
        outside = (x_adv < lo) | (x_adv > hi)
        if bool(outside.any()):
            raise AssertionError(f"{source} left the input box {tuple(clip)}: values in "
                                 f"[{float(x_adv.min()):.6g}, {float(x_adv.max()):.6g}]")


def _dry_run_points(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """All of (x, y), or its first ``dryrun.POINTS`` examples in a dry run (:mod:`tradeoffs.dryrun`)."""
    n = dryrun.cap(len(x), dryrun.POINTS)
    return x[:n], y[:n]


def _check_eps(eps: float) -> None:
    """Evaluation also refuses a non-number eps (a tensor, a bool) before any attack runs."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    attacks.check_eps(eps)


def _check_steps(kw: dict) -> None:
    for key in ("steps", "restarts", "apgd_steps"):
        if key in kw and not kw[key] >= 1:
            raise ValueError(f"{key} must be >= 1, got {kw[key]!r}")


def _check_data(x: Tensor, y: Tensor) -> None:
    if len(x) == 0:
        raise ValueError("x is empty: accuracy of no examples is undefined")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
