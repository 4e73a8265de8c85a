"""Two caches under ``<data dir>``: trained models (``models/``) and computed results (``results/``).

**The model cache** stores a trained model once, keyed by everything that determines its weights.

    model = store.trained_model("mnist_madry_eps0.3", settings, build=SmallCNN,
                                train=lambda model, checkpoint: train.fit(model, ..., checkpoint=checkpoint),
                                device=device)

The key is a hash of ``name``, ``settings`` (a JSON-able dict: data subset, epochs, learning rate,
eps, seed, ...) and ``TRAINING_CODE_VERSION``. An entry is ``<data dir>/models/<name>-<key>.pt``
(a ``state_dict``) with its SHA-256 beside it (``.pt.sha256``) and the settings in readable form
(``.json``). A hit is loaded with ``torch.load(..., weights_only=True)`` (never an arbitrary
pickle) after its SHA-256 is checked; a corrupt or truncated entry is reported, deleted and
rebuilt, never loaded. A miss trains with a checkpoint file beside the entry, so an interrupted
training resumes where it stopped.

**The result cache** (:func:`memoized`) stores what a deterministic experiment function returns, so a
warm execution of the book reads its numbers instead of recomputing them:

    @store.memoized
    def theorem2_grid(dims, kappas, eps_grid, seed: int, brute_force_dims=(2, 5)) -> list[dict]: ...

Its key is a hash of the function's name, every argument (tensors and models by the SHA-256 of their
values), the source of the whole ``tradeoffs`` package and the versions of torch, numpy and scipy: any
change to the library's code recomputes every result (models, costly to retrain, are keyed by the manual
``TRAINING_CODE_VERSION`` instead). Entries are checked and loaded like models (SHA-256, then
``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import inspect
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from tradeoffs.data import data_dir, sha256_file

TRAINING_CODE_VERSION = "1"
"""Bump when a change to the training code changes the weights it produces (invalidates every entry)."""

__all__ = ["TRAINING_CODE_VERSION", "cache_key", "library_digest", "memoized", "models_dir", "results_dir",
           "tensor_digest", "trained_model"]


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
        def load(path: Path) -> None:
            model.load_state_dict(torch.load(path, map_location=device, weights_only=True))
        if _read_checked(entry, load, "model", "training again") is not _MISSING:
            return model.eval()
        entry.parent.mkdir(parents=True, exist_ok=True)
        checkpoint = entry.with_suffix(".ckpt")
        train(model, checkpoint)
        _store(entry, model, name, settings)
        checkpoint.unlink(missing_ok=True)
    return model.eval()


def _store(entry: Path, model: nn.Module, name: str, settings: dict) -> None:
    """Write the state_dict atomically, then its SHA-256 and a readable description."""
    digest = _write_checked(entry, {k: v.detach().cpu() for k, v in model.state_dict().items()})
    entry.with_suffix(".json").write_text(json.dumps(
        {"name": name, "settings": settings, "training_code_version": TRAINING_CODE_VERSION, "sha256": digest},
        indent=2, sort_keys=True, default=str) + "\n")


_MISSING = object()


def _read_checked(entry: Path, read: Callable[[Path], Any], kind: str, redo: str) -> Any:
    """``read(entry)`` if ``entry`` exists and matches its SHA-256 sidecar, else ``_MISSING``. A corrupt entry
    (no sidecar, another SHA-256, or ``read`` fails) is reported and deleted, never passed to ``read``."""
    if not entry.exists():
        return _MISSING
    sidecar = _sidecar(entry)
    if not sidecar.exists():
        problem = "its SHA-256 file is missing"
    elif sha256_file(entry) != sidecar.read_text().strip():
        problem = "its SHA-256 does not match (truncated or modified)"
    else:
        try:
            return read(entry)
        except Exception as error:  # e.g. a valid file of another architecture
            problem = f"it does not load ({type(error).__name__}: {str(error)[:200]})"
    warnings.warn(f"{kind} cache entry {entry.name} is corrupt: {problem}; deleting it and {redo}", stacklevel=3)
    entry.unlink(missing_ok=True)
    sidecar.unlink(missing_ok=True)
    return _MISSING


def _write_checked(entry: Path, obj: Any) -> str:
    """``torch.save(obj)`` to ``entry`` atomically, then its SHA-256 beside it; returns the SHA-256."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_name(entry.name + ".tmp")
    torch.save(obj, tmp)
    digest = sha256_file(tmp)
    os.replace(tmp, entry)
    _sidecar(entry).write_text(digest + "\n")
    return digest


def _sidecar(entry: Path) -> Path:
    return entry.with_name(entry.name + ".sha256")


# ------------------------------------------------------------------------------ the result cache

F = TypeVar("F", bound=Callable[..., Any])

UNKEYED_ARGUMENTS = frozenset({"show_progress", "desc"})
"""Arguments that do not change a result (progress display): left out of the key."""


def results_dir() -> Path:
    """``TRADEOFFS_RESULT_CACHE`` if set (the tests use a fresh one), else ``<data dir>/results``."""
    override = os.environ.get("TRADEOFFS_RESULT_CACHE")
    return Path(override) if override else data_dir() / "results"


def tensor_digest(*tensors: torch.Tensor | np.ndarray) -> str:
    """16 hex digits of SHA-256 over the values' bytes: identifies data (a test set, a constructed dataset) in a
    cache key."""
    digest = hashlib.sha256()
    for t in tensors:
        array = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t
        digest.update(np.ascontiguousarray(array).view(np.uint8).reshape(-1))
    return digest.hexdigest()[:16]


@functools.cache
def library_digest() -> str:
    """SHA-256 over the source of every module of the ``tradeoffs`` package: part of every result's key."""
    digest = hashlib.sha256()
    package = Path(__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def memoized(function: F) -> F:
    """Decorate a deterministic experiment function so that its result is computed once per key and then read
    from ``<data dir>/results/<module>.<function>-<key>.pt``.

    The key covers the function, all its arguments except ``UNKEYED_ARGUMENTS``, :func:`library_digest`
    and the numerical libraries' versions. Arguments must be plain values, tuples, lists, dicts, dataclasses,
    tensors, arrays, devices or modules (by their ``state_dict``); a random generator is refused (its state
    is not an input we can key on: pass a seed). The function runs with the global torch random state
    seeded from its name and arguments inside a forked random state, so its result depends on its arguments
    only (not on what ran before it, nor on an unrelated edit of the library), and the
    caller's random state is the same after a hit as after a miss. The result may hold the same kinds of
    values and ``tradeoffs`` dataclasses; tensors come back on the device of the first tensor or module
    argument (else the CPU). A miss returns the entry it wrote, read back, so a hit and a miss return equal
    values.
    """
    signature = inspect.signature(function)
    name = f"{function.__module__.removeprefix('tradeoffs.')}.{function.__qualname__}"
    seed_name = f"{function.__module__.rsplit('.', 1)[-1]}.{function.__qualname__}"  # where it lives is no input

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = {k: v for k, v in bound.arguments.items() if k not in UNKEYED_ARGUMENTS}
        call = _sha256_json({"function": seed_name, "arguments": _fingerprint(arguments, name)})
        key = _sha256_json({"call": call, "code": library_digest(),
                            "versions": [torch.__version__, np.__version__, _scipy_version()]})
        entry = results_dir() / f"{name}-{key[:16]}.pt"
        stored = _read_checked(entry, _load_value, "result", "computing again")
        if stored is _MISSING:
            with torch.random.fork_rng():
                torch.manual_seed(int(call[:15], 16))  # from the call alone: editing the library keeps the seed
                value = function(*args, **kwargs)
            _write_checked(entry, {"function": name, "value": _storable(value)})
            try:  # a miss returns what a hit will read, and a value that cannot be read back fails now
                stored = _load_value(entry)
            except Exception as error:
                entry.unlink()
                raise TypeError(f"{name} returned a value the result cache cannot read back with "
                                f"weights_only=True ({error}); return numbers, strings, tensors, arrays, "
                                "containers of them or tradeoffs dataclasses") from error
        return _restore(stored, _first_device(bound.arguments.values()))
    return wrapper  # type: ignore[return-value]


def _sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _load_value(entry: Path) -> Any:
    return torch.load(entry, map_location="cpu", weights_only=True)["value"]


def _scipy_version() -> str | None:
    try:
        import scipy
    except ImportError:
        return None
    return scipy.__version__


def _fingerprint(value: Any, where: str) -> Any:
    """A JSON-able stand-in for an argument that changes exactly when its value does."""
    if isinstance(value, (np.bool_, np.integer, np.floating)):  # before float: np.float64 is a float
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_fingerprint(v, where) for v in value]
    if isinstance(value, dict):
        return [[_fingerprint(k, where), _fingerprint(v, where)] for k, v in value.items()]
    if isinstance(value, torch.Tensor):
        return {"tensor": tensor_digest(value), "dtype": str(value.dtype), "shape": list(value.shape),
                "device": value.device.type}
    if isinstance(value, np.ndarray):
        return {"array": tensor_digest(value), "dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, nn.Module):
        return {"module": type(value).__qualname__, "state": _fingerprint(value.state_dict(), where)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"dataclass": type(value).__qualname__,
                "fields": _fingerprint({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, where)}
    if isinstance(value, (np.random.Generator, torch.Generator)):
        raise TypeError(f"{where}: a memoized function cannot take a random generator (its state is not part "
                        "of the key); pass an integer seed instead")
    raise TypeError(f"{where}: cannot key the result cache on an argument of type {type(value).__name__}")


def _storable(value: Any) -> Any:
    """``value`` in the types that ``torch.load(weights_only=True)`` reads back."""
    if isinstance(value, (np.bool_, np.integer, np.floating)):  # before float: np.float64 is a float
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(value))}
    if isinstance(value, (tuple, list)):
        return type(value)(_storable(v) for v in value)
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and \
            type(value).__module__.startswith("tradeoffs."):
        return {"__dataclass__": f"{type(value).__module__}:{type(value).__qualname__}",
                "fields": {f.name: _storable(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    raise TypeError(f"cannot store a result of type {type(value).__name__} in the result cache")


def _restore(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(_restore(v, device) for v in value)
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return value["__ndarray__"].numpy().copy()
        if "__dataclass__" in value:
            module, qualname = value["__dataclass__"].split(":")
            cls = getattr(importlib.import_module(module), qualname) if module.startswith("tradeoffs.") else None
            if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
                raise TypeError(f"result cache entry names an unknown dataclass {value['__dataclass__']!r}")
            return cls(**{k: _restore(v, device) for k, v in value["fields"].items()})
        return {k: _restore(v, device) for k, v in value.items()}
    return value


def _first_device(arguments) -> torch.device:
    for value in arguments:
        if isinstance(value, torch.Tensor):
            return value.device
        if isinstance(value, nn.Module):
            return next(iter(value.parameters()), torch.empty(0)).device
    return torch.device("cpu")
