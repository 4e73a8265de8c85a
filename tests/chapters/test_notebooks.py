"""The chapter sources: every MyST notebook (what the book executes) is paired with a committed, output-free
.ipynb (the copy Colab opens)."""

from pathlib import Path

import jupytext
import nbformat
import pytest
from tradeoffs.book import repository

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.md"))


def cells(nb):
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


def test_there_are_chapters():
    assert SOURCES, "no notebooks/NN_name.md found"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_pair_is_in_sync(source):
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} is missing: run `make notebooks`"
    assert cells(jupytext.read(source)) == cells(nbformat.read(paired, as_version=4)), (
        f"{source.name} and {paired.name} differ: run `make notebooks` after editing the .md")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_ipynb_has_no_outputs(source):
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "strip outputs: run `make notebooks`"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_chapter_opens_with_badge_install_and_parameters(source):
    nb = jupytext.read(source)
    assert nb.cells[0].cell_type == "markdown"
    assert repository.read().badge(source.stem) in nb.cells[0].source, (
        "the first cell needs the Open in Colab badge of this notebook: run `python -m "
        "tradeoffs.book.repository`")
    code = [c for c in nb.cells if c.cell_type == "code"]
    install, parameters, start = code[0], code[1], code[2]
    assert "import tradeoffs" in install.source and repository.read().install() in install.source
    assert "parameters" in parameters.metadata.get("tags", [])
    for line in ('profile = "cpu"', 'device = "auto"', "seed = 0"):
        assert line in parameters.source
    assert f'start_chapter("{source.stem}", profile, device, seed)' in start.source
