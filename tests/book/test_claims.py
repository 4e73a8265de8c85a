"""tradeoffs.book.claims: the reference numbers, the claims record, the status of a claim and its table."""

import json

import pytest
from tradeoffs import stats
from tradeoffs.book import claims


def test_reference_files_are_well_formed():
    refs = claims.references()
    assert len(refs) >= 30
    for ref in refs.values():
        assert ref.id == ref.id.lower() and " " not in ref.id and ref.id.count(".") >= 2
        assert ref.relation in claims.RELATIONS and ref.kind in claims.KINDS
        assert ref.source and isinstance(ref.unit, str)  # empty for a dimensionless number (a probability)
        assert ref.basis and ref.unit == ref.unit.strip()  # every tolerance is justified
        if ref.kind == "direction":
            assert ref.relation != "=" and ref.tol is None


def test_tolerances_are_narrower_than_the_effects_they_judge():
    refs = claims.references()
    natural = [refs[f"trades.table4.mnist.beta{b}.natural"].value for b in ("0_1", "1", "5")]
    assert refs["trades.table4.mnist.beta1.natural"].tol < max(natural) - min(natural)
    assert refs["joint.table1.lambda1.classification_risk"].tol < (
        refs["joint.table1.lambda0.classification_risk"].value
        - refs["joint.table1.lambda1.classification_risk"].value)
    assert refs["trades.table3.lambda2.delta"].tol < refs["trades.table3.lambda2.delta"].value / 10
    assert refs["trades.table3.lambda2.r_phi"].tol < refs["trades.table3.lambda2.r_phi"].value


def test_claim_appends_to_the_record_with_status(results):
    path = claims.start_record("01_test", "smoke")
    ok = claims.claim("gaussian.table1.sigma3_6.standard_training.adv_error", 10.413)  # tol 0.005 (printed)
    off = claims.claim("gaussian.table1.sigma3_6.standard_training.std_error", 0.2)
    record = json.loads(path.read_text())
    assert record["chapter"] == "01_test" and record["profile"] == "smoke"
    assert [c["status"] for c in record["claims"]] == ["reproduced", "differs"]
    assert (ok.status, off.status) == ("reproduced", "differs")
    first = record["claims"][0]
    assert set(first) >= {"id", "kind", "paper", "ours", "interval", "n", "tol", "basis", "unit", "status",
                          "reason", "profile", "source"}
    assert first["paper"] == 10.41 and first["source"] == "Table 1" and first["unit"] == "%"
    assert first["kind"] == "printed" and first["tol"] == 0.005 and first["interval"] is None
    assert "within ± 0.005%" in first["reason"] and "outside" in record["claims"][1]["reason"]
    with pytest.raises(ValueError, match="tolerance is the reference"):
        claims.claim("gaussian.table1.sigma3_6.standard_training.adv_error", 10.4, tol=1.0)


def test_measured_printed_numbers_are_judged_with_their_interval(results):
    claims.start_record("04_test", "cpu")
    # paper 99.28%, tol 0.1: 96.8% on 3,000 points is far below; 99.25% on 10,000 covers it
    low = claims.claim("trades.table4.mnist.beta1.natural", 100 * stats.proportion(0.968, 3000))
    close = claims.claim("trades.table4.mnist.beta1.natural", 100 * stats.proportion(0.9925, 10_000))
    assert (low.status, close.status) == ("differs", "reproduced")
    assert close.n == 10_000 and close.interval[0] < 99.28 < close.interval[1] and close.method == "Wilson"
    # a printed bound must hold on the whole interval: 99.3% on 100 points reaches below 99
    assert claims.claim("tsipras.eq4.averaging.simulated_standard_accuracy",
                        100 * stats.proportion(993, 1000)).status == "differs"
    assert claims.claim("tsipras.eq4.averaging.simulated_standard_accuracy",
                        100 * stats.proportion(19_980, 20_000)).status == "reproduced"


def test_direction_claims_need_the_interval_to_exclude_zero(results):
    claims.start_record("05_test", "cpu")
    key = "frontier.trades_vs_madry.robust"
    noisy = claims.claim(key, 100 * stats.difference(0.600, 500, 0.568, 500))  # +3.2 points on 500 images
    assert noisy.status == "inconclusive" and "500 points" in noisy.reason
    a = torch_free_outcomes(2000, 0.80)
    b = a.copy()
    b[:160] = False  # b loses 160 examples a gets right: +8 points, paired
    assert claims.claim(key, 100 * stats.paired_difference(a, b)).status == "reproduced"
    assert claims.claim(key, 100 * stats.paired_difference(b, a)).status == "differs"
    # >= is judged as >: a zero difference is no effect
    assert claims.claim("frontier.trades.natural_cost",
                        100 * stats.paired_difference(a, a)).status == "inconclusive"


def torch_free_outcomes(n, p):
    import numpy as np
    return np.random.default_rng(0).random(n) < p


def test_theorem_bounds_fail_only_when_the_interval_is_wholly_violated(results):
    claims.start_record("04_test", "cpu")
    key = "trades.table3.lambda2.delta_nonnegative"  # Theorem 3.1: Delta >= 0
    assert claims.claim(key, stats.mean([0.01, 0.02, 0.015, 0.012])).status == "reproduced"
    assert claims.claim(key, stats.mean([0.01, -0.02, 0.015, 0.0])).status == "reproduced"  # consistent
    assert claims.claim(key, stats.mean([-0.01, 0.02, -0.015, -0.012])).status == "inconclusive"
    assert claims.claim(key, stats.mean([-0.01, -0.02, -0.015, -0.012])).status == "differs"


def test_a_dry_run_never_counts_as_reproduced(results):
    path = claims.start_record("04_test", "paper", dry_run=True)
    c = claims.claim("trades.table1.bayes.nat_error", 0.0)
    assert c.status == "dry-run" and "never a reproduction" in c.reason
    assert claims.claim("trades.table5.mnist.trades6.cw_l2", None).status == "not-run"
    assert claims.load_record(path)["dry_run"] is True


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
    assert claims.load_record(results / "01_test.json") == {"chapter": "01_test", "profile": "smoke",
                                                           "dry_run": False, "claims": []}


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
            claims.claim("gaussian.table1.sigma3_6.adversarial_training.change.adv_error", -4.83),
            claims.claim("tsipras.theorem2_1.bound_holds", None),
            claims.claim("trades.eq1.decomposition_gap", 1.11e-14),
            claims.claim("frontier.trades_vs_madry.robust", 100 * stats.difference(0.6, 500, 0.568, 500)),
            claims.claim("trades.table3.lambda2.r_phi", 0.0006)]
    text = claims.claims_table(rows)
    table = text.split("\n\n")[0].splitlines()
    assert len(table) == 2 + 5  # no common prefix to factor out; the claim not run is one line below
    assert table[0].startswith("| claim | kind |") and "tolerance" in table[0] and "reason" in table[0]
    assert all(s in table[2] for s in ("> 99%", "99.87%", "reproduced", "| printed |"))
    assert "-14.03%" in table[3] and "+9.2" in table[3] and "differs" in table[3] and "± 0.01%" in table[3]
    assert "| 0% |" in table[4] and "e-14" not in table[4] and "float rounding" in table[4]  # no float noise
    assert all(s in table[5] for s in ("3.20 pp [-2.90, 9.27] (n = 500)", "inconclusive", "| direction |"))
    assert "0.0006 |" in table[6] and "0.0006 pp" not in table[6] and "pp" not in table[6].split("|")[5]
    assert all(line.count("|") == table[0].count("|") for line in table)  # no stray pipe in a reason
    assert text.split("\n\n")[1] == ("*Not run* in the `cpu` profile (1 claim; not computed in this "
                                      "profile): `tsipras.theorem2_1.bound_holds`.")
    full = claims.claims_table(rows, collapse_not_run=False).splitlines()
    assert len(full) == 2 + 6 and "not run" in full[4] and "| theorem |" in full[4]
    assert claims.format_value(0.0038, "%") == "0.0038%" and claims.format_value(99.0, "%") == "99.00%"
    assert claims.format_value(100.0, "% of d") == "100% of d"
    assert claims.format_value(1.5, "pp", signed=True) == "+1.50 pp"


def test_chapter_tables_factor_out_the_common_prefix(results):
    claims.start_record("01_test", "cpu")
    rows = [claims.claim("tsipras.eq4.averaging.standard_accuracy", 99.87),
            claims.claim("tsipras.eq4.averaging.adversarial_accuracy", 0.13)]
    text = claims.claims_table(rows)
    assert text.startswith("Claims `tsipras.eq4.averaging.*`:")
    assert "| `standard_accuracy` |" in text and "| `adversarial_accuracy` |" in text
    assert "`tsipras.eq4.averaging.standard_accuracy`" in claims.claims_table(rows, full_ids=True)


def test_not_run_claims_collapse_to_one_line_per_reason(results):
    claims.start_record("01_test", "smoke")
    rows = [claims.claim("tsipras.eq4.averaging.standard_accuracy", None, why="CIFAR-10 is offline"),
            claims.claim("tsipras.eq4.averaging.adversarial_accuracy", None, why="CIFAR-10 is offline")]
    assert claims.claims_table(rows) == ("Claims `tsipras.eq4.averaging.*`:\n\n*Not run* in the `smoke` "
                                         "profile (2 claims; CIFAR-10 is offline): `standard_accuracy`, "
                                         "`adversarial_accuracy`.")
    assert rows[0].reason == "CIFAR-10 is offline"
    small = claims.claim("tsipras.eq4.averaging.standard_accuracy", claims.NotRun("too small"))
    assert small.reason == "too small" and small.status == "not-run"


def test_paper_table_cells_are_ours_paper_and_a_mark_at_the_papers_precision(results):
    claims.start_record("01_test", "cpu")
    key = "gaussian.table1.sigma3_6."
    cells = {("standard", "std"): claims.claim(key + "standard_training.std_error", 0.08765),
             ("standard", "adv"): claims.claim(key + "standard_training.adv_error", 12.0),
             ("adversarial", "std"): claims.claim(key + "adversarial_training.std_error", None),
             ("adversarial", "adv"): claims.claim(key + "adversarial_training.adv_error", 5.58)}
    text = claims.paper_table(cells, corner="method")
    lines = text.splitlines()
    assert lines[0] == "| method | std | adv |"
    assert lines[2] == "| standard | 0.09 (0.09) ✓ | 12.00 (10.41) ✗ |"
    assert lines[3] == "| adversarial | not run (0.25) | 5.58 (5.58) ✓ |"
    assert "values in %" in text and ":::{dropdown}" in text and "| tolerance |" not in lines[0]
    assert claims.paper_cell({"paper": 0.5, "ours": 1e-14, "relation": "=", "tol": 0.05, "interval": None,
                              "status": "differs", "unit": "%"}) == "0.0 (0.5) ✗"


def test_paper_table_folds_the_rows_not_run_into_one_line(results):
    claims.start_record("01_test", "smoke")
    key = "gaussian.table1.sigma3_6."
    cells = {("standard", "std"): claims.claim(key + "standard_training.std_error", 0.09),
             ("adversarial", "std"): claims.claim(key + "adversarial_training.std_error", None,
                                                  why="skipped")}
    text = claims.paper_table(cells)
    assert "| adversarial |" not in text and "Rows not run (skipped): adversarial." in text
