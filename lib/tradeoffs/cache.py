"""The model cache: a trained model is stored once, keyed by everything that determines its weights.

    model = cache.trained_model("mnist_madry_eps0.3", settings, build=SmallCNN,
                                train=lambda model, checkpoint: train.fit(model, ..., checkpoint=checkpoint),
                                device=device)

The key is a hash of ``name``, ``settings`` (a JSON-able dict: data subset, epochs, learning rate,
eps, seed, ...) and ``TRAINING_CODE_VERSION``. An entry is ``<data dir>/models/<name>-<key>.pt``
(a ``state_dict``) with its SHA-256 beside it (``.pt.sha256``) and the settings in readable form
(``.json``). A hit is loaded with ``torch.load(..., weights_only=True)`` (never an arbitrary
pickle) after its SHA-256 is checked; a corrupt or truncated entry is reported, deleted and
rebuilt, never loaded. A miss trains with a checkpoint file beside the entry, so an interrupted
training resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from tradeoffs.data import data_dir, sha256_file

TRAINING_CODE_VERSION = "1"
"""Bump when a change to the training code changes the weights it produces (invalidates every entry)."""

__all__ = ["TRAINING_CODE_VERSION", "cache_key", "models_dir", "trained_model"]


def models_dir() -> Path:
    """``<data dir>/models`` (``TRADEOFFS_DATA`` moves the data directory)."""
    return data_dir() / "models"


def cache_key(name: str, settings: dict) -> str:
    """16 hex digits of SHA-256 over the name, the settings (sorted JSON) and the training-code version."""
    text = json.dumps({"name": name, "settings": settings, "version": TRAINING_CODE_VERSION},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def trained_model(name: str, settings: dict, build: Callable[[], nn.Module],
                  train: Callable[[nn.Module, Path], object], *, device: torch.device | str = "cpu") -> nn.Module:
    """The model ``build()`` trained by ``train(model, checkpoint_path)``, from the cache when it holds it.

    The initial weights are drawn with the seed ``settings.get("seed", 0)`` inside a forked random
    state, so a model does not depend on what ran before it, and the caller's random state is the
    same whether the cache hit or not. Returns the model on ``device`` in eval mode.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"model name must be a plain file name, got {name!r}")
    entry = models_dir() / f"{name}-{cache_key(name, settings)}.pt"
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(int(settings.get("seed", 0)))
        model = build().to(device)
        if _load(entry, model, device):
            return model.eval()
        entry.parent.mkdir(parents=True, exist_ok=True)
        checkpoint = entry.with_suffix(".ckpt")
        train(model, checkpoint)
        _store(entry, model, name, settings)
        checkpoint.unlink(missing_ok=True)
    return model.eval()


def _load(entry: Path, model: nn.Module, device: torch.device) -> bool:
    """Load ``entry`` into ``model`` if it is present and intact; delete it if it is corrupt."""
    if not entry.exists():
        return False
    sidecar = _sidecar(entry)
    expected = sidecar.read_text().strip() if sidecar.exists() else None
    problem = None
    if expected is None:
        problem = "its SHA-256 file is missing"
    elif sha256_file(entry) != expected:
        problem = "its SHA-256 does not match (truncated or modified)"
    else:
        try:
            model.load_state_dict(torch.load(entry, map_location=device, weights_only=True))
            return True
        except Exception as error:  # a valid file of another architecture, or unreadable
            problem = f"it does not load ({type(error).__name__}: {str(error)[:200]})"
    warnings.warn(f"model cache entry {entry.name} is corrupt: {problem}; deleting it and training again",
                  stacklevel=3)
    entry.unlink(missing_ok=True)
    sidecar.unlink(missing_ok=True)
    return False


def _store(entry: Path, model: nn.Module, name: str, settings: dict) -> None:
    """Write the state_dict atomically, then its SHA-256 and a readable description."""
    tmp = entry.with_name(entry.name + ".tmp")
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    digest = sha256_file(tmp)
    os.replace(tmp, entry)
    _sidecar(entry).write_text(digest + "\n")
    entry.with_suffix(".json").write_text(json.dumps(
        {"name": name, "settings": settings, "training_code_version": TRAINING_CODE_VERSION, "sha256": digest},
        indent=2, sort_keys=True, default=str) + "\n")


def _sidecar(entry: Path) -> Path:
    return entry.with_name(entry.name + ".sha256")
