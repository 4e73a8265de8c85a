"""The publishing workflow (.github/workflows/book.yml): valid for GitHub Actions, and it does what the README
says."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
ACTIONLINT = shutil.which("actionlint", path=str(ROOT / ".venv" / "bin")) or shutil.which("actionlint")


@pytest.mark.skipif(ACTIONLINT is None, reason="actionlint is missing: pip install -r requirements.txt")
def test_actionlint_accepts_the_workflow():
    result = subprocess.run([ACTIONLINT, str(WORKFLOW)], capture_output=True, text=True, cwd=ROOT,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_builds_the_cpu_book_with_the_model_cache_and_deploys_it_to_pages():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads the key `on` as True
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    steps = {step.get("uses", "").split("@")[0]: step for step in build["steps"]}
    runs = [step["run"] for step in build["steps"] if "run" in step]
    assert steps["actions/cache"]["with"]["path"] == "data"
    assert any(run.startswith("make book") and "PROFILE=cpu" in run for run in runs), runs
    assert steps["actions/upload-pages-artifact"]["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == ["actions/deploy-pages"]
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
