"""Fixtures shared across the test tree: a fresh result cache for the session; every chapter executed once
in the smoke profile and the book built once (strictly) from those chapters (book/test_runner.py and
book/test_html.py both use them, so a test run executes each chapter and builds the HTML only once); a claims
record in a temporary directory; a tiny CIFAR-10 on disk; a small trained MNIST MLP."""

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tradeoffs import data
from tradeoffs.book import claims, pages, profiles, runner

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = list(profiles.CHAPTERS)


@pytest.fixture(scope="session", autouse=True)
def fresh_result_cache(tmp_path_factory):
    """Memoized results go to a fresh directory, so every test run computes them (the model cache is shared:
    it is keyed by the training settings, and a test that trains checks training itself)."""
    saved = os.environ.get("TRADEOFFS_RESULT_CACHE")
    os.environ["TRADEOFFS_RESULT_CACHE"] = str(tmp_path_factory.mktemp("results"))
    yield
    if saved is None:
        os.environ.pop("TRADEOFFS_RESULT_CACHE")
    else:
        os.environ["TRADEOFFS_RESULT_CACHE"] = saved


@pytest.fixture(scope="module")
def single_thread():
    """One torch intra-op thread for a module's tests (``pytestmark = pytest.mark.usefixtures(...)``): their
    tensors are small, and on 2 cores shared with other work two threads spin-wait for each other
    (measured on a loaded machine: test_models.py took 87 s with one thread, 376 s with two)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """Execute every chapter in the smoke profile into a temporary book/chapters."""
    out = tmp_path_factory.mktemp("book")
    saved = os.environ.get(claims.RESULTS_ENV)
    os.environ[claims.RESULTS_ENV] = str(out / "_results")
    try:
        runs = {name: runner.execute(name, "smoke", "cpu", 0, output_dir=out / "chapters", cell_timeout=600)
                for name in CHAPTERS}
    finally:
        if saved is None:
            os.environ.pop(claims.RESULTS_ENV)
        else:
            os.environ[claims.RESULTS_ENV] = saved
    return out, runs


@pytest.fixture(scope="session")
def built_book(smoke_book, tmp_path_factory):
    """The book built from the smoke chapters in a copy of the sources, as `make html` does it (``-n -W``):
    (site directory, the finished ``jupyter-book build`` process). The HTML is in site/_build/html."""
    out, _ = smoke_book
    site = tmp_path_factory.mktemp("site")
    shutil.copytree(ROOT / "book", site / "book",
                    ignore=shutil.ignore_patterns("chapters", "_results", "_generated"))
    for config in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / config, site / config)
    # the chapters show the library's kernels beside their equations ({literalinclude} /lib/tradeoffs/...)
    shutil.copytree(ROOT / "lib", site / "lib", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(out / "chapters", site / "book" / "chapters")
    pages.write_pages(out / "_results", site / "book" / "_generated")
    result = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(site), "-n",
                             "-W", "--keep-going"],
                            capture_output=True, text=True)
    return site, result


@pytest.fixture(scope="session")
def mnist_mlp():
    """A 784-128-10 MLP trained for two epochs (Adam) on 4000 MNIST training images, in eval mode, and the
    first 500 test images: (model, x_test, y_test). About 90% accurate; trained in about a second."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from tradeoffs.data import load_mnist

    x, y = load_mnist("train")
    x, y = x[:4000], y[:4000]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(2):
        order = torch.randperm(len(x))
        for batch in order.split(100):
            optimizer.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    model.zero_grad(set_to_none=True)
    x_test, y_test = load_mnist("test")
    return model.eval(), x_test[:500], y_test[:500]


@pytest.fixture
def results(tmp_path, monkeypatch):
    """A claims-results directory of its own (``claims.RESULTS_ENV``) and no open claims record."""
    monkeypatch.setenv(claims.RESULTS_ENV, str(tmp_path))
    monkeypatch.setattr(claims, "_active", {})
    return tmp_path


LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_tiny_cifar10(data_root: Path, per_batch: int = 10, test: int = 10, seed: int = 0) -> Path:
    """Write a tiny CIFAR-10 in torchvision's on-disk format under
    ``<data_root>/torchvision/cifar-10-batches-py`` and return that folder: ``data_batch_1..5``,
    ``test_batch`` and ``batches.meta``, each a pickled dict as the authors' archive holds them (``data``:
    uint8 [N, 3072], rows of 1024 red, green, blue values; ``labels``: a list of ints; ``batch_label``,
    ``filenames``), and the SHA-256 record that ``tradeoffs.data.fetch_cifar10`` writes for the real archive,
    so ``load_cifar10`` reads it exactly as it reads the real one. The images are random, each class with its
    own mean colour (so a model can learn something); labels cycle over 0..9."""
    folder = Path(data_root) / "torchvision" / data.CIFAR10_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = {name: per_batch for name in data.CIFAR10_FILES["train"]} | {"test_batch": test}
    for i, (name, n) in enumerate(sizes.items()):
        labels = [(i + j) % 10 for j in range(n)]
        colour = np.repeat(np.array(labels)[:, None] * 20 + 30, 3072, axis=1)
        pixels = np.clip(colour + rng.integers(-30, 31, (n, 3072)), 0, 255).astype(np.uint8)
        batch = {"batch_label": f"tiny {name}", "labels": labels, "data": pixels,
                 "filenames": [f"tiny_{name}_{j}.png" for j in range(n)]}
        # protocol 4: bytes pickled as bytes (protocol 2 would name _codecs.encode, which the loader refuses)
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))
    meta = {"num_cases_per_batch": per_batch, "label_names": LABEL_NAMES, "num_vis": 3072}
    (folder / data.CIFAR10_META).write_bytes(pickle.dumps(meta, protocol=4))
    data.write_cifar10_checksums(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_cifar10():
    """:func:`write_tiny_cifar10`, for tests that need a CIFAR-10 on disk."""
    return write_tiny_cifar10
