"""Adversarial attacks: FGSM, PGD and the TRADES inner maximization.

Every attack has the same call shape, so they are interchangeable::

    x_adv = attack(model, x, y, *, eps, norm="linf", clip=(0.0, 1.0), ...)

``fgsm`` and ``pgd`` are untargeted by default (they maximize the loss of the true label ``y``)
and targeted with ``target=t``, a tensor of class indices (or of ±1 for a binary margin model):
then they maximize the targeted objective, by default -CE(f(x'), t) (:func:`targeted_loss`), and
success means that the model predicts t.

They share these guarantees:

* ``x_adv`` lies in the eps-ball around ``x`` (``||x_adv - x||_p <= eps``, up to float
  rounding) and inside the valid input box ``clip = (lo, hi)``; ``clip=None`` means the
  inputs are unbounded (e.g. synthetic Gaussian data in R^d).
* ``x_adv`` is detached and has the shape, dtype and device of ``x``.
* The attack runs the model in ``eval()`` mode, as the official TRADES code, torchattacks
  and the ``robustness`` library do (no BatchNorm statistic updates, no dropout noise),
  and afterwards restores the training flag of every submodule exactly as it was.
* Gradients are taken with ``torch.autograd.grad`` with respect to the input only, so the
  parameters' ``.grad`` are never touched.
* The model's parameters (values, layout, ``requires_grad`` flags) are never modified, not
  even for the duration of the call: a CPU CNN with standard-format conv weights is run with
  channels-last copies of them (:func:`_fast_forward`; faster, same numbers up to rounding).
* Bad input is refused before any work, with a ValueError or TypeError that says what was
  given and what is expected: labels or targets whose length differs from the batch's, NaN or
  inf in ``x``, a non-numeric, negative or infinite ``eps``, a non-finite or non-positive step
  size, ``x`` not a floating-point tensor of the model's dtype, non-integer class labels.

Norms: ``"linf"`` and ``"l2"``; l2 norms are per example, over all non-batch dimensions.

Notation follows the papers: ``x`` the clean input, ``x_adv`` = x', ``delta`` = x' - x,
``eps`` the radius of the threat model S = {delta : ||delta||_p <= eps}, ``alpha`` the step
size, ``L`` the per-example loss.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import weakref
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from tradeoffs import dryrun

__all__ = ["NORMS", "check_eps", "check_norm", "default_loss", "eval_mode", "fgsm", "pgd", "targeted_loss",
           "trades_attack"]

NORMS = ("linf", "l2")

LossFn = Callable[[Tensor, Tensor], Tensor]
"""``loss_fn(logits, y) -> per-example loss of shape [N]``; the attacks maximize it."""

Clip = tuple[float, float] | None


# --------------------------------------------------------------------------- attacks


def fgsm(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    norm: str = "linf",
    clip: Clip = (0.0, 1.0),
    loss_fn: LossFn | None = None,
    target: Tensor | None = None,
) -> Tensor:
    """Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy, ICLR 2015).

    One step of length eps along the steepest-ascent direction of the loss:

        linf:  x' = x + eps * sign(grad_x L(f(x), y))          (FGSM, the paper's Eq.)
        l2:    x' = x + eps * g / ||g||_2,  g = grad_x L       (the l2 "fast gradient method")

    then clamped to ``clip``. For a linear model this is the exact worst case in the ball.
    With ``target`` the step ascends the targeted objective instead (default -CE towards t,
    i.e. x' = x - eps * sign(grad_x CE(f(x), t)) in linf), as :func:`pgd` does.
    """
    _check_inputs(model, x, y, eps, norm, clip, target)
    if eps == 0:
        return x.detach().clone()
    labels, loss_fn = _objective(y, target, loss_fn)
    with eval_mode(model):
        grad = _input_grad(_fast_forward(model, x), x, labels, loss_fn)
        x_adv = _project(x + eps * _ascent_direction(grad, norm), x, eps, norm, clip)
    return x_adv.detach()


def pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    norm: str = "linf",
    steps: int = 40,
    step_size: float | None = None,
    restarts: int = 1,
    random_start: bool = True,
    clip: Clip = (0.0, 1.0),
    loss_fn: LossFn | None = None,
    early_stop: bool = False,
    target: Tensor | None = None,
) -> Tensor:
    """Projected Gradient Descent (Madry et al., ICLR 2018), the inner maximization of Eq. (2.1).

    Approximately solves  max_{delta in S} L(f(x + delta), y)  by projected steepest ascent:

        x^{t+1} = Proj_{B(x, eps) ∩ box}( x^t + alpha * sign(grad_x L(f(x^t), y)) )   (linf)
        x^{t+1} = Proj_{B(x, eps) ∩ box}( x^t + alpha * g / ||g||_2 )                  (l2)

    starting from a uniformly random point of the ball (linf) or a random direction with
    radius uniform in [0, eps] (l2) when ``random_start``, else from x.
    ``step_size`` defaults to alpha = 2.5 * eps / steps (Madry et al.), so that the iterates
    can cross the whole ball.

    Untargeted (``target=None``), success means the model misclassifies x' (argmax != y).
    Targeted (``target=t``, one class index per example), the objective maximized is
    ``loss_fn(logits, t)``, by default -CE(f(x'), t) (:func:`targeted_loss`), and success means
    the model predicts t (argmax == t); ``y`` is then only checked, not used.

    Of each run, the iterate returned is the strongest one visited (the random start
    included), not merely the last: one that succeeds beats one that does not, and between
    two that agree on that, the higher objective wins (ties keep the earlier one). The
    objective is evaluated at every iterate anyway (for its gradient), so this costs one extra
    forward pass at the end. ``restarts > 1`` runs PGD from that many random starts and keeps,
    per example, the strongest result by the same rule.

    Hence, in both modes, a run with more ``steps`` at the same explicit ``step_size`` and
    seed, or with more ``restarts``, never loses a success found by the shorter run: robust
    accuracy can only fall (targeted: the share on target only rise) as the attack grows.
    This holds at a fixed step size only. The default step 2.5 * eps / steps shrinks as
    ``steps`` grows, so PGD-100 at its default step is a different attack from PGD-40 at
    its own, and it can be the weaker of the two on some examples.

    ``early_stop=True`` stops iterating on an example as soon as an iterate succeeds on it
    (later restarts skip it too). Every restart still draws its random start for the whole
    batch, so the random stream is the one of the run without early stopping: the
    success/failure outcome of every example, and so the robust accuracy, is the same as
    without it (examples do not interact in eval mode); only the work on examples already
    won is saved. Use it to measure robust accuracy, not to generate maximal-loss examples
    for training.
    """
    _check_inputs(model, x, y, eps, norm, clip, target)
    _check_count("steps", steps)
    _check_count("restarts", restarts)
    if restarts > 1 and not random_start:
        raise ValueError("restarts > 1 needs random_start=True: without it every restart is the same run")
    steps, restarts = dryrun.cap(steps, dryrun.ATTACK_STEPS), dryrun.cap(restarts, dryrun.RESTARTS)
    alpha = _step_size(eps, steps, step_size)
    if eps == 0:
        return x.detach().clone()
    labels, loss_fn = _objective(y, target, loss_fn)
    targeted = target is not None
    n = x.shape[0]
    x_best = x.detach().clone()
    loss_best = torch.full((n,), float("-inf"), dtype=torch.float64, device=x.device)
    success_best = torch.zeros(n, dtype=torch.bool, device=x.device)
    with eval_mode(model):
        net = _fast_forward(model, x)
        for _ in range(restarts):
            x_start = _random_start(x, eps, norm, clip) if random_start else x.detach().clone()
            todo = (~success_best).nonzero().flatten() if early_stop else torch.arange(n, device=x.device)
            if todo.numel() == 0:
                continue
            x_new, loss_new, success_new = _pgd_best_iterate(
                net, x[todo], labels[todo], x_start[todo], eps, norm, steps, alpha, clip, loss_fn,
                early_stop, targeted)
            better = _stronger(success_new, loss_new, success_best[todo], loss_best[todo])
            chosen = todo[better]
            x_best[chosen], loss_best[chosen], success_best[chosen] = (
                x_new[better], loss_new[better], success_new[better])
    return x_best.detach()


def trades_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor | None = None,
    *,
    eps: float,
    norm: str = "linf",
    steps: int = 10,
    step_size: float | None = None,
    clip: Clip = (0.0, 1.0),
) -> Tensor:
    """Inner maximization of TRADES (Zhang et al., ICML 2019, Algorithm 1).

    Finds the x' in the ball that moves the prediction furthest from the clean one,

        max_{x' in B(x, eps)}  KL( p(x) || p(x') ),     p = softmax(f(.)),

    by the same projected ascent steps as :func:`pgd`, starting from x' = x + 0.001 * N(0, I)
    (the KL and its gradient vanish at x' = x, so the start must be off x). The clean
    distribution p(x) is computed once and held fixed, as in the official ``trades.py``.
    The attack needs no label: ``y`` is accepted (and ignored) for the common call shape.
    The KL is computed in float64: its gradient in the logits, q - p, subtracts two nearly
    one-hot vectors, which float32 cancels to rounding noise on confidently classified examples
    (and forming q - p in float32 saves no measurable time: the [N, K] logits cost nothing next
    to the network's passes).
    Binary margin models (logits [N] or [N, 1]) are handled as p(x) = (1 - s, s), s = sigmoid(f(x)).

    Like Algorithm 1 itself this is a local ascent from a near-x start: on confidently
    classified points the start may send it up the low-KL side, away from the boundary.
    """
    _check_inputs(model, x, y, eps, norm, clip, labels_required=False)
    _check_count("steps", steps)
    steps = dryrun.cap(steps, dryrun.ATTACK_STEPS)
    alpha = _step_size(eps, steps, step_size)
    if eps == 0:
        return x.detach().clone()
    with eval_mode(model):
        net = _fast_forward(model, x)
        with torch.no_grad():
            log_p_clean = F.log_softmax(_class_logits(net(x)).double(), dim=1)

        def kl_from_clean(logits: Tensor, _y: Tensor | None) -> Tensor:
            log_p_adv = F.log_softmax(_class_logits(logits).double(), dim=1)
            return F.kl_div(log_p_adv, log_p_clean, reduction="none", log_target=True).sum(dim=1)

        x_start = _project(x + 0.001 * torch.randn_like(x), x, eps, norm, clip)
        x_adv = _pgd_iterations(net, x, y, x_start, eps, norm, steps, alpha, clip, kl_from_clean)
    return x_adv.detach()


# ------------------------------------------------------------------------------ loss


def default_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Per-example loss used when ``loss_fn`` is None.

    * logits [N, K], K > 1: cross-entropy, y = class indices in {0, ..., K-1}, written as
      CE = log(1 + sum_{k != y} exp(z_k - z_y)) = softplus(m),  m = logsumexp_{k != y}(z_k - z_y).
      Same value as ``F.cross_entropy``, but its gradient, sigmoid(m) * (softmax_{k != y} - e_y),
      is free of cancellation: the usual form softmax(z) - e_y rounds softmax_y = 1 - 1e-9
      to 1 in float32, and the attack direction of confidently classified examples is lost.
    * logits [N] or [N, 1] (binary margin model f): logistic loss softplus(-y * f), y in {-1, +1}
      (the K = 2 case of the formula above).
    """
    if _is_binary(logits):
        f = logits.reshape(-1)
        return F.softplus(-_pm1_labels(y, f) * f)
    y = _class_labels(y, logits)
    z_y = logits.gather(1, y[:, None])
    z_others = logits.scatter(1, y[:, None], float("-inf"))
    return F.softplus(torch.logsumexp(z_others - z_y, dim=1))


def targeted_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Per-example objective of the targeted attacks when ``loss_fn`` is None: -CE(f(x'), t), the
    :func:`default_loss` towards the target, negated so that maximizing it moves x' towards t
    (the x_NR = argmin_{||x' - x|| <= eps} L(x', t) of Ilyas et al. 2019, Fig. 6)."""
    return -default_loss(logits, target)


def _objective(y: Tensor, target: Tensor | None, loss_fn: LossFn | None) -> tuple[Tensor, LossFn]:
    """The labels the attack's objective is evaluated on and the objective it maximizes:
    (y, loss_fn or the default loss) untargeted, (target, loss_fn or -CE towards it) targeted."""
    if target is None:
        return y, loss_fn or default_loss
    return target, loss_fn or targeted_loss


def _is_binary(logits: Tensor) -> bool:
    return logits.dim() == 1 or (logits.dim() == 2 and logits.shape[1] == 1)


def _pm1_labels(y: Tensor, f: Tensor) -> Tensor:
    """Binary labels as a float tensor of ±1, with a clear error for {0, 1} or other labels."""
    y = y.reshape(-1)
    if not bool(((y == 1) | (y == -1)).all()):
        found = torch.unique(y).tolist()[:5]
        raise ValueError(
            "a binary margin model (logits of shape [N] or [N, 1]) needs labels in {-1, +1}, "
            f"got values {found}; for 0/1 labels pass y = 2 * y - 1"
        )
    return y.to(f.dtype)


def _class_logits(logits: Tensor) -> Tensor:
    """[N, K] logits unchanged; a binary margin f becomes the two-class logits [0, f]."""
    if _is_binary(logits):
        f = logits.reshape(-1)
        return torch.stack([torch.zeros_like(f), f], dim=1)
    return logits


def _per_example_loss(loss_fn: LossFn, logits: Tensor, y: Tensor | None) -> Tensor:
    loss = loss_fn(logits, y)
    if loss.shape != (logits.shape[0],):
        raise ValueError(
            f"loss_fn must return one loss per example, shape [{logits.shape[0]}], got "
            f"{tuple(loss.shape)} (use reduction='none')"
        )
    return loss


def _is_wrong(logits: Tensor, y: Tensor) -> Tensor:
    """Per-example misclassification flag (sign of a binary margin, else the arg-max logit)."""
    if _is_binary(logits):
        f = logits.reshape(-1)
        return _pm1_labels(y, f) * f <= 0
    return logits.argmax(dim=1) != _class_labels(y, logits)


def _class_labels(y: Tensor, logits: Tensor) -> Tensor:
    """Class indices for [N, K] logits as int64, with a clear error for float or out-of-range labels."""
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise TypeError(
            f"labels for class logits [N, {logits.shape[1]}] must be integer class indices, "
            f"got dtype {y.dtype}; "
            "pass y.long() (a binary margin model, logits [N], takes labels in {-1, +1} of any dtype)"
        )
    if y.numel() and bool((y.min() < 0) | (y.max() >= logits.shape[1])):
        raise ValueError(
            f"labels must be class indices in 0..{logits.shape[1] - 1} for logits [N, {logits.shape[1]}], "
            f"got values from {int(y.min())} to {int(y.max())}"
        )
    return y if y.dtype == torch.int64 else y.long()


# ------------------------------------------------------------------ shared machinery


def _pgd_iterations(
    model: nn.Module,
    x: Tensor,
    y: Tensor | None,
    x_adv: Tensor,
    eps: float,
    norm: str,
    steps: int,
    alpha: float,
    clip: Clip,
    loss_fn: LossFn,
) -> Tensor:
    """``steps`` projected steepest-ascent steps of ``loss_fn`` from ``x_adv``."""
    for _ in range(steps):
        grad = _input_grad(model, x_adv, y, loss_fn)
        x_adv = _project(x_adv + alpha * _ascent_direction(grad, norm), x, eps, norm, clip)
    return x_adv


def _pgd_best_iterate(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    x_adv: Tensor,
    eps: float,
    norm: str,
    steps: int,
    alpha: float,
    clip: Clip,
    loss_fn: LossFn,
    early_stop: bool,
    targeted: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """``steps`` PGD steps of ``loss_fn(logits, y)`` from ``x_adv``, returning the strongest iterate
    visited per example (success beats failure, then higher objective) with its objective and
    success flag. Success is argmax != y, or argmax == y when ``targeted`` (then y holds the
    targets). With ``early_stop`` an example leaves the batch once an iterate succeeds on it."""
    n = x.shape[0]
    x_best = x_adv.detach().clone()
    loss_best = torch.full((n,), float("-inf"), dtype=torch.float64, device=x.device)
    success_best = torch.zeros(n, dtype=torch.bool, device=x.device)
    active = torch.arange(n, device=x.device)  # examples still iterating
    x_cur = x_adv
    for t in range(steps + 1):
        last = t == steps
        loss, wrong, grad = _loss_error_grad(model, x_cur, y[active], loss_fn, need_grad=not last)
        success = ~wrong if targeted else wrong
        better = _stronger(success, loss, success_best[active], loss_best[active])
        chosen = active[better]
        x_best[chosen], loss_best[chosen], success_best[chosen] = x_cur[better], loss[better], success[better]
        if last:
            break
        if early_stop:
            keep = ~success_best[active]
            if not bool(keep.all()):
                active, x_cur, grad = active[keep], x_cur[keep], grad[keep]
            if active.numel() == 0:
                break
        x_cur = _project(x_cur + alpha * _ascent_direction(grad, norm), x[active], eps, norm, clip)
    return x_best, loss_best, success_best


def _stronger(success: Tensor, loss: Tensor, success_best: Tensor, loss_best: Tensor) -> Tensor:
    """Where a candidate beats the best so far: it succeeds where the best does not, or it agrees
    with the best on success and has the higher objective (a tie keeps the earlier one)."""
    return (success & ~success_best) | ((success == success_best) & (loss > loss_best))


def _loss_error_grad(
    model: nn.Module, x_adv: Tensor, y: Tensor, loss_fn: LossFn, need_grad: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Per-example loss and misclassification flag at x_adv, and (if ``need_grad``) the input
    gradient of the summed loss, all from one forward pass."""
    x_adv = x_adv.detach().requires_grad_(need_grad)
    with torch.set_grad_enabled(need_grad):
        logits = model(x_adv)
        loss = _per_example_loss(loss_fn, logits, y)
        grad = torch.autograd.grad(loss.sum(), x_adv)[0] if need_grad else None
    return loss.detach().double(), _is_wrong(logits.detach(), y), grad


def _input_grad(model: nn.Module, x_adv: Tensor, y: Tensor | None, loss_fn: LossFn) -> Tensor:
    """grad_x of the summed per-example loss: row i is the gradient of example i's own loss
    (in eval mode examples do not interact). Parameters' .grad are left untouched."""
    x_adv = x_adv.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = _per_example_loss(loss_fn, model(x_adv), y)
        (grad,) = torch.autograd.grad(loss.sum(), x_adv)
    return grad


def _ascent_direction(grad: Tensor, norm: str) -> Tensor:
    """Steepest-ascent direction of unit norm: sign(g) for linf, g / ||g||_2 for l2."""
    if norm == "linf":
        return grad.sign()
    return grad / _per_example(_l2_norm(grad).clamp_min(torch.finfo(grad.dtype).tiny), grad)


def _project(x_adv: Tensor, x: Tensor, eps: float, norm: str, clip: Clip) -> Tensor:
    """Project x_adv onto the eps-ball around x, then clamp it into the box ``clip``.

    The clamp cannot push x_adv out of the ball: x lies in the box (checked on entry), so
    clamping a coordinate moves it toward x_i or leaves it, |clamp(z)_i - x_i| <= |z_i - x_i|,
    and every lp norm of the perturbation can only shrink. (For linf the two steps give the
    exact projection onto the intersection; for l2 this is the standard approximation.)
    """
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        scale = (eps / _l2_norm(delta).clamp_min(torch.finfo(delta.dtype).tiny)).clamp(max=1.0)
        delta = delta * _per_example(scale, delta)
    x_adv = x + delta
    if clip is not None:
        x_adv = x_adv.clamp(clip[0], clip[1])
    return x_adv.detach()


def _random_start(x: Tensor, eps: float, norm: str, clip: Clip) -> Tensor:
    """A random point of the ball around x, clamped to the box.

    linf: delta uniform in [-eps, eps]^d. l2: delta = r * u with u a uniform random
    direction (normalized Gaussian) and radius r uniform in [0, eps] (so, unlike a uniform
    point of the ball, small radii are as likely as large ones).
    """
    if norm == "linf":
        delta = (2 * torch.rand_like(x) - 1) * eps
    else:
        u = torch.randn_like(x)
        u = u / _per_example(_l2_norm(u).clamp_min(torch.finfo(u.dtype).tiny), u)
        r = eps * torch.rand(x.shape[0], device=x.device, dtype=x.dtype)
        delta = _per_example(r, x) * u
    return _project(x + delta, x, eps, norm, clip)


def _l2_norm(v: Tensor) -> Tensor:
    """Per-example l2 norm over all non-batch dimensions, shape [N]."""
    return v.reshape(v.shape[0], -1).norm(dim=1)


def _per_example(t: Tensor, like: Tensor) -> Tensor:
    """Reshape a per-example tensor [N] to broadcast against ``like`` [N, ...]."""
    return t.reshape(-1, *([1] * (like.dim() - 1)))


def _step_size(eps: float, steps: int, step_size: float | None) -> float:
    """alpha = 2.5 * eps / steps unless given (Madry et al. 2018)."""
    if step_size is None:
        return 2.5 * eps / steps
    if not _is_number(step_size) or not math.isfinite(float(step_size)) or not step_size > 0:
        raise ValueError(
            f"step_size must be a finite number > 0 (or None for 2.5 * eps / steps), got {step_size!r}")
    return float(step_size)


def check_eps(eps: float) -> None:
    """A clear ValueError unless eps is a finite number >= 0 (shared by attacks, objectives, evaluation)."""
    if not _is_number(eps):
        raise TypeError(
            f"eps must be a number (the radius of the ball), got {eps!r} of type {type(eps).__name__}")
    if not eps >= 0 or eps == float("inf"):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")


def check_norm(norm: str) -> None:
    """A clear ValueError naming the valid norms unless ``norm`` is one of ``NORMS``."""
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; valid norms are {', '.join(map(repr, NORMS))}")


def _is_number(value) -> bool:
    """A real number: a Python or NumPy int or float, or a 0-d real tensor (not a bool, not a string)."""
    if isinstance(value, Tensor):
        return value.dim() == 0 and not (value.dtype.is_complex or value.dtype == torch.bool)
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_count(name: str, value: int) -> None:
    """A clear error unless ``value`` is an integer >= 1 (steps, restarts)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer >= 1, got {value!r} of type {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_inputs(
    model: nn.Module,
    x: Tensor,
    y: Tensor | None,
    eps: float,
    norm: str,
    clip: Clip,
    target: Tensor | None = None,
    *,
    labels_required: bool = True,
) -> None:
    """The checks every public attack runs before any work: threat model, input, labels, target."""
    check_norm(norm)
    check_eps(eps)
    _check_x(model, x)
    if clip is not None:
        lo, hi = clip
        if not lo <= hi:
            raise ValueError(f"clip must be (lo, hi) with lo <= hi, got {clip}")
        if bool(((x < lo) | (x > hi)).any()):
            raise ValueError(
                f"x lies outside the clip range {clip}, so x' cannot be in both the eps-ball and "
                "the box; pass the range the data actually live in, or clip=None for unbounded inputs"
            )
    if y is not None or labels_required:
        _check_per_example("y", y, x)
    if target is not None:
        _check_per_example("target", target, x)


def _check_x(model: nn.Module, x: Tensor) -> None:
    """x: a floating-point tensor [N, ...] of the model's dtype, without NaN or inf."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape [N, ...], got {type(x).__name__}")
    if x.dim() < 1:
        raise ValueError("x must have a batch dimension: shape [N, ...]")
    if not x.dtype.is_floating_point:
        raise TypeError(
            f"x must be a floating-point tensor, got dtype {x.dtype}; images stored as integers go in "
            "as x.float() / 255 (values in [0, 1])"
        )
    model_dtype = next((p.dtype for p in model.parameters() if p.dtype.is_floating_point), None)
    if model_dtype is not None and model_dtype != x.dtype:
        raise TypeError(
            f"x is {x.dtype} but the model's parameters are {model_dtype}; convert one to the other "
            f"(x.to({model_dtype}) or model.to({x.dtype}))"
        )
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise ValueError(f"x has {bad} non-finite values (NaN or inf); every input must be a finite number")


def _check_per_example(name: str, labels: Tensor | None, x: Tensor) -> None:
    """Labels or targets: a tensor with one entry per example of x, on x's device."""
    if not isinstance(labels, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor with one label per example, got {type(labels).__name__}")
    if labels.dim() < 1 or labels.shape[0] != x.shape[0] or labels.numel() != x.shape[0]:
        raise ValueError(
            f"{name} has shape {tuple(labels.shape)} but x has {x.shape[0]} examples; pass one {name} per "
            f"example, shape [{x.shape[0]}]"
        )
    if labels.device != x.device:
        raise ValueError(f"{name} is on {labels.device} but x is on {x.device}; move both to one device")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run the body in eval mode, then restore every submodule's own training flag."""
    was_training = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, flag in was_training.items():
            m.training = flag


# ------------------------------------------------------------------- memory format

_CHANNELS_LAST_WORKS: weakref.WeakKeyDictionary[nn.Module, bool] = weakref.WeakKeyDictionary()


def _fast_forward(model: nn.Module, x: Tensor, *, differentiable: bool = False) -> Callable[[Tensor], Tensor]:
    """``model``'s forward pass for the duration of one call, its standard-format 2-D convolution
    weights on CPU in channels-last: oneDNN's native layout, about 1.5x faster for an attack step of
    a SmallCNN on this machine (``make bench``). The model itself is never modified: the converted
    copies are passed by ``torch.func.functional_call``, detached (no parameter gradient can be formed)
    or, with ``differentiable``, as copies that pass gradients back to the parameters. The layout
    changes no number beyond float rounding. A model with nothing to convert (the book's networks are
    channels-last already; an MLP; a GPU model), or one that fails with channels-last activations
    (a ``.view`` of a convolution's output, say; tried once per model on one example of ``x``), is
    returned as it is."""
    if x.dim() != 4:
        return model
    weights: dict[str, Tensor] = {}
    seen: set[int] = set()  # a tied weight is given once (functional_call ties its other names to it)
    for prefix, m in model.named_modules(remove_duplicate=False):
        w = getattr(m, "weight", None)
        if not (isinstance(m, nn.Conv2d) and isinstance(w, nn.Parameter) and w.device.type == "cpu") \
                or id(w) in seen:
            continue
        seen.add(id(w))
        source = w if differentiable else w.detach()
        converted = source.to(memory_format=torch.channels_last)  # source itself if channels-last already
        if converted is not source:
            weights[f"{prefix}.weight" if prefix else "weight"] = converted
    if not weights or not _channels_last_works(model, x, weights):
        return model
    return lambda inputs: functional_call(model, weights, (inputs,))


def _channels_last_works(model: nn.Module, x: Tensor, weights: dict[str, Tensor]) -> bool:
    """Whether ``model`` runs with channels-last conv weights (asked once per model: one example of
    ``x``, in eval mode, without gradients, the random state left as it was)."""
    works = _CHANNELS_LAST_WORKS.get(model)
    if works is None:
        try:
            with eval_mode(model), torch.no_grad(), torch.random.fork_rng(devices=[]):
                functional_call(model, weights, (x[:1].detach(),))
            works = True
        except RuntimeError:  # e.g. a .view of a channels-last activation: it needs the standard layout
            works = False
        _CHANNELS_LAST_WORKS[model] = works
    return works
