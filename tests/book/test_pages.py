"""tradeoffs.book.pages: the generated scorecard and status pages from the claims records and run records,
and the Environment page's account of the paper profile's cost."""

import json

from tradeoffs import stats
from tradeoffs.book import claims, cost, pages, runner


def test_scorecard_and_status_pages(results, tmp_path):
    claims.start_record("01_a", "cpu")
    claims.claim("tsipras.eq4.averaging.standard_accuracy", 99.87)
    claims.claim("tsipras.theorem2_1.bound_holds", None)
    claims.start_record("02_b", "smoke")
    claims.claim("gaussian.table1.sigma3_6.standard_training.std_error", 1.0)
    claims.claim("frontier.trades_vs_madry.robust", 100 * stats.difference(0.6, 500, 0.568, 500))
    run = {"chapter": "01_a", "profile": "cpu", "device": "auto", "seed": 0, "status": "ok", "error": None,
           "wall_seconds": 65.0, "peak_memory_mb": 812.0, "finished_at": "2026-11-22T00:00:00+00:00",
           "environment": runner.environment()}
    (results / "01_a.run.json").write_text(json.dumps(run))
    scorecard, status = pages.write_pages(results, tmp_path / "generated")
    text = scorecard.read_text()
    assert "| `01_a` | cpu | 2 | 1 | 0 | 0 | 1 | 0 |" in text
    assert "| `02_b` | smoke | 2 | 0 | 1 | 1 | 0 | 0 |" in text
    assert "| `printed` | 2 | 1 | 1 | 0 | 0 | 0 |" in text
    assert "| `direction` | 1 | 0 | 0 | 1 | 0 | 0 |" in text
    assert ("2 claims (0 reproduced, 1 differs, 1 inconclusive, 0 not run, 0 dry run); "
            "1 printed (0 reproduced), 1 direction (0 reproduced).") in text
    assert "tsipras.eq4.averaging.standard_accuracy" in text and "gaussian.table1.sigma3_6" in text
    page = status.read_text()
    assert "| `01_a` | cpu | auto: cpu | 0 | ok | 1 min 05 s | 812 MB |" in page and "torch" in page


def test_empty_results_say_what_to_run(results, tmp_path):
    scorecard, status = pages.write_pages(results, tmp_path / "generated")
    assert "make book" in scorecard.read_text() and "make book" in status.read_text()


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


def _claim(id, status):
    return {"id": id, "paper": 1.0, "ours": None if status == "not-run" else 2.0, "tol": 0.1, "unit": "%",
            "relation": "=", "status": status, "profile": "cpu", "source": "Table 1", "setting": ""}


def _run(chapter, status="ok", torch="2.14.1", gpus=()):
    return {"chapter": chapter, "profile": "cpu", "device": "auto", "seed": 0, "status": status,
            "error": None if status == "ok" else "cell 3: ValueError: bad", "wall_seconds": 125.0,
            "peak_memory_mb": 1500.4, "finished_at": "2026-01-01T00:00:00+00:00",
            "environment": {"python": "3.11", "platform": "Linux", "cpu_count": 2, "cpu_model": "Xeon",
                            "memory_gb": 8.0, "gpus": list(gpus), "versions": {"torch": torch}}}


def test_scorecard_markdown_counts_links_and_lists_unexecuted_chapters():
    chapters = {"01_a": "book/chapters/01_a", "02_b": "book/chapters/02_b", "03_c": "book/chapters/03_c"}
    recs = [{"chapter": "02_b", "profile": "smoke", "claims": [_claim("b.x", "not-run")]},
            {"chapter": "01_a", "profile": "cpu",
             "claims": [_claim("a.x", "reproduced"), _claim("a.y", "differs")]}]
    md = pages.scorecard_markdown(recs, chapters)
    assert md.index("## 01_a") < md.index("## 02_b")  # book order
    assert "| {doc}`/book/chapters/01_a` | cpu | 2 | 1 | 1 | 0 | 0 | 0 |" in md
    assert "| **all chapters** | cpu, smoke | 3 | 1 | 1 | 0 | 1 | 0 |" in md
    assert "| `03_c` | not executed |" in md and "## Not executed" in md
    assert "`a.x`" in md and "`a.y`" in md and "`b.x`" in md and 'id="claims-filter"' in md
    assert "`99_z`" in pages.scorecard_markdown([{"chapter": "99_z", "profile": "cpu", "claims": []}],
                                                chapters)
    assert pages.scorecard_markdown([], chapters).startswith("No chapter has been executed")


def test_status_markdown_totals_devices_failures_and_version_differences():
    chapters = {"01_a": "book/chapters/01_a", "02_b": "book/chapters/02_b"}
    runs = [_run("02_b", "failed", torch="2.13.0", gpus=["NVIDIA H100"]), _run("01_a")]
    md = pages.status_markdown(runs, chapters)
    assert md.index("/book/chapters/01_a") < md.index("/book/chapters/02_b")
    assert "| auto: cpu |" in md and "| auto: cuda (NVIDIA H100) |" in md
    assert "2 min 05 s" in md and "**4 min 10 s**" in md and "1500 MB" in md
    assert "`02_b`: cell 3: ValueError: bad" in md and "**failed**" in md
    assert "| torch | 2.14.1 (01_a); 2.13.0 (02_b) |" in md
    assert "| GPUs | NVIDIA H100 |" in md
    assert pages._duration(7325) == "2 h 02 min" and pages._duration(59.4) == "59 s"


def test_write_pages_reads_the_toc_beside_the_output(tmp_path):
    (tmp_path / "_toc.yml").write_text(
        "parts:\n  - chapters:\n      - file: book/chapters/01_a\n      - file: book/scorecard\n")
    results = tmp_path / "results"
    results.mkdir()
    (results / "01_a.json").write_text(json.dumps({"chapter": "01_a", "profile": "cpu",
                                                   "claims": [_claim("a.x", "reproduced")]}))
    (results / "01_a.run.json").write_text(json.dumps(_run("01_a")))
    scorecard, status = pages.write_pages(results, tmp_path / "book" / "_generated")
    link = "{doc}`/book/chapters/01_a`"
    assert link in scorecard.read_text() and link in status.read_text()
