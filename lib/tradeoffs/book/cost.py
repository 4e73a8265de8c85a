"""What the `paper` profile costs on a GPU: the networks' work, counted from the paper's schedule, at a rate.

**Work.** Every training and attack of a chapter's paper profile that runs a network, in passes: one forward
and one backward pass of one image (:func:`paper_work`, from the chapter's paper settings and the schedules
the notebooks fix), times that architecture's FLOPs per pass (:func:`pass_flops`: twice the multiply-adds of
its conv and linear layers, counted by hooks, forward plus twice that backward). A training step of Madry's
objective with K attack steps is K + 1 passes per image, TRADES's K + 2; an evaluation by PGD-k is k passes.
Cells without a network (closed forms, Monte Carlo, the linear models of chapter 1) are not counted.

**Rate.** Measured where ``scripts/gpu_check.sh`` ran (``book/gpu_check.json``: seconds per pass of each
architecture on that GPU). Otherwise an *estimate*: the efficiency measured on a CPU (``CPU_MEASUREMENT``:
FLOP/s of a training step over the GEMM peak, both on the same cores) applied to the fp32 peak of
``REFERENCE_GPU``. GPUs reach a higher share of their peak on large batches, and TF32 or mixed precision
change the peak itself, so the estimate is an order of magnitude, not a forecast; for the small MNIST networks
a GPU is bound by the overhead of each step rather than by FLOPs, so their estimates are lower bounds.

    python -m tradeoffs.book.cost            # the table of every chapter
    python -m tradeoffs.book.cost measure    # re-measure the CPU efficiency (prints the numbers to record)
"""

from __future__ import annotations

import functools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tradeoffs.book import profiles

REFERENCE_GPU = {"name": "NVIDIA A100 (fp32, no TF32)", "peak_flops": 19.5e12}
# python -m tradeoffs.book.cost measure (process CPU time), on the project's machine, 2026-12-02
CPU_MEASUREMENT = {
    "machine": "Linux, 2 cores, 1 torch thread, batch 8 (2 for WRN-34-10)",
    "gemm_flops": 8.7e10,          # fp32 2048^3 matrix product, 1 thread
    # achieved FLOP/s of a training pass over the GEMM rate; above 1 where the convolution library needs fewer
    # multiplications than the direct count (Winograd); the small MNIST nets are bound by per-step overhead
    "efficiency": {"mlp": 0.19, "small_cnn": 0.9, "trades_net": 0.18, "madry_cnn": 0.44,
                   "vgg11_quarter": 0.66, "resnet18": 1.2, "wrn34_10": 0.97},
}
GPU_CHECK_FILE = "gpu_check.json"
ARCHITECTURES = {  # name -> (builder, input shape)
    "mlp": ("mlp", (1, 28, 28)), "small_cnn": ("small_cnn", (1, 28, 28)),
    "trades_net": ("trades_net", (1, 28, 28)), "madry_cnn": ("madry_cnn", (1, 28, 28)),
    "vgg11_quarter": ("vgg11", (3, 32, 32)), "resnet18": ("resnet18", (3, 32, 32)),
    "wrn34_10": ("wrn34_10", (3, 32, 32)),
}
MNIST_TRAIN, MNIST_TEST, CIFAR_TRAIN, CIFAR_TEST = 50_000, 10_000, 50_000, 10_000
MNIST_1_VS_3 = 10_779   # the "1"s and "3"s among the 50k training images (load_mnist("train", digits=(1, 3)))


@dataclass(frozen=True)
class Cost:
    """A chapter's paper-profile network work and its time at the rate of `basis`."""

    chapter: str
    passes: dict[str, float]      # architecture -> forward+backward passes of one image
    flops: float
    gpu_hours: float
    basis: str                    # "measured on <GPU>" or "estimate (...)"


def _build(architecture: str):
    from tradeoffs import models

    name, shape = ARCHITECTURES[architecture]
    kwargs = {"mlp": {"in_features": 784, "widths": (400,)},
              "vgg11_quarter": {"width": 0.25}}.get(architecture, {})
    return models.build(name, **kwargs), shape


@functools.cache
def pass_flops(architecture: str) -> float:
    """FLOPs of one forward and backward pass of one image: 3 x 2 x the multiply-adds of the conv and linear
    layers."""
    import torch
    from torch import nn

    model, shape = _build(architecture)
    macs = []

    def count(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            macs.append(output[0].numel() * per_output)
        elif isinstance(module, nn.Linear):
            macs.append(module.in_features * module.out_features)

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.rand(1, *shape))
    for hook in hooks:
        hook.remove()
    return 3 * 2 * float(sum(macs))


def paper_work(chapter: str) -> dict[str, float]:
    """Forward+backward passes of one image per architecture in `chapter`'s paper profile (its trainings, the
    attacks inside them, the constructed datasets and the evaluations)."""
    import importlib

    # the paper's settings as written, never the dry run's capped ones
    settings = importlib.import_module(f"{profiles.package(chapter)}.settings").SETTINGS["paper"]
    return {k: v for k, v in WORK[chapter](settings).items() if v}


def _ch01(s) -> dict[str, float]:
    return {}  # linear models and closed forms only


def _ilyas(p, n_train: int, n_test: int) -> float:
    """002 App. C on one dataset: D and the l2-robust model, D_R and D_NR (representation matching), D_rand
    and D_det from both models, six classifiers trained on them, eight evaluated at each eps."""
    training = n_train * (p.epochs * (1 + 6) + p.robust_epochs * (p.robust_steps + 1))
    datasets = n_train * (2 * p.representation_steps + 4 * p.targeted_steps)
    evaluation = 8 * len(p.eval_eps) * n_test * p.attack_steps
    return training + datasets + evaluation


def _ch02(s) -> dict[str, float]:
    return {s.mnist.architecture: _ilyas(s.mnist, s.mnist.train_size, s.mnist.test_size),
            s.cifar10.architecture: _ilyas(s.cifar10, s.cifar10.train_size, s.cifar10.test_size)}


def _ch03(s) -> dict[str, float]:
    n_test = MNIST_TEST if s.mnist_test is None else s.mnist_test

    def sweep(lambdas, trials, epochs, steps, eval_steps, test):
        """Eq. (7): lam = 0 is one pass per image; otherwise K attack passes, the adversarial and the clean
        one."""
        train = trials * s.mnist_train * epochs * sum(1 if lam == 0 else steps + 2 for lam in lambdas)
        return train + trials * len(lambdas) * test * eval_steps

    mnist = (sweep(s.lambdas, s.trials, s.epochs, s.train_steps, s.eval_steps, n_test)
             + sweep(s.figure3a_lambdas, 1, s.epochs, s.train_steps, s.eval_steps, n_test)
             + sweep(s.figure3b_lambdas, 1, s.epochs, s.train_steps, s.eval_steps, n_test)
             + len(s.widths) * sweep((1.0,), 1, s.epochs, s.train_steps, s.eval_steps, n_test)
             + len(s.widths) * sweep((0.0,), 1, s.capacity_epochs, s.train_steps, s.eval_steps, n_test))
    strong = s.strong_apgd_steps * (1 + s.strong_targets) + s.strong_steps * s.strong_restarts
    mnist += s.trials * len(s.lambdas) * n_test * s.eval_steps + len(s.strong_lambdas) * n_test * strong
    cifar = sweep(s.lambdas, s.cifar_trials, s.cifar_epochs, 15, 15, CIFAR_TEST) if s.cifar else 0
    return {"mlp": mnist, "vgg11_quarter": cifar}


def _ch04(s) -> dict[str, float]:
    binary = MNIST_1_VS_3 * (s.binary_natural_epochs
                             + len(s.lambdas) * s.binary_epochs * (s.binary_steps + 2))
    sweep = MNIST_TRAIN * (s.sweep_natural_epochs + len(s.sweep_betas) * s.sweep_epochs * (s.sweep_steps + 2))
    sweep += (len(s.sweep_betas) + 1) * MNIST_TEST * s.sweep_eval_steps
    b = s.eps03
    smallcnn = MNIST_TRAIN * (b.natural_epochs + b.epochs * ((b.steps + 1) + (b.steps + 2)))
    strong = s.strong_apgd_steps * (1 + s.strong_targets) + s.strong_apgd_steps * s.strong_restarts
    smallcnn += (3 * MNIST_TEST * s.robust_eval_steps + s.pgd_long_test * s.pgd_long_steps
                 + 2 * s.strong_test * strong + 2 * s.curve_test * sum(s.curve_steps))
    cifar_eval = CIFAR_TEST if s.cifar_test is None else s.cifar_test
    resnet = len(s.sweep_betas) * (CIFAR_TRAIN * 100 * (10 + 2) + cifar_eval * 20) if s.cifar else 0
    wrn = (CIFAR_TRAIN * 100 * ((10 + 1) + 2 * (10 + 2)) + cifar_eval * (3 * 20 + 2 * 1000)) if s.cifar else 0
    return {"trades_net": binary + sweep, "small_cnn": smallcnn, "resnet18": resnet, "wrn34_10": wrn}


def _ch05(s) -> dict[str, float]:
    per_model = s.train_size * s.epochs
    train = per_model * (1 + len(s.noise_sigmas) + len(s.madry_eps) * (s.train_steps + 1)
                         + len(s.trades_betas) * (s.train_steps
                                                  + 2) + len(s.joint_lambdas) * (s.train_steps + 2))
    models = 1 + len(s.noise_sigmas) + len(s.madry_eps) + len(s.trades_betas) + len(s.joint_lambdas)
    strong = s.strong_apgd_steps * (1 + s.strong_targets) + s.strong_steps * s.strong_restarts
    evaluation = models * s.test_size * (strong + s.pgd_steps + 40)
    return {"mlp": train + evaluation}


WORK = {"01_gaussian_tradeoff": _ch01, "02_robust_features": _ch02, "03_joint_objective": _ch03,
        "04_trades": _ch04, "05_frontier": _ch05}


def gpu_measurement(path: Path | None = None) -> dict | None:
    """What ``scripts/gpu_check.sh`` measured (``book/gpu_check.json``), or None where it has not run."""
    from tradeoffs import paths

    root = paths.checkout_root()
    path = path or (root / "book" / GPU_CHECK_FILE if root else None)
    if path is None:  # an installed copy (Colab): no record of a GPU run
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def paper_cost(chapter: str, measurement: dict | None = None) -> Cost:
    """`chapter`'s paper-profile network work and GPU hours: at the rates ``scripts/gpu_check.sh`` measured
    where it ran (``measurement``, default :func:`gpu_measurement`), else estimated (see the module
    docstring)."""
    measurement = gpu_measurement() if measurement is None else measurement
    passes = paper_work(chapter)
    flops = sum(n * pass_flops(arch) for arch, n in passes.items())
    rates = (measurement or {}).get("seconds_per_pass", {})
    if not passes:
        return Cost(chapter, passes, 0.0, 0.0, "no network: not counted")
    if all(arch in rates for arch in passes) and not measurement.get("dry_run"):
        seconds = sum(n * rates[arch] for arch, n in passes.items())
        basis = f"measured on {measurement['gpu']} ({measurement['date']})"
    else:
        efficiency = CPU_MEASUREMENT["efficiency"]
        seconds = sum(n * pass_flops(arch) / (efficiency.get(arch, min(efficiency.values()))
                                               * REFERENCE_GPU["peak_flops"]) for arch, n in passes.items())
        # no apostrophe: the chapters glue it as text
        basis = f"estimate: the efficiency measured on a CPU, at the fp32 peak of an {REFERENCE_GPU['name']}"
    return Cost(chapter, passes, flops, seconds / 3600, basis)


def measure_cpu(repeats: int = 3) -> dict:
    """This machine's GEMM rate and each architecture's training-pass efficiency (what ``CPU_MEASUREMENT``
    holds), in process CPU time, so that other jobs on a shared machine do not enter the ratio."""
    import torch

    a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    a @ b
    started = time.process_time()
    for _ in range(repeats):
        a @ b
    gemm = repeats * 2 * 2048**3 / (time.process_time() - started)
    efficiency = {}
    for arch in ARCHITECTURES:
        model, shape = _build(arch)
        x = torch.rand(8 if arch != "wrn34_10" else 2, *shape)
        model.train()
        model(x).sum().backward()
        started = time.process_time()
        for _ in range(repeats):
            model(x).sum().backward()
        per_pass = (time.process_time() - started) / (repeats * len(x))
        efficiency[arch] = round(pass_flops(arch) / per_pass / gemm, 2)
    return {"gemm_flops": float(f"{gemm:.2g}"), "efficiency": efficiency, "threads": torch.get_num_threads()}


def table() -> str:
    """Every chapter's paper-profile cost, one line each."""
    lines = []
    for chapter in profiles.CHAPTERS:
        c = paper_cost(chapter)
        lines.append(f"{chapter:<22} {c.flops / 1e15:10.1f} PFLOP  {c.gpu_hours:8.1f} GPU h  ({c.basis})")
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(measure_cpu(), indent=1) if sys.argv[1:] == ["measure"] else table())
