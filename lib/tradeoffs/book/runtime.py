"""What every chapter does first: check its parameters, pick the device, seed, open the claims record."""

from __future__ import annotations

import dataclasses
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
    show_settings(run)
    return run


def settings_rows(settings: Any, prefix: str = "") -> list[list[str]]:
    """[name, value] for every setting; a nested settings dataclass gives dotted names (``mnist.epochs``)."""
    rows = []
    for field, value in vars(settings).items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            rows += settings_rows(value, f"{prefix}{field}.")
        else:
            rows.append([f"`{prefix}{field}`", _setting_text(value)])
    return rows


def _setting_text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ", ".join(_setting_text(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_setting_text(v)}" for k, v in value.items()) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return "; ".join(f"{k} = {_setting_text(v)}" for k, v in vars(value).items())
    return "none" if value is None else str(value).replace("|", "\\|")


def settings_markdown(run: Run) -> str:
    """The run (profile, device, seed, torch) as a collapsed block: the profile's settings, one per row."""
    table = style.markdown_table(["setting", "value"], settings_rows(run.settings))
    return (f":::{{dropdown}} Settings: profile `{run.profile}`, device `{run.device}`, seed {run.seed}, "
            f"torch {torch.__version__}\n{table}\n:::\n")


def show_settings(run: Run) -> None:
    """In a notebook, the collapsed settings table (:func:`settings_markdown`); elsewhere, one line per
    setting."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(Markdown(settings_markdown(run)))
        return
    print(f"{run.chapter}: profile={run.profile}, device={run.device}, seed={run.seed}, "
          f"torch {torch.__version__}")
    for name, value in settings_rows(run.settings):
        print(f"  {name.strip('`')} = {value}")
