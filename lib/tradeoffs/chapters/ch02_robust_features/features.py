"""Robust and non-robust features: Tsipras et al. (paper 001, Sec. 2.3 and 3) and Ilyas et al. (paper 002,
App. C).

* The binary MNIST experiment of 001 Sec. 2.3 / App. A: a linear classifier w.x + b on 5 (label -1) against
  7 (label +1), cross-entropy (logistic) loss, 100 epochs of full-batch gradient descent, standard or
  l_inf-adversarial (eps = 0.2); the feature-label correlation of every pixel; and standard training on only
  the k most correlated pixels (Fig. 2c; the data: ``tradeoffs.data.digit_pair``): ``train_linear``,
  ``feature_label_correlation``,
  ``top_k_curve``.
* What robust models see (001 Fig. 3-5): large-eps adversarial examples, interpolations and loss gradients,
  with two measurable proxies for "looks like the other class" and "gradient on the digit":
  ``large_eps_examples``, ``interpolation``, ``loss_gradients``, ``nearest_neighbour_labels``,
  ``gradient_share_on_digit``.
* The datasets of 002 App. C: the robust dataset D_R and the non-robust D_NR (Fig. 5: match a model's
  representation from another training image), D_rand and D_det (Fig. 6: targeted l2 PGD, relabelled):
  ``representation``, ``match_representation``, ``representation_residual``, ``representation_dataset``,
  ``targeted_dataset``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tradeoffs import attacks, evaluate, models, store, train
from tradeoffs.progress import progress

# --------------------------------------------------------------------- 001: binary MNIST, linear model


def smoothness_step(x: Tensor, iterations: int = 50) -> float:
    """1/L for the mean logistic loss of a linear model with bias on x: L = lambda_max(X^T X / n) / 4
    (by power iteration). The classical gradient-descent step for an L-smooth objective (001 gives no
    learning rate)."""
    xb = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype, device=x.device)], 1)
    v = torch.ones(xb.shape[1], dtype=x.dtype, device=x.device)
    for _ in range(iterations):
        v = xb.T @ (xb @ v) / len(x)
        top = v.norm()
        v = v / top
    return float(4 / top)


def linear_worst_case(x: Tensor, y: Tensor, weight: Tensor, eps: float) -> Tensor:
    """The exact l_inf worst case of a linear model in the eps-ball and [0, 1]: clip(x - eps y sign(w), 0, 1)
    (what ``attacks.fgsm`` returns for a linear model)."""
    return (x - eps * y[:, None] * weight.sign()[None]).clamp(0, 1)


def train_linear(x: Tensor, y: Tensor, *, eps: float = 0.0, epochs: int = 100, lr: float | None = None,
                 pixels: Tensor | None = None) -> models.LinearClassifier:
    """001 App. A.2: f(x) = w.x + b from w = 0, b = 0 by ``epochs`` steps of full-batch gradient descent on
    the logistic (cross-entropy) loss; adversarial training (001 App. A.3) when ``eps`` > 0, on the exact
    inner maximum ``linear_worst_case`` (one FGSM step is exact for a linear model, so PGD would find the
    same).

    ``pixels`` (indices) restricts the model to those input pixels (Fig. 2c): the others are zeroed, so
    their weights stay 0. ``lr`` None: 1/L (``smoothness_step``). Written as a plain loop rather than with
    ``train.fit``: 100 full-batch steps are all the paper does, and this keeps them cheap.
    """
    if pixels is not None:
        mask = torch.zeros(x.shape[1], device=x.device)
        mask[pixels] = 1
        x = x * mask
    lr = smoothness_step(x) if lr is None else lr
    w = torch.zeros(x.shape[1], device=x.device, requires_grad=True)
    b = torch.zeros((), device=x.device, requires_grad=True)
    for _ in range(epochs):
        x_in = linear_worst_case(x, y, w.detach(), eps) if eps > 0 else x
        loss = F.softplus(-y * (x_in @ w + b)).mean()
        gw, gb = torch.autograd.grad(loss, (w, b))
        with torch.no_grad():
            w -= lr * gw
            b -= lr * gb
    model = models.LinearClassifier(x.shape[1], unit_norm=False).to(x.device)
    with torch.no_grad():
        model.weight.copy_(w)
        model.bias.copy_(b)
    return model.eval()


@dataclass(frozen=True)
class LinearResult:
    """Table 4's columns for one linear model (accuracies in %)."""

    train_accuracy: float
    test_accuracy: float
    train_adversarial_accuracy: float
    test_adversarial_accuracy: float
    l1_norm: float


def linear_table_row(model: nn.Module, train_data: tuple[Tensor, Tensor], test_data: tuple[Tensor, Tensor],
                     eps: float) -> LinearResult:
    """Standard and adversarial accuracy (exact l_inf attack: FGSM on a linear model) and ||w||_1."""
    def rob(x: Tensor, y: Tensor) -> float:
        return 100 * evaluate.robust_accuracy(model, x, y, eps=eps, attack="fgsm", show_progress=False)

    return LinearResult(100 * evaluate.accuracy(model, *train_data),
                        100 * evaluate.accuracy(model, *test_data), rob(*train_data), rob(*test_data),
                        float(model.weight.detach().abs().sum()))


def feature_label_correlation(x: Tensor, y: Tensor) -> Tensor:
    """Pearson correlation of every input pixel with the label (0 for a constant pixel): Fig. 2b's x-axis."""
    x, y = x.double(), y.double()
    xc, yc = x - x.mean(0), y - y.mean()
    denominator = xc.norm(dim=0) * yc.norm()
    return torch.where(denominator > 0, (xc * yc[:, None]).sum(0) / denominator.clamp_min(1e-300),
                       0.0).float()


def robust_pixels(x: Tensor, y: Tensor, eps: float) -> Tensor:
    """The pixels an l_inf adversary of radius eps (inside [0, 1]) cannot flip on average: those whose class
    means stay ordered after every pixel of class +1 is moved eps down and every pixel of class -1 eps up (or
    the reverse), clipped to [0, 1]. A linear model can use the other pixels only against the adversary's
    grain (001 Sec. 2.3: the correlation threshold set by the threat model)."""
    pos, neg = x[y > 0], x[y < 0]
    up = (pos - eps).clamp(0, 1).mean(0) > (neg + eps).clamp(0, 1).mean(0)
    down = (neg - eps).clamp(0, 1).mean(0) > (pos + eps).clamp(0, 1).mean(0)
    return up | down


def weight_share(weight: Tensor, selected: Tensor) -> float:
    """Share (%) of ||w||_1 on the selected pixels."""
    w = weight.detach().abs()
    return float(100 * w[selected].sum() / w.sum())


def top_k_curve(train_data: tuple[Tensor, Tensor], test_data: tuple[Tensor, Tensor], ks: tuple[int, ...], *,
                eps: float, epochs: int = 100, lr: float | None = None) -> list[dict]:
    """Fig. 2c: standard training on only the k pixels most correlated with the label (by |correlation|);
    test accuracy and adversarial accuracy (exact l_inf attack at ``eps``) for each k, in %. One step size for
    every k: ``lr``, default 1/L of all pixels."""
    lr = smoothness_step(train_data[0]) if lr is None else lr
    order = feature_label_correlation(*train_data).abs().argsort(descending=True)
    rows = []
    for k in progress(ks, desc="Fig. 2c: top-k pixels", leave=False):
        model = train_linear(*train_data, epochs=epochs, lr=lr, pixels=order[:k])
        rows.append({"k": k, "accuracy": 100 * evaluate.accuracy(model, *test_data),
                     "adversarial_accuracy": 100 * evaluate.robust_accuracy(
                         model, *test_data, eps=eps, attack="fgsm", show_progress=False)})
    return rows


# ------------------------------------------------------------------ 001 Sec. 3: what robust models see


def large_eps_examples(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, norm: str,
                       steps: int = 100) -> Tensor:
    """001 Sec. 3.1 / App. A.4: follow the loss gradient (PGD from x, no random start) within a large
    eps-ball."""
    return attacks.pgd(model, x, y, eps=eps, norm=norm, steps=steps, random_start=False)


def interpolation(x: Tensor, x_adv: Tensor, points: int) -> Tensor:
    """001 Sec. 3.2 (Fig. 4): x + t (x_adv - x) for t evenly spaced in [0, 1]: [points, *x.shape]."""
    t = torch.linspace(0, 1, points, device=x.device).reshape(-1, *([1] * x.dim()))
    return x[None] + t * (x_adv - x)[None]


def loss_gradients(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """001 Sec. 3.3 (Fig. 5): the gradient of each example's loss with respect to its input pixels (eval
    mode)."""
    x = x.detach().clone().requires_grad_(True)
    with attacks.eval_mode(model):
        loss = attacks.default_loss(model(x), y).sum()
    (grad,) = torch.autograd.grad(loss, x)
    return grad.detach()


def digit_region(x: Tensor, threshold: float = 0.1, grow: int = 1) -> Tensor:
    """The pixels on or next to the stroke: ink above ``threshold``, dilated by ``grow`` pixels (max-pool)."""
    ink = (x > threshold).float()
    return F.max_pool2d(ink, 2 * grow + 1, stride=1, padding=grow) > 0


def gradient_share_on_digit(grad: Tensor, x: Tensor) -> Tensor:
    """A proxy for Fig. 5's "gradients align with perceptually relevant features": the share (%) of each
    gradient's energy ||g||^2 on the digit and its one-pixel border, per example."""
    energy = grad.pow(2)
    return 100 * (energy * digit_region(x)).flatten(1).sum(1) / energy.flatten(1).sum(1).clamp_min(1e-30)


def nearest_neighbour_labels(x: Tensor, reference_x: Tensor, reference_y: Tensor, k: int = 5) -> Tensor:
    """Majority label of the k nearest reference images in pixel (l2) space: a judge of "what the image looks
    like" that no attack here was aimed at (a proxy for 001 Fig. 3's visual judgement)."""
    distances = torch.cdist(x.flatten(1), reference_x.flatten(1))
    nearest = reference_y[distances.topk(k, largest=False).indices]
    return torch.mode(nearest, dim=1).values


# --------------------------------------------------------------------- 002 App. C: the datasets


def representation(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """g(x): the model's representation layer (the input of its last linear layer), as in 002 Fig. 5."""
    if isinstance(model, models.MLP):
        body = model.net[:-1]
        return lambda x: body(x.flatten(1))
    if isinstance(model, (models.MadryCNN, models.SmallCNN)):
        return lambda x: model.classifier[:-1](model.features(x).flatten(1))
    if hasattr(model, "features") and hasattr(model, "classifier"):  # CIFAR models of tradeoffs.models
        return lambda x: model.classifier[:-1](model.features(x).flatten(1))
    raise TypeError(f"no representation layer known for {type(model).__name__}")


def match_representation(model: nn.Module, x_target: Tensor, x_start: Tensor, *, steps: int,
                         step_size: float) -> Tensor:
    """Ilyas et al., Eq. (5) / Fig. 5: x_r = argmin_{z in [0,1]^d} ||g(z) - g(x)||_2, from z = x_start,
    by normalized gradient descent (each step has l2 length ``step_size``), clipped to [0, 1] after every
    step (App. C.4)."""
    g = representation(model)
    with attacks.eval_mode(model):
        with torch.no_grad():
            target = g(x_target)
        z = x_start.detach().clone()
        for _ in range(steps):
            z.requires_grad_(True)
            with torch.enable_grad():
                loss = (g(z) - target).norm(dim=1).sum()
                (grad,) = torch.autograd.grad(loss, z)
            norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12).reshape(-1, *([1] * (z.dim() - 1)))
            z = (z.detach() - step_size * grad / norms).clamp(0, 1)
    return z.detach()


def representation_residual(model: nn.Module, x_r: Tensor, x: Tensor) -> Tensor:
    """How well Eq. (5) was solved, per example: ||g(x_r) - g(x)||_2 / ||g(x)||_2 for the model's
    representation g (0: matched exactly)."""
    g = representation(model)
    with attacks.eval_mode(model), torch.no_grad():
        target = g(x)
        return (g(x_r) - target).norm(dim=1) / target.norm(dim=1).clamp_min(1e-12)


@store.memoized
def representation_dataset(model: nn.Module, x: Tensor, y: Tensor, *, steps: int, step_size: float,
                           seed: int = 0, batch_size: int = 500) -> Tensor:
    """Ilyas et al., Fig. 5 (GETROBUSTDATASET): for every (x, y) start from another random training image
    and match the model's representation of x; the label stays y. A robust model gives D_R, a standard one
    D_NR. Memoized (``tradeoffs.store.memoized``): keyed by the model's weights, the data and the settings."""
    generator = torch.Generator().manual_seed(seed)
    start = torch.randperm(len(x), generator=generator).to(x.device)
    start = torch.where(start == torch.arange(len(x), device=x.device), (start + 1) % len(x), start)
    out = [match_representation(model, xb, x[sb], steps=steps, step_size=step_size)
           for xb, sb in progress(list(zip(x.split(batch_size), start.split(batch_size))),
                                  desc="matching representations", leave=False)]
    return torch.cat(out)


@store.memoized
def targeted_dataset(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, steps: int, classes: int = 10,
                     mode: str = "rand", seed: int = 0, batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    """Ilyas et al., Fig. 6 (GETNONROBUSTDATASET): x_NR = argmin_{||x' - x||_2 <= eps} L(f(x'), t) by
    targeted l2 PGD (``attacks.pgd`` with ``target=t``: normalized steps of the default 2.5 eps / steps,
    from x), relabelled t. Of each example's iterates PGD keeps one the model assigns to t if there is one,
    else the one with the lowest loss towards t. Memoized (``tradeoffs.store.memoized``): keyed by the
    model's weights, the data and the settings.

    ``mode`` "rand": t uniform over the classes (D_rand); "det": t = (y + 1) mod C (D_det).
    Returns (x_NR, t).
    """
    if mode == "rand":
        t = torch.randint(0, classes, (len(y),), generator=torch.Generator().manual_seed(seed)).to(y.device)
    elif mode == "det":
        t = (y + 1) % classes
    else:
        raise ValueError(f"mode must be 'rand' or 'det', got {mode!r}")
    batches = list(zip(x.split(batch_size), y.split(batch_size), t.split(batch_size)))
    out = [attacks.pgd(model, xb, yb, eps=eps, norm="l2", steps=steps, random_start=False, target=tb)
           for xb, yb, tb in progress(batches, desc=f"D_{mode}: targeted PGD", leave=False)]
    return torch.cat(out), t


def target_success(model: nn.Module, x_adv: Tensor, t: Tensor) -> float:
    """Share (%) of the constructed examples the source model assigns to their new label t: what 002 Fig. 6
    needs to be near 100% (x_NR is a targeted adversarial example of the source model towards t)."""
    return 100 * evaluate.accuracy(model, x_adv, t)


def target_success_by_radius(model: nn.Module, x: Tensor, y: Tensor, radii: tuple[float, ...], *, steps: int,
                             mode: str = "det", seed: int = 0) -> dict[float, float]:
    """``target_success`` of ``targeted_dataset`` built on (x, y) at each l2 radius (in %, by radius)."""
    return {eps: target_success(model,
                                *targeted_dataset(model, x, y, eps=eps, steps=steps, mode=mode, seed=seed))
            for eps in radii}


# ------------------------------------------------------------------------ training, through the store


def build_model(architecture: str, shape: tuple[int, ...], classes: int = 10) -> nn.Module:
    """The chapter's classifiers: "mlp" (two hidden layers of 256), or a model of ``tradeoffs.models`` by
    name."""
    if architecture == "mlp":
        return models.MLP(int(torch.tensor(shape).prod()), (256, 256), classes=classes)
    return models.build(architecture, classes=classes)


@dataclass(frozen=True)
class Training:
    """How one of the chapter's classifiers is trained: its architecture, its objective and the arguments of
    ``train.fit`` (SGD with momentum 0.9, the step schedule of ``milestones``)."""

    architecture: str
    objective: train.Objective
    epochs: int
    lr: float
    batch_size: int
    weight_decay: float
    milestones: tuple[int, ...]
    seed: int
    optimizer: str = "sgd"
    momentum: float = 0.9


def trained_classifier(name: str, x: Tensor, y: Tensor, training: Training, *,
                       device: torch.device) -> nn.Module:
    """A classifier trained on (x, y) as ``training`` says, through the store (keyed by the call: the data by
    their digest)."""
    fit_kw = {f.name: getattr(training, f.name) for f in dataclasses.fields(training)
              if f.name not in ("architecture", "objective")}
    return store.fit(lambda: build_model(training.architecture, tuple(x.shape[1:])), (x, y),
                     training.objective, device=device, name=name, **fit_kw)


@dataclass
class IlyasResult:
    """One row of 002 Tables 7, 9, 10 as per-example outcomes (bool tensors): correct on the natural test
    images, still correct under l2 PGD at each eps (on the first ``len(robust[eps])`` of them) and, for D_det,
    correct on the relabelled test set t(y) = (y + 1) mod C. ``tradeoffs.stats`` turns them into intervals
    and paired differences; the properties give the accuracies in %."""

    correct: Tensor
    robust_correct: dict[float, Tensor]
    relabelled_correct: Tensor | None = None

    @property
    def accuracy(self) -> float:
        return _percent(self.correct)

    @property
    def robust(self) -> dict[float, float]:
        return {e: _percent(c) for e, c in self.robust_correct.items()}

    @property
    def relabelled(self) -> float | None:
        return None if self.relabelled_correct is None else _percent(self.relabelled_correct)


def _percent(outcomes: Tensor) -> float:
    return 100 * outcomes.double().mean().item()


def ilyas_datasets(x: Tensor, y: Tensor, standard_model: nn.Module, robust_model: nn.Module, protocol,
                   seed: int = 0) -> dict[str, tuple[Tensor, Tensor]]:
    """002 App. C.4-C.5 on (x, y): D_R and D_NR (Fig. 5, from the robust and the standard model), and D_rand,
    D_det (Fig. 6) built with the standard model and, for Tables 9-10, with the robust model (each dataset
    memoized, keyed by its source model's weights)."""
    sources = {"standard": standard_model, "robust": robust_model}
    out: dict[str, tuple[Tensor, Tensor]] = {}
    for tag, source in (("d_r", "robust"), ("d_nr", "standard")):
        out[tag] = (representation_dataset(sources[source], x, y, steps=protocol.representation_steps,
                                           step_size=protocol.representation_step_size, seed=seed), y)
    for source in ("standard", "robust"):
        for mode in ("rand", "det"):
            out[f"d_{mode}.{source}"] = targeted_dataset(sources[source], x, y, eps=protocol.targeted_eps,
                                                         steps=protocol.targeted_steps, mode=mode, seed=seed)
    return out


def evaluate_row(model: nn.Module, x: Tensor, y: Tensor, eval_eps: tuple[float, ...], attack_steps: int,
                 relabel: bool = False, classes: int = 10, robust_size: int | None = None) -> IlyasResult:
    """Per-example outcomes of ``model`` on the test set (x, y): natural (and, when ``relabel``, relabelled)
    on all of it, l2 PGD-``attack_steps`` (step 2.5 eps / steps, one random start) at each eps on the first
    ``robust_size`` points (default: all)."""
    xr, yr = x[:robust_size], y[:robust_size]
    robust = {e: evaluate.robust_correct(model, xr, yr, eps=e, norm="l2", steps=attack_steps,
                                         show_progress=False) for e in eval_eps}
    relabelled = evaluate.correct(model, x, (y + 1) % classes) if relabel else None
    return IlyasResult(evaluate.correct(model, x, y), robust, relabelled)


def training_settings(protocol, method: str, seed: int = 0) -> Training:
    """The :class:`Training` of ``method`` "standard" or "l2" (002 App. C.3: Madry PGD adversarial training in
    l2), from a ``settings.IlyasProtocol``."""
    p = protocol
    common = {"architecture": p.architecture, "lr": p.lr, "batch_size": p.batch_size,
              "weight_decay": p.weight_decay, "milestones": tuple(p.milestones), "seed": seed}
    if method == "standard":
        return Training(objective=train.standard(), epochs=p.epochs, **common)
    if method == "l2":
        return Training(objective=train.adversarial(eps=p.robust_eps, norm="l2", steps=p.robust_steps,
                                                    step_size=p.robust_step_size), epochs=p.robust_epochs,
                        **common)
    raise ValueError(f"method must be 'standard' or 'l2', got {method!r}")


def image_grid(images: Tensor, row_labels: list[str], titles: list[list[str]] | None = None,
               cmap: str = "gray", symmetric: bool = False, scale: float = 1.1):
    """Show images [rows, columns, C, H, W] as a grid (one row per label, ``titles[i][j]`` above each image);
    ``symmetric``: a diverging colour
    map centred on 0, each image scaled to its own largest absolute value (gradient maps)."""
    import matplotlib.pyplot as plt

    rows, columns = images.shape[:2]
    fig, axes = plt.subplots(rows, columns, figsize=(scale * columns, scale * rows + 0.3), squeeze=False)
    for i in range(rows):
        for j in range(columns):
            ax, image = axes[i, j], images[i, j].detach().cpu()
            image = image[0] if image.shape[0] == 1 else image.permute(1, 2, 0)
            if symmetric:
                bound = float(image.abs().max()) or 1.0
                ax.imshow(image, cmap="bwr_r", vmin=-bound, vmax=bound)
            else:
                ax.imshow(image.clamp(0, 1), cmap=cmap, vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
            if titles is not None:
                ax.set_title(titles[i][j], fontsize=7, pad=2)
        axes[i, 0].set_ylabel(row_labels[i], fontsize=8)
    return fig
