"""Every chapter executes end to end (smoke profile), the book builds without a warning, and a chapter
runs from a copy of its .ipynb outside the repository with only the installed package (as in Colab)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tradeoffs import book, claims

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.md"))
# The claims each chapter must record (none may be left out), and the ones known to differ from the paper.
EXPECTED = {
    "01_gaussian_tradeoff": {
        "prefixes": ("gaussian.", "tsipras.eq4.", "tsipras.theorem2_"),
        "differs": {  # the sigma = (3, 6) Change row of Table 1 contradicts the table's own error rows
            "gaussian.table1.sigma3_6.adversarial_training.change.std_error",
            "gaussian.table1.sigma3_6.adversarial_training.change.adv_error",
            "gaussian.table1.sigma3_6.data_randomized_training.change.adv_error",
        },
    },
}
pytestmark = pytest.mark.chapter


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """Execute every chapter in the smoke profile into a temporary book/chapters."""
    out = tmp_path_factory.mktemp("book")
    saved = os.environ.get(claims.RESULTS_ENV)
    os.environ[claims.RESULTS_ENV] = str(out / "_results")
    try:
        runs = {name: book.execute(name, "smoke", "cpu", 0, output_dir=out / "chapters", cell_timeout=600)
                for name in CHAPTERS}
    finally:
        os.environ.pop(claims.RESULTS_ENV) if saved is None else os.environ.update({claims.RESULTS_ENV: saved})
    return out, runs


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_executes_and_records_its_run(smoke_book, name):
    out, runs = smoke_book
    run = runs[name]
    assert run["status"] == "ok" and run["wall_seconds"] > 0 and run["peak_memory_mb"] > 50
    assert json.loads((out / "_results" / f"{name}.run.json").read_text())["profile"] == "smoke"
    nb = nbformat.read(out / "chapters" / f"{name}.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "remove-cell" in injected[0].metadata.tags
    assert 'profile = "smoke"' in injected[0].source


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_records_every_claim(smoke_book, name):
    out, _ = smoke_book
    record = claims.load_record(out / "_results" / f"{name}.json")
    assert record["profile"] == "smoke"
    recorded = {c["id"]: c["status"] for c in record["claims"]}
    expected = EXPECTED[name]
    wanted = {i for i in claims.references() if i.startswith(expected["prefixes"])}
    assert set(recorded) == wanted, f"left out: {sorted(wanted - set(recorded))}"
    assert {i for i, s in recorded.items() if s != "reproduced"} == expected["differs"]


def test_book_builds_without_warnings(smoke_book, tmp_path):
    out, _ = smoke_book
    site = tmp_path / "site"
    shutil.copytree(ROOT / "book", site / "book", ignore=shutil.ignore_patterns("chapters", "_results", "_generated"))
    for config in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / config, site / config)
    shutil.copytree(out / "chapters", site / "book" / "chapters")
    book.write_pages(out / "_results", site / "book" / "_generated")
    result = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(site), "-n", "-W", "--keep-going"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    page = (site / "_build" / "html" / "book" / "chapters" / f"{CHAPTERS[0]}.html").read_text()
    assert f"colab.research.google.com/github/tradeoffs-book/tradeoffs/blob/main/notebooks/{CHAPTERS[0]}.ipynb" in page
    assert "book/chapters/" not in page.split("colab.research.google.com", 1)[1].split('"', 1)[0]
    assert "reproduced" in (site / "_build" / "html" / "book" / "scorecard.html").read_text()


def test_failing_chapter_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(claims.RESULTS_ENV, str(tmp_path / "results"))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell('profile = "cpu"\ndevice = "auto"\nseed = 0', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("1 / 0")]
    (tmp_path / "src").mkdir()
    nbformat.write(nb, tmp_path / "src" / "99_broken.ipynb")
    with pytest.raises(book.ChapterFailed, match="ZeroDivisionError") as failure:
        book.execute("99_broken", "smoke", "cpu", 0, output_dir=tmp_path / "out", source_dir=tmp_path / "src")
    assert "99_broken.ipynb" in str(failure.value)
    assert json.loads((tmp_path / "results" / "99_broken.run.json").read_text())["status"] == "failed"


def test_bad_parameters_fail_before_running(tmp_path):
    with pytest.raises(ValueError, match="smoke, cpu, paper"):
        book.execute(CHAPTERS[0], "fast", "cpu", 0, output_dir=tmp_path)
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        book.execute(CHAPTERS[0], "smoke", "tpu", 0, output_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=CHAPTERS[0]):
        book.execute("00_missing", "smoke", "cpu", 0, output_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_chapter_runs_from_a_copy_outside_the_repository(tmp_path):
    """As Colab runs it: the .ipynb alone, the package installed (not the source tree), no repo files."""
    source, site = tmp_path / "source", tmp_path / "site"
    shutil.copytree(ROOT / "lib", source / "lib", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(source)], check=True, capture_output=True)
    work = tmp_path / "colab"
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / f"{CHAPTERS[0]}.ipynb", work)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEOFFS_")}
    env |= {"PYTHONPATH": str(site), "TRADEOFFS_BATCH": "1"}  # no widget progress bars under nbclient
    where = subprocess.run([sys.executable, "-c", "import tradeoffs; print(tradeoffs.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site)), where
    result = subprocess.run([sys.executable, "-m", "papermill", f"{CHAPTERS[0]}.ipynb", "out.ipynb", "-p", "profile",
                             "smoke", "--cwd", str(work), "--execution-timeout", "600"], cwd=work, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    record = claims.load_record(work / "book" / "_results" / f"{CHAPTERS[0]}.json")
    assert record["claims"] and all(c["status"] in claims.STATUSES for c in record["claims"])
