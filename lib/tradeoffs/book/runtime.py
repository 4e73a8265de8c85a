"""What every chapter does first: check its parameters, pick the device, seed, open the claims record."""

from __future__ import annotations

import numbers
import random
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tradeoffs import dryrun
from tradeoffs.book import claims, profiles, style

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


@dataclass(frozen=True)
class Run:
    """A chapter's execution: its profile's settings, the device and the seed."""

    chapter: str
    profile: str
    device: torch.device
    seed: int
    settings: Any


def resolve_device(device: str) -> torch.device:
    """``auto`` is CUDA when present, else the CPU; ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` as named."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    named = isinstance(device, str) and (device in ("cpu", "cuda", "mps")
                                         or re.fullmatch(r"cuda:\d+", device))
    if not named:
        raise ValueError(f"unknown device {device!r}; valid devices: {', '.join(DEVICES)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA GPU; use "
                         "device='auto' or 'cpu'")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' asked for, but torch sees no Apple GPU; use device='auto' or 'cpu'")
    return torch.device(device)


def check_seed(seed: object) -> int:
    """`seed` as an int; a clear ValueError unless it is a non-negative integer (``1.7``, ``-1``, ``"0"``)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer (0, 1, 2, ...), got {seed!r} "
                         f"({type(seed).__name__})")
    return int(seed)


def check_parameters(profile: str, device: str, seed: object) -> None:
    """The chapter parameters, checked before anything runs: a clear ValueError for an unknown profile or
    device (or one this machine lacks) and for a seed that is not a non-negative integer."""
    profiles.check_profile(profile)
    resolve_device(device)
    check_seed(seed)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy's global generator and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def start_chapter(chapter: str, profile: str = "cpu", device: str = "auto", seed: int = 0, *,
                  dry_run: bool = False) -> Run:
    """Validate the papermill parameters, seed, set the figure style and open the claims record
    (``dry_run``, also set by :func:`tradeoffs.dryrun.active`: a dry run of the profile, whose claims are
    recorded as ``dry-run``, never reproduced)."""
    settings = profiles.settings(chapter, profile)
    run = Run(chapter=chapter, profile=profile, device=resolve_device(device), seed=check_seed(seed),
              settings=settings)
    seed_everything(run.seed)
    style.use_book_style()
    claims.start_record(chapter, profile, dry_run=dry_run or dryrun.active())
    print(f"{chapter}: profile={profile}, device={run.device}, seed={run.seed}, torch {torch.__version__}")
    for field, value in vars(settings).items():
        print(f"  {field} = {value}")
    return run
