"""The claims record, the reference numbers and the generated scorecard / environment pages."""

import json

import pytest
from tradeoffs.book import claims, pages, runner


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv(claims.RESULTS_ENV, str(tmp_path))
    monkeypatch.setattr(claims, "_active", {})
    return tmp_path


def test_reference_files_are_well_formed():
    refs = claims.references()
    assert len(refs) >= 30
    for ref in refs.values():
        assert ref.id == ref.id.lower() and " " not in ref.id and ref.id.count(".") >= 2
        assert ref.relation in claims.RELATIONS
        assert ref.source and isinstance(ref.unit, str)  # empty for a dimensionless number (a probability)


def test_claim_appends_to_the_record_with_status(results):
    path = claims.start_record("01_test", "smoke")
    ok = claims.claim("gaussian.table1.sigma3_6.standard_training.adv_error", 10.413, tol=0.005)
    off = claims.claim("gaussian.table1.sigma3_6.standard_training.std_error", 0.2, tol=0.005)
    record = json.loads(path.read_text())
    assert record["chapter"] == "01_test" and record["profile"] == "smoke"
    assert [c["status"] for c in record["claims"]] == ["reproduced", "differs"]
    assert (ok.status, off.status) == ("reproduced", "differs")
    first = record["claims"][0]
    assert set(first) >= {"id", "paper", "ours", "tol", "unit", "status", "profile", "source"}
    assert first["paper"] == 10.41 and first["source"] == "Table 1" and first["unit"] == "%"


def test_bounds_not_run_and_replacement(results):
    claims.start_record("01_test", "cpu")
    assert claims.claim("tsipras.eq4.averaging.standard_accuracy", 99.87).status == "reproduced"  # > 99
    assert claims.claim("tsipras.eq4.averaging.standard_accuracy", 98.0).status == "differs"
    assert claims.claim("tsipras.eq4.averaging.adversarial_accuracy", 0.13).status == "reproduced"  # < 1
    assert claims.claim("tsipras.eq4.averaging.adversarial_accuracy", None).status == "not-run"
    assert claims.claim("tsipras.theorem2_1.bound_holds", float("nan")).status == "not-run"
    record = claims.load_record(results / "01_test.json")
    ids = [c["id"] for c in record["claims"]]
    assert len(ids) == len(set(ids)) == 3  # a repeated claim replaces the earlier one
    assert record["claims"][0]["ours"] == 98.0


def test_start_record_replaces_an_earlier_run(results):
    claims.start_record("01_test", "cpu")
    claims.claim("tsipras.theorem2_1.bound_holds", 100)
    claims.start_record("01_test", "smoke")
    assert claims.load_record(results / "01_test.json") == {"chapter": "01_test", "profile": "smoke", "claims": []}


def test_clear_errors(results):
    with pytest.raises(RuntimeError, match="start_chapter"):
        claims.claim("tsipras.theorem2_1.bound_holds", 100)
    claims.start_record("01_test", "cpu")
    with pytest.raises(KeyError, match="references"):
        claims.claim("no.such.claim", 1.0)
    (results / "bad.json").write_text('{"chapter": "x"}')
    with pytest.raises(ValueError, match="not a claims record"):
        claims.load_record(results / "bad.json")


def test_claims_table_markdown(results):
    claims.start_record("01_test", "cpu")
    rows = [claims.claim("tsipras.eq4.averaging.standard_accuracy", 99.87),
            claims.claim("gaussian.table1.sigma3_6.adversarial_training.change.adv_error", -4.83, tol=0.01),
            claims.claim("tsipras.theorem2_1.bound_holds", None)]
    table = claims.claims_table(rows).splitlines()
    assert len(table) == 2 + 3  # no common prefix to factor out
    assert "> 99%" in table[2] and "99.87%" in table[2] and "reproduced" in table[2]
    assert "-14.03%" in table[3] and "+9.2" in table[3] and "differs" in table[3]
    assert "not run" in table[4]


def test_scorecard_and_status_pages(results, tmp_path):
    claims.start_record("01_a", "cpu")
    claims.claim("tsipras.eq4.averaging.standard_accuracy", 99.87)
    claims.claim("tsipras.theorem2_1.bound_holds", None)
    claims.start_record("02_b", "smoke")
    claims.claim("gaussian.table1.sigma3_6.standard_training.std_error", 1.0, tol=0.005)
    run = {"chapter": "01_a", "profile": "cpu", "device": "auto", "seed": 0, "status": "ok", "error": None,
           "wall_seconds": 65.0, "peak_memory_mb": 812.0, "finished_at": "2026-11-22T00:00:00+00:00",
           "environment": runner.environment()}
    (results / "01_a.run.json").write_text(json.dumps(run))
    scorecard, status = pages.write_pages(results, tmp_path / "generated")
    text = scorecard.read_text()
    assert "| `01_a` | cpu | 2 | 1 | 0 | 1 |" in text and "| `02_b` | smoke | 1 | 0 | 1 | 0 |" in text
    assert "tsipras.eq4.averaging.standard_accuracy" in text and "gaussian.table1.sigma3_6" in text
    page = status.read_text()
    assert "| `01_a` | cpu | auto: cpu | 0 | ok | 1 min 05 s | 812 MB |" in page and "torch" in page


def test_empty_results_say_what_to_run(results, tmp_path):
    scorecard, status = pages.write_pages(results, tmp_path / "generated")
    assert "make book" in scorecard.read_text() and "make book" in status.read_text()


def test_chapter_tables_factor_out_the_common_prefix(results):
    claims.start_record("01_test", "cpu")
    rows = [claims.claim("tsipras.eq4.averaging.standard_accuracy", 99.87),
            claims.claim("tsipras.eq4.averaging.adversarial_accuracy", 0.13)]
    text = claims.claims_table(rows)
    assert text.startswith("Claims `tsipras.eq4.averaging.*`:")
    assert "| `standard_accuracy` |" in text and "| `adversarial_accuracy` |" in text
    assert "`tsipras.eq4.averaging.standard_accuracy`" in claims.claims_table(rows, with_profile=True)
