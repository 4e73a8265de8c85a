"""Speed of the kernels: ``make bench`` (``python -m tradeoffs.book.bench``).

1. Against the real peers, on the book's ``SmallCNN`` (channels-last) and on ``PlainSmallCNN`` below
   (the same layers as a user writes them: standard memory format, ReLU before pooling):
   ``attacks.pgd`` (l_inf and l2, best iterate kept) against torchattacks' ``PGD`` / ``PGDL2``, and a
   TRADES step (attack, loss, backward) of ``train.trades_loss`` against :func:`release_trades_loss`,
   a transcription of the authors' ``trades.py``. torchattacks is installed for the bench only
   (``make bench`` installs it with ``--no-deps``; it is never a dependency of the package); without it
   that comparison is skipped with a message.
2. The cost of one ``train.fit`` epoch per objective, split into its phases (attack, forward,
   backward, optimizer, data), so that the next bottleneck is visible.
3. The achieved GFLOP/s of a training and an attack step against a large GEMM on the same machine.
4. Timed targets of other kernels (seconds on the book's reference machine: 2 CPU cores): a benchmark
   over its target fails the command.

The machine may be shared: every comparison is timed in interleaved rounds (each contender once per
round), and a speed-up is the median over rounds of the per-round ratio. Results go to
``build/bench.json``. Timed assertions live here, never in the tests.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
        return lambda: train.fit(models.LinearClassifier(784), x, y, objective, steps=200, batch_size=512,
                                 lr=0.2, generator=torch.Generator().manual_seed(0), show_progress=False)
    return setup


def _pgd_mlp():
    from tradeoffs import attacks
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 10))
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


# ------------------------------------------------------------------------------------ timing


def _clock() -> Callable[[], float]:
    """The clock of every figure: on one thread the CPU time of this process (the work done, which the
    time slices other processes take on a shared machine do not inflate), else the wall time."""
    return time.process_time if torch.get_num_threads() == 1 else time.perf_counter


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    clock = _clock()
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def _interleaved(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds of each function in each of ``rounds`` rounds; every round runs each function once, in
    turn, so that a burst of load on a shared machine hits all contenders of that round alike."""
    clock = _clock()
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
    return times


def _versus(times: dict[str, list[float]], peer: str, ours: str, goal: float) -> dict:
    """Medians of a peer and of ours, and the speed-up: the median over rounds of peer / ours."""
    ratios = [p / o for p, o in zip(times[peer], times[ours])]
    speedup = statistics.median(ratios)
    return {"peer_seconds": statistics.median(times[peer]), "ours_seconds": statistics.median(times[ours]),
            "speedup": speedup, "speedup_range": [min(ratios), max(ratios)], "rounds": len(ratios),
            "goal": goal, "met": speedup >= goal}


# ------------------------------------------------------------------------- the two models


class PlainSmallCNN(nn.Module):
    """The TRADES MNIST ``SmallCNN`` as a user writes it: standard (NCHW) memory format, ReLU before every
    pooling, not-in-place activations, ``torch.flatten`` before the classifier."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 3), nn.Conv2d(32, 32, 3)
        self.conv3, self.conv4 = nn.Conv2d(32, 64, 3), nn.Conv2d(64, 64, 3)
        self.fc1, self.fc2, self.fc3 = nn.Linear(64 * 4 * 4, 200), nn.Linear(200, 200), nn.Linear(200, 10)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = F.max_pool2d(F.relu(self.conv4(F.relu(self.conv3(x)))), 2)
        x = self.dropout(F.relu(self.fc1(torch.flatten(x, 1))))
        return self.fc3(F.relu(self.fc2(x)))


def book_and_plain_models(seed: int = 0) -> dict[str, nn.Module]:
    """The book's ``models.SmallCNN`` with generic non-zero weights (the release zeroes the last layer at
    init) and a ``PlainSmallCNN`` holding the same weights in the standard memory format."""
    from tradeoffs import models
    torch.manual_seed(seed)
    book = models.SmallCNN()
    for p in book.parameters():
        nn.init.normal_(p, std=0.05)
    plain = PlainSmallCNN()
    layers = [m for m in book.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    targets = [plain.conv1, plain.conv2, plain.conv3, plain.conv4, plain.fc1, plain.fc2, plain.fc3]
    with torch.no_grad():
        for source, target in zip(layers, targets, strict=True):
            target.weight.copy_(source.weight)
            target.bias.copy_(source.bias)
    return {"SmallCNN (book)": book.eval(), "PlainSmallCNN (user)": plain.eval()}


# ----------------------------------------------------------------------------------- peers


TORCHATTACKS_PIN = "torchattacks==3.5.1"


def torchattacks_or_none():
    """The torchattacks module, or None (with a message) when it is not installed."""
    try:
        import torchattacks
    except ImportError:
        print(f"torchattacks is not installed: skipping the comparison with it (make bench installs it with "
              f"`pip install --no-deps {TORCHATTACKS_PIN}`)")
        return None
    return torchattacks


def release_trades_loss(model: nn.Module, x: Tensor, y: Tensor, *, beta: float, eps: float, step_size: float,
                        steps: int) -> Tensor:
    """The authors' ``trades_loss`` (``trades.py`` of github.com/yaodongyu/TRADES), l_inf, transcribed:
    a summed ``KLDivLoss``, the attack in eval mode from x + 0.001 * N(0, I), at each of the K steps the
    sign of the gradient of KL(log_softmax(f(x')), softmax(f(x))) (the clean forward pass repeated every
    step), the ball and box clamps; then train mode, CE(f(x), y) and (1 / batch) * KL, whose target
    softmax(f(x)) is a third forward pass."""
    criterion_kl = nn.KLDivLoss(reduction="sum")  # the release's size_average=False
    model.eval()
    batch_size = len(x)
    x_adv = x.detach() + 0.001 * torch.randn(x.shape).detach()
    for _ in range(steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            loss_kl = criterion_kl(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1))
        grad = torch.autograd.grad(loss_kl, [x_adv])[0]
        x_adv = x_adv.detach() + step_size * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    model.train()
    logits = model(x)
    loss_natural = F.cross_entropy(logits, y)
    loss_robust = (1.0 / batch_size) * criterion_kl(F.log_softmax(model(x_adv), dim=1),
                                                    F.softmax(model(x), dim=1))
    return loss_natural + beta * loss_robust


PGD_SETTINGS = {"linf": {"eps": 0.3, "step_size": 0.01}, "l2": {"eps": 2.0, "step_size": 0.25}}
PGD_STEPS, PGD_BATCH = 10, 256
TRADES_SETTINGS = {"beta": 6.0, "eps": 0.3, "step_size": 0.01, "steps": 10}
TRADES_BATCH = 128


def _training_step(model: nn.Module, x: Tensor, y: Tensor, loss_fn: Callable) -> Callable[[], None]:
    def run():
        model.train()
        model.zero_grad(set_to_none=True)
        loss_fn(model, x, y).backward()
    return run


def _as_given(model: nn.Module) -> nn.Module | None:
    """A copy of ``model`` that the kernels run in its own memory format (the channels-last copies of
    ``attacks._fast_forward`` switched off), or None where that lever does not apply to ``model``."""
    import copy

    from tradeoffs import attacks
    if attacks._fast_forward(model, torch.rand(1, 1, 28, 28)) is model:
        return None
    twin = copy.deepcopy(model)
    attacks._CHANNELS_LAST_WORKS[twin] = False
    return twin


def peer_ratios(rounds: int) -> dict:
    """Ours against the peers on both models: PGD-10 (l_inf, l2) against torchattacks, batch 256; a
    TRADES step (K = 10) against the authors' structure, batch 128. Where the kernels convert the
    model's conv weights to channels-last (the plain model), ours is also timed without that lever
    (key ``without_layout_lever``), in the same rounds."""
    from tradeoffs import attacks, train
    torchattacks = torchattacks_or_none()
    torch.manual_seed(0)
    x, y = torch.rand(PGD_BATCH, 1, 28, 28), torch.randint(0, 10, (PGD_BATCH,))
    xt, yt = x[:TRADES_BATCH], y[:TRADES_BATCH]
    out: dict = {"pgd": {}, "trades": {}, "pgd_batch": PGD_BATCH, "pgd_steps": PGD_STEPS,
                 "trades_batch": TRADES_BATCH}
    for model_name, model in book_and_plain_models().items():
        ours = {"ours": model}
        if (as_given := _as_given(model)) is not None:
            ours["ours, layout as given"] = as_given
        if torchattacks is not None:
            peers = {"linf": torchattacks.PGD, "l2": torchattacks.PGDL2}
            fns = {}
            for norm, s in PGD_SETTINGS.items():
                peer = peers[norm](model, eps=s["eps"], alpha=s["step_size"], steps=PGD_STEPS)
                fns[f"torchattacks {norm}"] = lambda peer=peer: peer(x, y)
                for name, m in ours.items():
                    fns[f"{name} {norm}"] = lambda m=m, norm=norm, s=s: attacks.pgd(m, x, y, norm=norm,
                                                                                    steps=PGD_STEPS, **s)
            times = _interleaved(fns, rounds)
            out["pgd"][model_name] = {}
            for norm in PGD_SETTINGS:
                out["pgd"][model_name][norm] = _versus(times, f"torchattacks {norm}", f"ours {norm}", 1.5)
                if as_given is not None:
                    out["pgd"][model_name][norm]["without_layout_lever"] = _versus(
                        times, f"torchattacks {norm}", f"ours, layout as given {norm}", 1.5)
        else:
            out["pgd"][model_name] = "skipped: torchattacks is not installed"
        fns = {"release": _training_step(model, xt, yt,
                                         lambda m, a, b: release_trades_loss(m, a, b, **TRADES_SETTINGS))}
        for name, m in ours.items():
            fns[name] = _training_step(m, xt, yt,
                                       lambda m, a, b: train.trades_loss(m, a, b, **TRADES_SETTINGS))
        times = _interleaved(fns, rounds)
        out["trades"][model_name] = _versus(times, "release", "ours", 2.0)
        if as_given is not None:
            out["trades"][model_name]["without_layout_lever"] = _versus(times, "release",
                                                                        "ours, layout as given", 2.0)
        model.eval()
    return out


# ------------------------------------------------------------------------- epoch phases

PHASES = ("attack", "forward", "backward", "optimizer", "data")


class _PhaseClock:
    """Splits the wall time of a ``train.fit`` run into ``PHASES`` from the outside: the objective is
    wrapped (its time minus the attack's is the forward pass and loss), the attack is wrapped, and global
    optimizer hooks mark the end of the backward pass and of the step; the rest (batch indexing,
    zero_grad, learning rate, progress) is data."""

    def __init__(self):
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.clock = _clock()
        self.mark = self.clock()

    def _lap(self, phase: str) -> None:
        now = self.clock()
        self.seconds[phase] += now - self.mark
        self.mark = now

    def attack(self, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            start = self.clock()
            out = fn(*args, **kwargs)
            self.seconds["attack"] += self.clock() - start
            return out
        return timed

    def objective(self, fn: Callable) -> Callable:
        def timed(model, x, y):
            self._lap("data")
            attack_before = self.seconds["attack"]
            loss = fn(model, x, y)
            self._lap("forward")
            self.seconds["forward"] -= self.seconds["attack"] - attack_before
            return loss
        return timed

    def __enter__(self):
        from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
        self._hooks = [register_optimizer_step_pre_hook(lambda *_: self._lap("backward")),
                       register_optimizer_step_post_hook(lambda *_: self._lap("optimizer"))]
        self.mark = self.clock()
        return self

    def __exit__(self, *exc):
        self._lap("data")
        for hook in self._hooks:
            hook.remove()


def _epoch_objectives(clock: _PhaseClock) -> dict[str, Callable]:
    from tradeoffs import attacks, train
    pgd = clock.attack(attacks.pgd)
    return {
        "standard": train.standard(),
        "noise (sigma 0.3)": train.noise(sigma=0.3),
        "adversarial (PGD-10)": train.adversarial(eps=0.3, attack=pgd, steps=10),
        "trades (K = 10)": train.trades(beta=6.0, eps=0.3, step_size=0.03, steps=10),
        "joint (lam 2, PGD-10)": train.joint(lam=2.0, eps=0.3, attack=pgd, steps=10),
    }


def epoch_phases(rounds: int, n: int = 1024, batch_size: int = 128) -> dict:
    """Per-phase seconds and images/s of one ``train.fit`` epoch (n MNIST training images, or uniform noise
    without the data) of a fresh book ``SmallCNN`` for each objective; medians over interleaved rounds."""
    from unittest import mock

    from tradeoffs import attacks, data, models, train
    if data.mnist_path().exists():
        x, y = (t[:n] for t in data.load_mnist("train"))
        source = f"MNIST, first {n} training images"
    else:
        x, y = torch.rand(n, 1, 28, 28), torch.randint(0, 10, (n,))
        source = f"{n} uniform-noise images (MNIST not fetched: make data)"
    names = list(_epoch_objectives(_PhaseClock()))
    for objective in _epoch_objectives(_PhaseClock()).values():  # warm-up: one batch each
        train.fit(models.SmallCNN(), x[:batch_size], y[:batch_size], objective, epochs=1,
                  batch_size=batch_size, lr=0.01, show_progress=False)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            torch.manual_seed(0)
            model = models.SmallCNN()
            with _PhaseClock() as clock, mock.patch.object(attacks, "trades_attack",
                                                           clock.attack(attacks.trades_attack)):
                objective = clock.objective(_epoch_objectives(clock)[name])
                train.fit(model, x, y, objective, epochs=1, batch_size=batch_size, lr=0.01,
                          show_progress=False)
            runs[name].append(dict(clock.seconds))
    result = {"source": source, "batch_size": batch_size, "rounds": rounds, "objectives": {}}
    for name, laps in runs.items():
        seconds = {phase: statistics.median(lap[phase] for lap in laps) for phase in PHASES}
        total = statistics.median(sum(lap.values()) for lap in laps)
        result["objectives"][name] = {"seconds": seconds, "total_seconds": total,
                                      "images_per_second": n / total}
    return result


# ------------------------------------------------------------------------ GEMM efficiency


def step_flops(model: nn.Module, x: Tensor, y: Tensor, *, attack: bool) -> int:
    """FLOPs of one training step (forward, backward to the weights) or one attack step (forward,
    backward to the input only), counted by ``torch.utils.flop_counter``."""
    import copy

    from torch.utils.flop_counter import FlopCounterMode
    model = copy.deepcopy(model)
    model.requires_grad_(not attack)
    x = x.clone().requires_grad_(attack)
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops()


def gemm_peak_gflops(n: int = 2048, repeats: int = 9) -> float:
    """Achieved GFLOP/s of a large fp32 matrix product, the fastest of ``repeats`` runs: the machine's
    practical peak (the fastest, not the median, so that load on a shared machine does not lower it)."""
    clock = _clock()
    a, b = torch.randn(n, n), torch.randn(n, n)
    times = []
    for _ in range(repeats + 1):
        start = clock()
        a @ b
        times.append(clock() - start)
    return 2 * n**3 / min(times[1:]) / 1e9


def efficiency(peers: dict, rounds: int) -> dict:
    """GFLOP/s of a training step (``train.standard``, batch 256) and of an attack step (the PGD-10 l_inf
    runs above over their 10 steps) on both models, against the GEMM peak."""
    from tradeoffs import train
    torch.manual_seed(0)
    x, y = torch.rand(PGD_BATCH, 1, 28, 28), torch.randint(0, 10, (PGD_BATCH,))
    peak = gemm_peak_gflops()
    out: dict = {"gemm_peak_gflops": peak, "steps": {}}
    for model_name, model in book_and_plain_models().items():
        seconds = {"training step": statistics.median(_interleaved(
            {"s": _training_step(model, x, y, train.standard())}, rounds)["s"])}
        pgd = peers["pgd"].get(model_name)
        if isinstance(pgd, dict):
            seconds["attack step (ours)"] = pgd["linf"]["ours_seconds"] / PGD_STEPS
            seconds["attack step (torchattacks)"] = pgd["linf"]["peer_seconds"] / PGD_STEPS
        for name, t in seconds.items():
            gflops = step_flops(model, x, y, attack=name.startswith("attack")) / t / 1e9
            out["steps"][f"{model_name}: {name}"] = {"seconds": t, "gflops": gflops,
                                                     "fraction_of_peak": gflops / peak}
        model.eval()
    return out


# ------------------------------------------------------------------------------- report


def _verdict(r: dict) -> str:
    text = (f"{r['peer_seconds']:.3f}s / {r['ours_seconds']:.3f}s = {r['speedup']:.2f}x "
            f"[{r['speedup_range'][0]:.2f}-{r['speedup_range'][1]:.2f}] (goal >= {r['goal']}x) "
            f"{'ok' if r['met'] else 'BELOW GOAL'}")
    if "without_layout_lever" in r:
        text += f"; without the layout lever {r['without_layout_lever']['speedup']:.2f}x"
    return text


def print_report(r: dict) -> None:
    print(f"torch {r['torch']}, {r['threads']} threads, load average {r['load_average']}; seconds of "
          f"{r['clock']}; speed-up = median over {r['rounds']} interleaved rounds of peer / ours [min-max]\n")
    peers = r["peers"]
    print(f"1. PGD-{peers['pgd_steps']} (batch {peers['pgd_batch']}), torchattacks / ours:")
    for model_name, by_norm in peers["pgd"].items():
        if isinstance(by_norm, str):
            print(f"   {model_name}: {by_norm}")
            continue
        for norm, v in by_norm.items():
            print(f"   {model_name:22s} {norm:5s} {_verdict(v)}")
    print(f"   TRADES step (K = {TRADES_SETTINGS['steps']}, batch {peers['trades_batch']}), authors' "
          "trades.py / ours:")
    for model_name, v in peers["trades"].items():
        print(f"   {model_name:22s}       {_verdict(v)}")
    e = r["epochs"]
    print(f"\n2. one train.fit epoch of a fresh book SmallCNN ({e['source']}, batch "
          f"{e['batch_size']}), seconds:")
    print(f"   {'objective':24s}" + "".join(f"{p:>10s}" for p in PHASES) + f"{'total':>9s}{'images/s':>10s}")
    for name, v in e["objectives"].items():
        print(f"   {name:24s}" + "".join(f"{v['seconds'][p]:10.3f}" for p in PHASES)
              + f"{v['total_seconds']:9.2f}{v['images_per_second']:10.0f}")
    g = r["efficiency"]
    print(f"\n3. fraction of the large-GEMM peak ({g['gemm_peak_gflops']:.1f} GFLOP/s):")
    for name, v in g["steps"].items():
        print(f"   {name:50s} {v['seconds'] * 1000:8.1f} ms {v['gflops']:6.1f} GFLOP/s "
              f"{100 * v['fraction_of_peak']:5.1f}%")


def measure(rounds: int, epoch_rounds: int) -> dict:
    """Everything ``make bench`` writes to build/bench.json (sections 1-3 of the module docstring)."""
    import os
    clock = "process CPU time (one thread)" if _clock() is time.process_time else "wall time"
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "clock": clock,
              "rounds": rounds, "load_average": [round(v, 2) for v in os.getloadavg()]}
    result["peers"] = peer_ratios(rounds)
    result["epochs"] = epoch_phases(epoch_rounds)
    result["efficiency"] = efficiency(result["peers"], rounds)
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    return result


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
        print(f"{bench.name:62s} {median:8.3f}s {bench.target_seconds:7.3f}s "
              f"{median / bench.target_seconds:6.2f}  {'ok' if ok else 'SLOW'}")
    return all_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tradeoffs.book.bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7,
                        help="interleaved rounds per comparison (default 7)")
    parser.add_argument("--epoch-repeats", type=int, default=3, help="rounds of the epoch phases (default 3)")
    out = (paths.checkout_root() or Path.cwd()) / "build" / "bench.json"
    parser.add_argument("--out", type=Path, default=out,
                        help="where the measurements go (default: build/bench.json in the checkout)")
    args = parser.parse_args(argv)
    result = measure(max(args.repeats, 3), max(args.epoch_repeats, 1))
    print_report(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {args.out}")
    return 0 if run_targets(args.repeats) else 1


if __name__ == "__main__":
    sys.exit(main())
