"""tradeoffs.book.cost: the paper profile's cost per chapter, estimated from the architectures' passes or
measured by the GPU check."""


import pytest
from tradeoffs.book import cost, profiles


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
