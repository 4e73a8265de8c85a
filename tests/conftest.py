"""Fixtures shared by the book tests: every chapter executed once in the smoke profile, and the book
built once (strictly) from those executed chapters. test_chapters.py and test_browser.py both use them,
so a test run executes each chapter and builds the HTML only once."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
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
