"""One checked store under ``<data dir>``: trained models (``models/``) and computed results (``results/``).

**Trained models** are keyed by the call that trains them:

    model = store.fit(lambda: models.SmallCNN(), (x, y), train.adversarial(eps=0.3, steps=40, step_size=0.01),
                      epochs=100, batch_size=128, lr=0.01, milestones=(55,), device=device, name="madry")

The key covers the built model (its architecture, ``repr(model)``, and its initial weights, so the seed and a
warm start ``init=`` are in it), the data (by the digest of their values), the objective (a frozen dataclass
of ``tradeoffs.train``: every field), every argument of :func:`tradeoffs.train.fit` (defaults included), and
the source of the training code (the modules the objective, the model and ``train.fit`` run, comments and
docstrings ignored). Change any of them and the store trains a new model; ``name`` only labels the progress
bar and the entry's readable description.

**Results** (:func:`memoized`): what a deterministic experiment function returns, keyed by the function, every
argument (tensors and models by the digest of their values), the source of the whole package and the numeric
libraries' versions; the function runs with the torch random state seeded from its call.

**Every entry** is one file, written atomically under a temporary name of its own (two writers never share
one), that carries the SHA-256 of its content in its first line. A reader checks the SHA-256 before anything
is unpickled and unpickles with ``torch.load(..., weights_only=True)`` only; an entry that fails the check is
reported, deleted and rebuilt. An entry that passes the check is never deleted: an error while loading it
(out of memory, a device error) is raised as it is. A process computing an entry holds a lock on it
(``fcntl.flock``), so a second process asking for the same entry waits and then reads it instead of
computing it again.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import hashlib
import importlib
import inspect
import io
import json
import os
import sys
import tempfile
import time
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from tradeoffs import data, dryrun

try:
    import fcntl
except ImportError:  # not POSIX (Windows): no file locks
    fcntl = None

FORMAT = 2
"""The entry format (part of every key, so entries of another format are never read as this one)."""

HEADER = b"tradeoffs-store sha256="

__all__ = ["CorruptEntry", "Fitted", "cached", "fingerprint", "fit", "fitted", "key", "library_digest",
           "locked", "memoized", "models_dir", "read_entry", "results_dir", "sha256_file", "tensor_digest",
           "training_code_digest", "write_atomic", "write_entry"]


def models_dir() -> Path:
    """``<data dir>/models`` (``TRADEOFFS_DATA`` moves the data directory); in a dry run
    (:mod:`tradeoffs.dryrun`), whose capped loops must never serve a real run, ``<data
    dir>/dry-run/models``."""
    return _dry_run_apart(data.data_dir()) / "models"


def results_dir() -> Path:
    """``TRADEOFFS_RESULT_CACHE`` if set (the tests use a fresh one), else ``<data dir>/results``; a dry run's
    in a ``dry-run`` folder of its own, as for :func:`models_dir`."""
    override = os.environ.get("TRADEOFFS_RESULT_CACHE")
    return Path(override) / ("dry-run" if dryrun.active() else "") if override else \
        _dry_run_apart(data.data_dir()) / "results"


def _dry_run_apart(root: Path) -> Path:
    return root / "dry-run" if dryrun.active() else root


# ------------------------------------------------------------------------------ files


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically: to a temporary file of this writer's own in the same
    directory, flushed to disk, then renamed over ``path``. A reader sees the old file or the new one, never a
    mix, and two writers of the same path never touch each other's temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates owner-only files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class CorruptEntry(Exception):
    """An entry whose content does not match the SHA-256 it carries (truncated, edited, or not an entry)."""


def write_entry(path: Path, payload: bytes) -> str:
    """Write ``payload`` with its SHA-256 in a first line, atomically (:func:`write_atomic`); return the
    SHA-256."""
    digest = hashlib.sha256(payload).hexdigest()
    write_atomic(path, HEADER + digest.encode() + b"\n" + payload)
    return digest


def read_entry(path: Path) -> bytes | None:
    """The payload of the entry at ``path`` after checking its SHA-256; None when there is no entry.
    Raises :class:`CorruptEntry` when the check fails."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    header, newline, payload = raw.partition(b"\n")
    if not newline or not header.startswith(HEADER):
        raise CorruptEntry("it does not start with the store's SHA-256 line")
    if hashlib.sha256(payload).hexdigest().encode() != header[len(HEADER):]:
        raise CorruptEntry("its SHA-256 does not match its content (truncated or modified)")
    return payload


_warned_no_lock = False


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` (``fcntl.flock``): a second process asking for the same entry
    waits here until the first has written it. Where there are no file locks (not POSIX) this says so once and
    does not lock: entries stay consistent, but two processes may compute the same entry."""
    global _warned_no_lock
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        if not _warned_no_lock:
            warnings.warn("no file locks on this platform: two processes may compute the same store entry "
                          "(each write stays atomic and checked)", stacklevel=3)
            _warned_no_lock = True
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_MISSING = object()


def _load(path: Path, decode: Callable[[bytes], Any], kind: str, redo: str) -> Any:
    """``decode(payload)`` of a checked entry, or ``_MISSING`` when there is none or it failed its check (then
    it is reported and deleted). An error of ``decode`` on a checked entry propagates and the entry stays."""
    try:
        payload = read_entry(path)
    except CorruptEntry as problem:
        warnings.warn(f"{kind} entry {path.name} is corrupt: {problem}; deleting it and {redo}", stacklevel=4)
        path.unlink(missing_ok=True)
        return _MISSING
    if payload is None:
        return _MISSING
    try:
        return decode(payload)
    except Exception as error:
        error.add_note(f"the {kind} entry {path} passed its SHA-256 check and is kept; delete it "
                       "to rebuild it")
        raise


def _encode(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _decode(payload: bytes) -> Any:
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)


# ------------------------------------------------------------------------------ keys


def tensor_digest(*tensors: torch.Tensor | np.ndarray) -> str:
    """16 hex digits of SHA-256 over the values' bytes: identifies data (a test set, a constructed dataset) in
    a key."""
    digest = hashlib.sha256()
    for t in tensors:
        array = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t
        digest.update(np.ascontiguousarray(array).view(np.uint8).reshape(-1))
    return digest.hexdigest()[:16]


def key(*parts: Any) -> str:
    """The store's one key function: 16 hex digits of SHA-256 over :func:`fingerprint` of ``parts``."""
    return _sha256_json(fingerprint(list(parts)))[:16]


def _sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def fingerprint(value: Any, where: str = "store key", *, generators: bool = False) -> Any:
    """A JSON-able stand-in for ``value`` that changes exactly when its value does: plain values, tuples,
    lists, dicts, dataclasses (type and fields), tensors and arrays (digest, dtype, shape), modules (type and
    ``state_dict``), module-level functions (by name), devices. A random generator is refused unless
    ``generators`` (then keyed by its state): a hit does not advance it."""
    f = functools.partial(fingerprint, where=where, generators=generators)
    if isinstance(value, (np.bool_, np.integer, np.floating)):  # before float: np.float64 is a float
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [f(v) for v in value]
    if isinstance(value, dict):
        return [[f(k), f(v)] for k, v in value.items()]
    if isinstance(value, torch.Tensor):
        return {"tensor": tensor_digest(value), "dtype": str(value.dtype), "shape": list(value.shape),
                "device": value.device.type}
    if isinstance(value, np.ndarray):
        return {"array": tensor_digest(value), "dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, nn.Module):
        return {"module": type(value).__qualname__, "state": f(value.state_dict())}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"dataclass": type(value).__qualname__,
                "fields": f({field.name: getattr(value, field.name) for field in dataclasses.fields(value)})}
    if isinstance(value, torch.Generator) and generators:
        return {"generator": tensor_digest(value.get_state()), "device": str(value.device)}
    if isinstance(value, (np.random.Generator, torch.Generator)):
        raise TypeError(f"{where}: cannot take a random generator (its state is not part of the "
                        "key); pass an integer seed instead")
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        if "<" in value.__qualname__:
            raise TypeError(f"{where}: cannot key on the lambda or nested function "
                            f"{value.__qualname__}; use a module-level function or a dataclass")
        return {"function": f"{value.__module__}.{value.__qualname__}"}
    raise TypeError(f"{where}: cannot key the store on an argument of type {type(value).__name__}")


@functools.cache
def library_digest() -> str:
    """SHA-256 over the source of every module of the ``tradeoffs`` package: part of every result's key."""
    digest = hashlib.sha256()
    package = Path(__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.cache
def _module_code(name: str) -> str:
    """SHA-256 of a module's syntax tree without docstrings: comments, docstrings and layout do not count."""
    tree = ast.parse(Path(sys.modules[name].__file__).read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def _tradeoffs_modules(obj: Any) -> set[str]:
    """The ``tradeoffs`` modules that define ``obj``, the types of its dataclass fields and the functions in
    them."""
    found = set()
    module = getattr(obj, "__module__", None) if isinstance(obj, (type, types.FunctionType)) \
        else type(obj).__module__
    if module and module.startswith("tradeoffs.") and module in sys.modules:
        found.add(module)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for field in dataclasses.fields(obj):
            found |= _tradeoffs_modules(getattr(obj, field.name))
    return found


def training_code_digest(*objects: Any) -> str:
    """16 hex digits over the code that trains: ``tradeoffs.train`` and every ``tradeoffs`` module it uses
    (transitively, the store excepted), and the modules that define ``objects`` (the objective, the model)."""
    pending = {"tradeoffs.train"}.union(*(_tradeoffs_modules(o) for o in objects))
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen or name == __name__:
            continue
        seen.add(name)
        for value in vars(sys.modules[name]).values():
            used = value.__name__ if isinstance(value,
                                                types.ModuleType) else getattr(value, "__module__", None)
            if isinstance(used, str) and used.startswith("tradeoffs.") and used in sys.modules and \
                    (isinstance(value, (types.ModuleType, type, types.FunctionType))):
                pending.add(used)
    return _sha256_json({name: _module_code(name) for name in sorted(seen)})[:16]


# ------------------------------------------------------------------------------ trained models


@dataclasses.dataclass
class Fitted:
    """A trained model from :func:`fitted`, with the record of its training run (``train_seconds``,
    ``device``, ``torch_threads``, ``trained_at``) and whether the store already held it."""

    model: nn.Module
    record: dict
    hit: bool
    entry: Path


def fit(build: Callable[[], nn.Module], train_data: tuple[torch.Tensor, torch.Tensor], objective: Callable, *,
        device: torch.device | str = "cpu", init: nn.Module | None = None, init_seed: int | None = None,
        name: str | None = None, **fit_kw: Any) -> nn.Module:
    """``build()`` trained by ``train.fit(model, *train_data, objective, **fit_kw)``, from the store when it
    holds the model this call trains (see the module's docstring for the key). Returns the model on
    ``device``, in eval mode. ``init``: a trained model of the same architecture to start from (its weights
    replace the initial ones, and so enter the key). ``init_seed`` (default: ``fit_kw["seed"]``) seeds torch's
    random state before ``build()``, so the initial weights and every random draw of the training (attack
    starts, noise, dropout) come from it, whatever ran before; the caller's random state is left as it was."""
    return fitted(build, train_data, objective, device=device, init=init, init_seed=init_seed, name=name,
                  **fit_kw).model


def fitted(build: Callable[[], nn.Module], train_data: tuple[torch.Tensor, torch.Tensor], objective: Callable,
           *, device: torch.device | str = "cpu", init: nn.Module | None = None, init_seed: int | None = None,
           name: str | None = None, **fit_kw: Any) -> Fitted:
    """:func:`fit`, returning the model with its training record (:class:`Fitted`). A miss trains with a
    checkpoint beside the entry (``epochs=`` runs), so an interrupted training resumes where it stopped."""
    from tradeoffs import train

    x, y = train_data
    arguments = _fit_arguments(train.fit, fit_kw)
    init_seed = int(arguments["seed"] if init_seed is None else init_seed)
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(init_seed)
        model = build().to(device)
        if init is not None:
            model.load_state_dict(init.state_dict())
        where = f"store.fit({name or type(model).__name__})"
        call = {"architecture": repr(model), "initial_weights": fingerprint(model.state_dict(), where),
                "data": fingerprint([x, y], where), "objective": fingerprint(objective, where),
                "fit": fingerprint(arguments, where, generators=True), "init_seed": init_seed,
                "code": training_code_digest(objective, model), "format": FORMAT}
        entry = models_dir() / f"{_sha256_json(call)[:16]}.pt"
        with locked(entry):
            stored = _load(entry, _decode, "model", "training again")
            if stored is not _MISSING:
                model.load_state_dict(stored["state"])
                return Fitted(model.eval(), stored["record"], True, entry)
            checkpoint = entry.with_suffix(".ckpt") if arguments["epochs"] is not None else None
            started = time.perf_counter()
            train.fit(model, x.to(device), y.to(device), objective, checkpoint=checkpoint,
                      **{"desc": name or "training", **fit_kw})
            record = {"name": name, "train_seconds": round(time.perf_counter() - started, 3),
                      "device": str(device), "torch_threads": torch.get_num_threads(),
                      "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            write_entry(entry, _encode({"state": state, "record": record}))
            write_atomic(entry.with_suffix(".json"), (json.dumps(
                {"record": record, "objective": repr(objective), "fit": _readable(arguments),
                 "init_seed": init_seed, "warm_start": init is not None, "data": call["data"],
                 "architecture": repr(model)}, indent=2, default=str) + "\n").encode())
            if checkpoint is not None:
                checkpoint.unlink(missing_ok=True)
    return Fitted(model.eval(), record, False, entry)


UNKEYED_FIT_ARGUMENTS = frozenset({"show_progress", "desc", "checkpoint"})
"""Arguments of ``train.fit`` that do not change the weights it trains: left out of a model's key."""


def _fit_arguments(fit_function: Callable, fit_kw: dict) -> dict:
    """``fit_kw`` with ``train.fit``'s defaults filled in, less :data:`UNKEYED_FIT_ARGUMENTS`."""
    if "checkpoint" in fit_kw:
        raise TypeError("store.fit chooses the checkpoint itself (beside the entry); do not pass checkpoint=")
    parameters = inspect.signature(fit_function).parameters
    unknown = set(fit_kw) - set(parameters)
    if unknown:
        raise TypeError(f"train.fit has no argument(s) {sorted(unknown)}")
    keyed = [p for p, parameter in parameters.items()
             if parameter.kind is inspect.Parameter.KEYWORD_ONLY and p not in UNKEYED_FIT_ARGUMENTS]
    missing = [p for p in keyed if p not in fit_kw and parameters[p].default is inspect.Parameter.empty]
    if missing:
        raise TypeError(f"train.fit needs {', '.join(f'{p}=' for p in missing)}")
    return {p: fit_kw.get(p, parameters[p].default) for p in keyed}


def _readable(arguments: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in arguments.items()
            if not isinstance(v, torch.Generator)}


# ------------------------------------------------------------------------------ results

F = TypeVar("F", bound=Callable[..., Any])

UNKEYED_ARGUMENTS = frozenset({"show_progress", "desc"})
"""Arguments that do not change a result (progress display): left out of the key."""


def memoized(function: F) -> F:
    """Decorate a deterministic experiment function so that its result is computed once per key and then read
    from ``<data dir>/results/<module>.<function>-<key>.pt``.

    The key covers the function, all its arguments except ``UNKEYED_ARGUMENTS``, :func:`library_digest`
    and the numerical libraries' versions. Arguments are what :func:`fingerprint` takes (a random generator
    is refused: pass a seed). The function runs with the global torch random state seeded from its name and
    arguments inside a forked random state, so its result depends on its arguments only (not on what ran
    before it, nor on an unrelated edit of the library), and the caller's random state is the same after a hit
    as after a miss. The result may hold plain values, containers, tensors, arrays and ``tradeoffs``
    dataclasses; tensors come back on the device of the first tensor or module argument (else the CPU). A miss
    returns the entry it wrote, read back, so a hit and a miss return equal values.
    """
    signature = inspect.signature(function)
    name = f"{function.__module__.removeprefix('tradeoffs.')}.{function.__qualname__}"
    # the seed comes from the module's own name, not from where in the package it lives
    seed_name = f"{function.__module__.rsplit('.', 1)[-1]}.{function.__qualname__}"

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = {k: v for k, v in bound.arguments.items() if k not in UNKEYED_ARGUMENTS}
        call = _sha256_json({"function": seed_name, "arguments": fingerprint(arguments, name)})
        key = _sha256_json({"call": call, "code": library_digest(), "format": FORMAT,
                            "versions": [torch.__version__, np.__version__, _scipy_version()]})
        entry = results_dir() / f"{name}-{key[:16]}.pt"

        def compute() -> Any:
            with torch.random.fork_rng():
                # from the call alone: editing the library keeps the seed
                torch.manual_seed(int(call[:15], 16))
                return function(*args, **kwargs)
        value, _ = cached(entry, compute, kind="result", what=name)
        return _restore(value, _first_device(bound.arguments.values()))
    return wrapper  # type: ignore[return-value]


def cached(entry: Path, compute: Callable[[], Any], *, kind: str = "result",
           what: str = "") -> tuple[Any, bool]:
    """The value stored at ``entry``, or ``compute()`` stored there (under the entry's lock, so a second
    process waits and reads it); returns (value, whether the store held it). The value may hold what
    :func:`memoized` results hold; a miss returns the stored value read back, and a value that cannot be read
    back is refused at once."""
    with locked(entry):
        stored = _load(entry, lambda payload: _decode(payload)["value"], kind, "computing again")
        if stored is not _MISSING:
            return stored, True
        write_entry(entry, _encode({"what": what, "value": _storable(compute())}))
        try:
            return _decode(read_entry(entry))["value"], False
        except Exception as error:
            entry.unlink()
            raise TypeError(f"{what or entry.name} returned a value the store cannot read back with "
                            f"weights_only=True ({error}); return numbers, strings, tensors, arrays, "
                            "containers of them or tradeoffs dataclasses") from error


def _scipy_version() -> str | None:
    try:
        import scipy
    except ImportError:
        return None
    return scipy.__version__


def _first_device(arguments) -> torch.device:
    for value in arguments:
        if isinstance(value, torch.Tensor):
            return value.device
        if isinstance(value, nn.Module):
            return next(iter(value.parameters()), torch.empty(0)).device
    return torch.device("cpu")


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
    raise TypeError(f"cannot store a result of type {type(value).__name__} in the store")


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
            cls = getattr(importlib.import_module(module),
                          qualname) if module.startswith("tradeoffs.") else None
            if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
                raise TypeError(f"store entry names an unknown dataclass {value['__dataclass__']!r}")
            return cls(**{k: _restore(v, device) for k, v in value["fields"].items()})
        return {k: _restore(v, device) for k, v in value.items()}
    return value
