"""tradeoffs.book.runtime: the device a chapter runs on, and the chapter start (settings, seed, claims
record)."""


import pytest
import torch
from tradeoffs.book import claims, profiles, runtime


def test_devices():
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    assert runtime.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="auto, cpu, cuda, cuda:N, mps"):
        runtime.resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            runtime.resolve_device("cuda:0")


def test_start_chapter_opens_the_record(tmp_path, monkeypatch):
    monkeypatch.setenv(claims.RESULTS_ENV, str(tmp_path))
    run = runtime.start_chapter("01_gaussian_tradeoff", "smoke", "cpu", 3)
    assert run.settings == profiles.settings("01_gaussian_tradeoff", "smoke")
    assert run.seed == 3 and run.device == torch.device("cpu")
    assert claims.load_record(tmp_path / "01_gaussian_tradeoff.json")["profile"] == "smoke"
    first = torch.rand(3)
    runtime.start_chapter("01_gaussian_tradeoff", "smoke", "cpu", 3)
    assert torch.equal(first, torch.rand(3))  # seeded
