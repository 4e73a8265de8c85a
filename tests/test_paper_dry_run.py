"""The paper profile's dry run (``tradeoffs.dryrun``): every chapter executes every cell with the paper's
settings, architectures, attacks and evaluation protocol, CIFAR-10 included (a tiny CIFAR-10 in torchvision's
format), each loop capped; every claim is recorded with status dry-run and never counts as reproduced."""

import os

import pytest
from tiny_cifar import write_tiny_cifar10
from tradeoffs import data, dryrun
from tradeoffs.book import claims, profiles, runner

pytestmark = pytest.mark.chapter
CHAPTERS = list(profiles.CHAPTERS)
# Claims that only the CIFAR-10 branches compute: in the dry run they must have a value (the branch ran).
CIFAR_CLAIMS = {
    "02_robust_features": ("features.ilyas.d.table7.cifar10.", "features.ilyas.d_det.table10.cifar10."),
    "03_joint_objective": ("joint.table2.lambda0.", "joint.table2.lambda1."),
    "04_trades": ("trades.table4.cifar10.beta0_1.", "trades.table5.cifar10."),
}


@pytest.fixture(scope="module")
def dry_run_env(tmp_path_factory):
    """A data directory with the real MNIST (linked) and a tiny CIFAR-10, a results directory,
    TRADEOFFS_DRY_RUN=1."""
    root = tmp_path_factory.mktemp("dry_run")
    data_root = root / "data"
    data_root.mkdir()
    for name in (data.MNIST_FILE, data.MNIST_FILE + ".sha256"):
        (data_root / name).symlink_to(data.mnist_path().with_name(name))
    write_tiny_cifar10(data_root)
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
