"""Time the paper profile's networks on this machine's GPU: what ``scripts/gpu_check.sh`` records.

For every architecture of the paper profile, a training run of the paper's objective for that model (batch
size, attack steps) is timed, and the time is divided by its forward+backward passes of one image (the unit of
:mod:`tradeoffs.book.cost`); each CIFAR-10 model's epoch (50k images; VGG11/4: chapter 3's 2k) is reported
from the same run. The data are random images of the right shape: the cost of a step does not depend on the
pixels.

    python -m tradeoffs.book.gpu_check --out book/gpu_check.json \
        [--batches 50] [--device cuda] [--chapters DIR]

``--batches``: the minibatches timed per model after one of warm-up (an epoch is extrapolated from them, and
the record says so); ``0`` times whole epochs. ``--chapters DIR``: first execute every chapter in the paper
profile into ``DIR`` (executed notebooks, claims and run records) with CIFAR-10 switched off
(``TRADEOFFS_CIFAR10=off``): the MNIST parts at full settings, their wall times recorded too.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

# model -> (architecture of tradeoffs.book.cost, objective, attack steps K, batch size, images per epoch)
RUNS = {
    "mnist_mlp_joint": ("mlp", "trades", 40, 100, 50_000),              # chapters 3 and 5
    "mnist_small_cnn_trades": ("small_cnn", "trades", 40, 128, 50_000),  # chapter 4, Tables 5-6
    "mnist_trades_net_trades": ("trades_net", "trades", 20, 128, 50_000),  # chapter 4, Tables 3-4
    "mnist_madry_cnn_madry": ("madry_cnn", "madry", 40, 50, 50_000),  # chapter 2 (l2 there; same cost)
    "cifar10_vgg11_quarter_joint": ("vgg11_quarter", "trades", 15, 100, 2_000),  # chapter 3, Table 2
    "cifar10_resnet18_trades": ("resnet18", "trades", 10, 128, 50_000),  # chapter 4, Table 4 (and chapter 2)
    "cifar10_wrn34_10_trades": ("wrn34_10", "trades", 10, 128, 50_000),  # chapter 4, Table 5
}
PASSES = {"standard": lambda k: 1, "madry": lambda k: k + 1, "trades": lambda k: k + 2}


def time_run(name: str, device, batches: int) -> dict:
    """Seconds of `batches` training steps of model `name` (after one warm-up step), per step and per pass."""
    import torch

    from tradeoffs import train
    from tradeoffs.book import cost

    arch, objective_name, k, batch_size, epoch_images = RUNS[name]
    model, shape = cost._build(arch)
    model = model.to(device)
    eps, step = (0.031, 0.007) if shape[0] == 3 else (0.3, 0.01)
    objective = {"standard": train.standard(), "madry": train.adversarial(eps=eps, step_size=step, steps=k),
                 "trades": train.trades(beta=6.0, eps=eps, step_size=step, steps=k)}[objective_name]
    steps = math.ceil(epoch_images / batch_size) if batches == 0 else batches
    x = torch.rand(batch_size, *shape, device=device)
    y = torch.randint(0, 10, (batch_size,), device=device)
    fit = {"batch_size": batch_size, "lr": 0.01, "generator": torch.Generator().manual_seed(0),
           "show_progress": False}
    train.fit(model, x, y, objective, steps=1, **fit)  # warm-up: kernels chosen, memory allocated
    _synchronize(device)
    started = time.perf_counter()
    train.fit(model, x, y, objective, steps=steps, **fit)
    _synchronize(device)
    seconds = time.perf_counter() - started
    passes = steps * batch_size * PASSES[objective_name](k)
    return {"architecture": arch, "objective": f"{objective_name}, K = {k}", "batch_size": batch_size,
            "steps_timed": steps, "seconds": round(seconds, 3), "seconds_per_pass": seconds / passes,
            "epoch_seconds": seconds / steps * math.ceil(epoch_images / batch_size),
            "epoch": "timed" if batches == 0 else f"extrapolated from {steps} steps"}


def run_chapters(out: Path, device: str) -> dict[str, dict]:
    """Execute every chapter in the paper profile into `out` with CIFAR-10 off; {chapter: wall seconds,
    status}."""
    import os

    from tradeoffs import data
    from tradeoffs.book import claims, profiles, runner

    os.environ[data.CIFAR10_SWITCH] = "off"
    os.environ[claims.RESULTS_ENV] = str((out / "results").resolve())
    done = {}
    for name in profiles.CHAPTERS:
        try:
            record = runner.execute(name, "paper", device, 0, output_dir=out / "chapters",
                                    cell_timeout=24 * 3600)
        except runner.ChapterFailed as failure:
            print(f"{name}: {failure}", flush=True)
            record = json.loads((out / "results" / f"{name}.run.json").read_text())
        done[name] = {k: record[k] for k in ("profile", "status", "wall_seconds", "peak_memory_mb", "error")}
        print(f"{name}: {record['status']}, {record['wall_seconds']:.0f} s", flush=True)
    return done


def _synchronize(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    import torch

    from tradeoffs import dryrun
    from tradeoffs.book.runtime import resolve_device

    parser = argparse.ArgumentParser(prog="python -m tradeoffs.book.gpu_check",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--chapters", type=Path,
                        help="execute the chapters' MNIST parts (paper profile) into DIR")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    chapters = run_chapters(args.chapters, args.device) if args.chapters else {}
    runs = {}
    for name in RUNS:
        runs[name] = time_run(name, device, args.batches)
        print(f"{name}: {runs[name]['seconds_per_pass'] * 1e3:.3f} ms per pass, epoch "
              f"{runs[name]['epoch_seconds'] / 60:.1f} min ({runs[name]['epoch']})", flush=True)
    if device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
    else:
        gpu = f"none ({platform.processor() or 'CPU'})"
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "gpu": gpu, "device": str(device),
        "torch": torch.__version__, "dry_run": dryrun.active(),
        "seconds_per_pass": {r["architecture"]: r["seconds_per_pass"] for r in runs.values()}, "runs": runs,
        "chapters": chapters,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
