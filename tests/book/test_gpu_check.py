"""tradeoffs.book.gpu_check: the GPU check's timing of a training step and its record (on CPU, capped)."""

import json

from tradeoffs import dryrun
from tradeoffs.book import gpu_check


def test_gpu_check_times_a_training_step(monkeypatch, tmp_path):
    monkeypatch.setenv(dryrun.ENV, "1")  # a CPU check: capped loops
    run = gpu_check.time_run("mnist_mlp_joint", "cpu", batches=1)
    assert run["architecture"] == "mlp" and run["seconds_per_pass"] > 0
    assert run["epoch"] == "extrapolated from 1 steps"
    monkeypatch.setattr(gpu_check, "RUNS", {"mnist_mlp_joint": gpu_check.RUNS["mnist_mlp_joint"]})
    assert gpu_check.main(["--out", str(tmp_path / "check.json"), "--device", "cpu", "--batches", "1"]) == 0
    record = json.loads((tmp_path / "check.json").read_text())
    assert record["dry_run"] is True and record["gpu"].startswith("none")
    assert "mlp" in record["seconds_per_pass"]
