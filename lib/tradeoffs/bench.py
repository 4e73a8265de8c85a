"""Speed targets of the kernels: ``make bench`` (``python -m tradeoffs.bench``).

Each benchmark runs a few times and reports the median against its target (seconds on the book's
reference machine: 2 CPU cores). A benchmark over its target fails the command. Timed assertions
live here, never in the tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class Benchmark:
    name: str
    target_seconds: float
    setup: Callable[[], Callable[[], object]]  # returns the function to time


def _table1():
    from tradeoffs import gaussian
    model = gaussian.TwoGaussians(3, 6, 28.0)
    return lambda: gaussian.training_errors(model, 7.0, 7.0, 3.5)


def _tradeoff_optimum():
    from tradeoffs import gaussian
    model = gaussian.TwoGaussians(2, 18, 28.0)
    return lambda: gaussian.tradeoff_optimum(model, 7.0, 0.25)


def _sgd_linear(method: str):
    def setup():
        from tradeoffs import finite_sample, gaussian, models, train
        model, e12 = gaussian.TwoGaussians(3, 6, 28.0), finite_sample.paper_direction(784)
        x, y = gaussian.sample_two_gaussians(20_000, model, e12, torch.Generator().manual_seed(0))
        objective = finite_sample.objectives(eps=0.5, delta_sigma=3.5)[method]
        return lambda: train.fit(models.LinearClassifier(784), x, y, objective, steps=200, batch_size=512, lr=0.2,
                                 generator=torch.Generator().manual_seed(0))
    return setup


def _pgd_mlp():
    from tradeoffs import attacks
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    x, y = torch.rand(256, 1, 28, 28), torch.randint(0, 10, (256,))
    return lambda: attacks.pgd(net, x, y, 0.3, steps=40)


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


def run(repeats: int = 5) -> bool:
    """Run every benchmark; print median, target and ratio; return whether all met their targets."""
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {repeats} runs\n")
    print(f"{'benchmark':62s} {'median':>9s} {'target':>8s} {'ratio':>6s}")
    all_ok = True
    for bench in BENCHMARKS:
        fn = bench.setup()
        if fn is None:
            print(f"{bench.name:62s} {'skipped (no data: make data)':>25s}")
            continue
        fn()  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        ok = median <= bench.target_seconds
        all_ok &= ok
        print(f"{bench.name:62s} {median:8.3f}s {bench.target_seconds:7.3f}s {median / bench.target_seconds:6.2f}"
              f"  {'ok' if ok else 'SLOW'}")
    return all_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tradeoffs.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    return 0 if run(args.repeats) else 1


if __name__ == "__main__":
    sys.exit(main())
