"""The paper profile's cost (tradeoffs.book.cost), the Environment page's account of it, and the GPU check's
timing."""

import json

import pytest
from tradeoffs import dryrun
from tradeoffs.book import cost, gpu_check, pages, profiles


def test_pass_flops_counts_the_layers():
    assert cost.pass_flops("mlp") == 3 * 2 * (784 * 400 + 400 * 10)
    assert 3e10 < cost.pass_flops("wrn34_10") < 5e10
    assert cost.pass_flops("resnet18") < cost.pass_flops("wrn34_10")


def test_every_chapter_has_a_cost_estimated_without_a_gpu_run():
    for chapter in profiles.CHAPTERS:
        c = cost.paper_cost(chapter, measurement={})
        assert c.gpu_hours >= 0 and (c.basis.startswith("estimate") or not c.passes)
    trades = cost.paper_cost("04_trades", measurement={})
    assert {"wrn34_10", "resnet18", "small_cnn"} <= set(trades.passes)
    # the CIFAR-10 models dominate: 3 WRN-34-10 trainings of 100 epochs of 50k images with K = 10
    assert trades.passes["wrn34_10"] >= 3 * 100 * 50_000 * 11 and trades.gpu_hours > 10


def test_a_measurement_replaces_the_estimate_but_a_dry_one_never_does():
    rates = {arch: 1e-4 for arch in cost.ARCHITECTURES}
    measured = {"gpu": "Test GPU", "date": "2026-01-01", "seconds_per_pass": rates, "dry_run": False}
    c = cost.paper_cost("05_frontier", measured)
    assert c.basis.startswith("measured on Test GPU")
    assert c.gpu_hours == pytest.approx(sum(c.passes.values()) * 1e-4 / 3600)
    assert cost.paper_cost("05_frontier", {**measured, "dry_run": True}).basis.startswith("estimate")


def test_environment_page_says_estimate_or_measured():
    assert "**estimates**" in pages.paper_cost_markdown({}) and "04_trades" in pages.paper_cost_markdown({})
    run = {"objective": "trades, K = 10", "batch_size": 128, "seconds_per_pass": 1e-3, "epoch_seconds": 600,
           "epoch": "timed"}
    measured = {"gpu": "Test GPU", "date": "2026-01-01", "torch": "2", "dry_run": False,
                "seconds_per_pass": {arch: 1e-4 for arch in cost.ARCHITECTURES},
                "runs": {"cifar10_wrn34_10_trades": run},
                "chapters": {"05_frontier": {"status": "ok", "wall_seconds": 60}}}
    text = pages.paper_cost_markdown(measured)
    assert "Measured by `scripts/gpu_check.sh` on Test GPU" in text and "10 min 00 s (timed)" in text
    assert "**estimates**" not in text and "measured on Test GPU" in text


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
