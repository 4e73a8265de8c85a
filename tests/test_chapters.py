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
from tradeoffs.book import claims, profiles, runner

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = list(profiles.CHAPTERS)
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
    "02_robust_features": {
        "prefixes": ("features.",),
        # smoke records the trained networks' results as not run (too small a budget) and CIFAR-10 is not run
        # offline; the standard linear model is more robust than Table 4's (read) 13.69%, and the adversarially
        # trained one keeps some weight on the pixels an eps = 0.2 adversary can flip
        "differs": {i for i in claims.references()
                    if i.startswith(("features.ilyas.", "features.tsipras.fig3.", "features.tsipras.fig5."))}
        | {"features.tsipras.table4.standard_training.adversarial_accuracy",
           "features.tsipras.fig2a.adversarial_weight_on_non_robust_pixels"},
    },
    "03_joint_objective": {
        "prefixes": ("joint.",),
        # Corollary 2 holds only above an eps threshold; Corollary 4's stated eps is too small (the chapter says why).
        # The smoke profile trains too little to compare (its trained-model claims are not-run), and Table 2
        # (CIFAR-10) runs in the paper profile only.
        "differs": {"joint.corollary2.holds_for_every_eps", "joint.corollary4.adversarial_risk_stated_eps"}
        | {i for i in claims.references()
           if i.startswith(("joint.squares.", "joint.table1.", "joint.table2.", "joint.figure"))},
    },
    "04_trades": {
        "prefixes": ("trades.",),
        # smoke trains for a step or two on a few hundred images, and CIFAR-10, the C&W row and the 1/lambda
        # values it skips are not run: only the exact Table 1, Eq. (1) and Theorem 3.1's Delta >= 0 reproduce
        "differs": {i for i in claims.references() if i.startswith("trades.table") and
                    not i.startswith("trades.table1.") and not i.endswith(".delta_nonnegative")},
    },
    "05_frontier": {
        "prefixes": ("frontier.",),
        # new work: the claims compare the papers' qualitative statements on one frontier; smoke trains a step or
        # two on a hundred images, too little to compare, and records them not-run
        "differs": {i for i in claims.references() if i.startswith("frontier.")},
    },
}
pytestmark = pytest.mark.chapter


# smoke_book (every chapter executed once) and built_book (the HTML): tests/conftest.py


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


def test_book_builds_without_warnings(built_book):
    site, result = built_book  # conftest.py: built once from smoke_book, also opened by test_browser.py
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
    with pytest.raises(runner.ChapterFailed, match="ZeroDivisionError") as failure:
        runner.execute("99_broken", "smoke", "cpu", 0, output_dir=tmp_path / "out", source_dir=tmp_path / "src")
    assert "99_broken.ipynb" in str(failure.value)
    assert json.loads((tmp_path / "results" / "99_broken.run.json").read_text())["status"] == "failed"


def test_bad_parameters_fail_before_running(tmp_path):
    with pytest.raises(ValueError, match="smoke, cpu, paper"):
        runner.execute(CHAPTERS[0], "fast", "cpu", 0, output_dir=tmp_path)
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        runner.execute(CHAPTERS[0], "smoke", "tpu", 0, output_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=CHAPTERS[0]):
        runner.execute("00_missing", "smoke", "cpu", 0, output_dir=tmp_path)
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
