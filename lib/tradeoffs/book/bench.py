"""Speed of the kernels: ``make bench`` (``python -m tradeoffs.book.bench``).

First the three measures of issue 3, on the TRADES SmallCNN: our PGD against a straightforward PGD
loop, our TRADES step against the structure of the authors' release, and the achieved GFLOP/s of a
training and an attack step against a large GEMM on the same machine; they are printed and written
to ``build/bench.json``. Then timed targets of other kernels (seconds on the book's reference
machine: 2 CPU cores): a benchmark over its target fails the command. Every figure is a median of
repeated (interleaved where compared) runs. Timed assertions live here, never in the tests.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tradeoffs import paths


@dataclass(frozen=True)
class Benchmark:
    name: str
    target_seconds: float
    setup: Callable[[], Callable[[], object]]  # returns the function to time


def _table1():
    from tradeoffs.chapters.ch01_gaussian_tradeoff import gaussian
    model = gaussian.TwoGaussians(3, 6, 28.0)
    return lambda: gaussian.training_errors(model, 7.0, 7.0, 3.5)


def _tradeoff_optimum():
    from tradeoffs.chapters.ch01_gaussian_tradeoff import gaussian
    model = gaussian.TwoGaussians(2, 18, 28.0)
    return lambda: gaussian.tradeoff_optimum(model, 7.0, 0.25)


def _sgd_linear(method: str):
    def setup():
        from tradeoffs import models, train
        from tradeoffs.chapters.ch01_gaussian_tradeoff import finite_sample, gaussian
        model, e12 = gaussian.TwoGaussians(3, 6, 28.0), finite_sample.paper_direction(784)
        x, y = gaussian.sample_two_gaussians(20_000, model, e12, torch.Generator().manual_seed(0))
        objective = finite_sample.objectives(eps=0.5, delta_sigma=3.5)[method]
        return lambda: train.fit(models.LinearClassifier(784), x, y, objective, steps=200, batch_size=512, lr=0.2,
                                 generator=torch.Generator().manual_seed(0), show_progress=False)
    return setup


def _pgd_mlp():
    from tradeoffs import attacks
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    x, y = torch.rand(256, 1, 28, 28), torch.randint(0, 10, (256,))
    return lambda: attacks.pgd(net, x, y, eps=0.3, steps=40)


def _load_mnist():
    from tradeoffs import data
    if not data.mnist_path().exists():
        return None
    return lambda: data.load_mnist("train")


BENCHMARKS = [
    Benchmark("Table 1 closed forms (gaussian.training_errors)", 0.005, _table1),
    Benchmark("one W*_lambda (gaussian.tradeoff_optimum)", 0.02, _tradeoff_optimum),
    Benchmark("200 SGD steps, linear d=784, batch 512: standard", 0.5, _sgd_linear("standard")),
    Benchmark("200 SGD steps, linear d=784, batch 512: adversarial (FGSM)", 1.5, _sgd_linear("adversarial")),
    Benchmark("200 SGD steps, linear d=784, batch 512: noise", 2.0, _sgd_linear("noise")),
    Benchmark("PGD-40 l_inf, MLP 784-256-10, batch 256", 0.5, _pgd_mlp),
    Benchmark("load MNIST train (50k, checksum verified)", 2.0, _load_mnist),
]


# ------------------------------------------------- issue 3: our kernels against the baselines


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, timed in alternation so that machine noise hits all alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def release_small_cnn(model: nn.Module) -> nn.Module:
    """The TRADES release's ``SmallCNN`` layout (plain NCHW tensors, ReLU before every pooling), with
    the weights of our ``model``: the baseline the kernels are measured against."""
    import copy
    f, c = model.features, model.classifier
    convs = [m for m in f if isinstance(m, nn.Conv2d)]
    fcs = [m for m in c if isinstance(m, nn.Linear)]
    release = nn.Sequential(
        convs[0], nn.ReLU(), convs[1], nn.ReLU(), nn.MaxPool2d(2, 2),
        convs[2], nn.ReLU(), convs[3], nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
        fcs[0], nn.ReLU(), nn.Dropout(0.5), fcs[1], nn.ReLU(), fcs[2])
    release = copy.deepcopy(release)
    return release.to(memory_format=torch.contiguous_format).eval()


def straightforward_pgd(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, step_size: float,
                        steps: int) -> Tensor:
    """PGD as torchattacks writes it: per step forward, mean cross-entropy, input gradient, sign step, clamp."""
    x_adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1).detach()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        grad = torch.autograd.grad(loss, x_adv)[0]
        x_adv = x_adv.detach() + step_size * grad.sign()
        x_adv = (x + (x_adv - x).clamp(-eps, eps)).clamp(0, 1).detach()
    return x_adv


def release_trades_loss(model: nn.Module, x: Tensor, y: Tensor, *, beta: float, eps: float, step_size: float,
                        steps: int) -> Tensor:
    """The structure of the authors' ``trades.py``: the clean distribution recomputed at every inner step,
    and three forward passes (two of them clean) in the outer loss."""
    kl = nn.KLDivLoss(reduction="sum")
    model.eval()
    x_adv = x.detach() + 0.001 * torch.randn_like(x)
    for _ in range(steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            loss_kl = kl(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1))
        grad = torch.autograd.grad(loss_kl, [x_adv])[0]
        x_adv = x_adv.detach() + step_size * torch.sign(grad.detach())
        x_adv = torch.clamp(torch.min(torch.max(x_adv, x - eps), x + eps), 0.0, 1.0)
    model.train()
    logits = model(x)
    loss_natural = F.cross_entropy(logits, y)
    loss_robust = (1.0 / len(x)) * kl(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1))
    return loss_natural + beta * loss_robust


def step_flops(model: nn.Module, x: Tensor, y: Tensor, *, attack: bool) -> int:
    """FLOPs of one training step (forward, input-free backward to the weights) or one attack step
    (forward, backward to the input only), counted by ``torch.utils.flop_counter``."""
    import copy

    from torch.utils.flop_counter import FlopCounterMode
    model = copy.deepcopy(model)
    model.requires_grad_(not attack)
    x = x.clone().requires_grad_(attack)
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops()


def gemm_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Achieved GFLOP/s of a large fp32 matrix product: the machine's practical peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / _median_seconds(lambda: a @ b, repeats) / 1e9


def kernel_ratios(repeats: int = 7, batch: int = 256) -> dict:
    """The three measures of issue 3 on the SmallCNN (MNIST shapes): PGD and TRADES against the
    baselines above, and achieved GFLOP/s of a training step and an attack step against the GEMM peak."""
    from tradeoffs import attacks, models, train
    torch.manual_seed(0)
    ours = models.SmallCNN()
    for p in ours.parameters():  # a generic non-zero model (the release zeroes the last layer at init)
        nn.init.normal_(p, std=0.05)
    release = release_small_cnn(ours)
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    eps, alpha, steps = 0.3, 0.01, 10
    results = {"batch": batch, "threads": torch.get_num_threads(), "torch": torch.__version__}

    pgd = _interleaved_medians({
        "straightforward": lambda: straightforward_pgd(release, x, y, eps=eps, step_size=alpha, steps=steps),
        "ours": lambda: attacks.pgd(ours.eval(), x, y, eps=eps, step_size=alpha, steps=steps)}, repeats)
    results["pgd"] = {**pgd, "speedup": pgd["straightforward"] / pgd["ours"], "goal": 1.5}

    def step(model, loss_fn):
        def run():
            model.train()
            model.zero_grad(set_to_none=True)
            loss_fn(model, x, y).backward()
        return run
    trades_kw = {"beta": 6.0, "eps": eps, "step_size": alpha, "steps": steps}
    trades = _interleaved_medians({
        "release": step(release, lambda m, a, b: release_trades_loss(m, a, b, **trades_kw)),
        "ours": step(ours, lambda m, a, b: train.trades_loss(m, a, b, **trades_kw))}, repeats)
    results["trades"] = {**trades, "speedup": trades["release"] / trades["ours"], "goal": 2.0}

    peak = gemm_peak_gflops()
    standard = train.standard()
    seconds = _interleaved_medians({"training step (ours)": step(ours, standard),
                                    "training step (release)": step(release, standard)}, repeats)
    # an attack step's time: the PGD-10 runs above, over their 10 steps
    seconds["attack step (ours)"] = pgd["ours"] / steps
    seconds["attack step (release)"] = pgd["straightforward"] / steps
    results["gemm_peak_gflops"] = peak
    results["efficiency"] = {}
    for name, t in seconds.items():
        gflops = step_flops(ours, x, y, attack=name.startswith("attack")) / t / 1e9
        results["efficiency"][name] = {"seconds": t, "gflops": gflops, "fraction_of_peak": gflops / peak}
    return results


def print_ratios(r: dict) -> None:
    print(f"SmallCNN, MNIST batch {r['batch']}, torch {r['torch']}, {r['threads']} threads; "
          "median of interleaved runs\n")
    p, t = r["pgd"], r["trades"]
    print(f"1. PGD-10 attack: straightforward loop {p['straightforward']:.3f}s, ours {p['ours']:.3f}s: "
          f"{p['speedup']:.2f}x (goal >= {p['goal']}x)  {'ok' if p['speedup'] >= p['goal'] else 'BELOW GOAL'}")
    print(f"2. TRADES step (K=10): release structure {t['release']:.3f}s, ours {t['ours']:.3f}s: "
          f"{t['speedup']:.2f}x (goal >= {t['goal']}x)  {'ok' if t['speedup'] >= t['goal'] else 'BELOW GOAL'}")
    print(f"3. fraction of the large-GEMM peak ({r['gemm_peak_gflops']:.1f} GFLOP/s), goal >= 40% for ours:")
    for name, e in r["efficiency"].items():
        print(f"   {name:26s} {e['seconds'] * 1000:8.1f} ms  {e['gflops']:6.1f} GFLOP/s  {100 * e['fraction_of_peak']:5.1f}%")


def run_targets(repeats: int = 5) -> bool:
    """Run every timed benchmark; print median, target and ratio; return whether all met their targets."""
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads; median of {repeats} runs\n")
    print(f"{'benchmark':62s} {'median':>9s} {'target':>8s} {'ratio':>6s}")
    all_ok = True
    for bench in BENCHMARKS:
        fn = bench.setup()
        if fn is None:
            print(f"{bench.name:62s} {'skipped (no data: make data)':>25s}")
            continue
        median = _median_seconds(fn, repeats)
        ok = median <= bench.target_seconds
        all_ok &= ok
        print(f"{bench.name:62s} {median:8.3f}s {bench.target_seconds:7.3f}s {median / bench.target_seconds:6.2f}"
              f"  {'ok' if ok else 'SLOW'}")
    return all_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tradeoffs.book.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    out = (paths.checkout_root() or Path.cwd()) / "build" / "bench.json"
    parser.add_argument("--out", type=Path, default=out,
                        help="where the measured ratios go (default: build/bench.json in the checkout)")
    args = parser.parse_args(argv)
    ratios = kernel_ratios(max(args.repeats, 5))
    print_ratios(ratios)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(ratios, indent=2) + "\n")
    print(f"\nwritten to {args.out}")
    return 0 if run_targets(args.repeats) else 1


if __name__ == "__main__":
    sys.exit(main())
