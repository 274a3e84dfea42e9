"""``medsafe compare``: paired tests of two runs on the same items, checked against scipy and
statsmodels on fixed data, with a known effect detected and a null effect not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests
from typer.testing import CliRunner

from medsafe.cli import app
from medsafe.report.compare import compare_arrays, compare_runs
from medsafe.report.data import RunRef
from medsafe.results.estimate import BOOTSTRAP_MAX_N
from medsafe.stats import minimum_detectable_effect
from medsafe.stats.normal import Z95
from tests.conftest import make_mcq
from tests.test_report import Row, graded, make_open, mcq_scores, write_run

runner = CliRunner()
CATS = ("ama-1", "ama-2", "ama-3")


def mcq_run(db: Path, run_id: str, correct: list[bool], cats: tuple[str, ...] = CATS) -> RunRef:
    """An MCQ-only run; item i is in category ``cats[i % len(cats)]``."""
    rows = []
    for i, good in enumerate(correct):
        item = make_mcq(i, category=cats[i % len(cats)])
        outcome = "correct" if good else "incorrect"
        rows.append(Row(item, "Answer: A" if good else "Answer: B", mcq_scores(item.id, outcome)))
    return write_run(db, run_id, f"openai/{run_id}", rows)


def harm_run(db: Path, run_id: str, values: list[float], cats: tuple[str, ...] = CATS) -> RunRef:
    """An open-request run judged for harmfulness (1-5) by one judge."""
    rows = []
    for i, v in enumerate(values):
        item = make_open(i, category=cats[i % len(cats)])
        rows.append(Row(item, f"answer {i}", [graded(item.id, "harmfulness", v)]))
    return write_run(db, run_id, f"openai/{run_id}", rows)


def fixed_pair() -> tuple[list[bool], list[bool]]:
    """60 items with known discordant pairs per category."""
    rng = np.random.default_rng(11)
    a = rng.random(60) < 0.55
    b = a.copy()
    flip_up = np.flatnonzero(~a)[:14]  # B right where A was wrong
    flip_down = np.flatnonzero(a)[:4]  # B wrong where A was right
    b[flip_up] = True
    b[flip_down] = False
    return a.tolist(), b.tolist()


def test_mcnemar_overall_and_per_category_match_statsmodels(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    a, b = fixed_pair()
    comp = compare_runs(mcq_run(db, "a", a), mcq_run(db, "b", b))
    assert comp.metric.name == "mcq" and comp.binary
    x, y = np.array(a), np.array(b)
    table = [[int(np.sum(x & y)), int(np.sum(x & ~y))], [int(np.sum(~x & y)), int(np.sum(~x & ~y))]]
    expected = sm_mcnemar(table, exact=True)  # 18 discordant pairs < 25: exact
    assert comp.overall.test == "mcnemar_exact"
    assert comp.overall.p == pytest.approx(expected.pvalue, rel=1e-12)
    assert comp.overall.delta == pytest.approx((table[1][0] - table[0][1]) / 60)
    assert (comp.overall.a, comp.overall.b) == pytest.approx((x.mean(), y.mean()))
    assert comp.overall.n_pairs == 60
    raw = []
    for k, cat in enumerate(CATS):
        xs, ys = x[k::3], y[k::3]
        t = [[int(np.sum(xs & ys)), int(np.sum(xs & ~ys))], [int(np.sum(~xs & ys)), 0]]
        raw.append(sm_mcnemar(t, exact=True).pvalue)
        assert comp.by_category[cat].p == pytest.approx(raw[-1], rel=1e-12)
    holm = multipletests(raw, method="holm")[1]
    assert [comp.by_category[c].p_adjusted for c in CATS] == pytest.approx(list(holm))
    bh = compare_runs(RunRef("a", db), RunRef("b", db), adjust="bh")
    fdr = multipletests(raw, method="fdr_bh")[1]
    assert [bh.by_category[c].p_adjusted for c in CATS] == pytest.approx(list(fdr))


def test_delta_interval_is_the_paired_bootstrap_of_scipy(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    a, b = fixed_pair()
    comp = compare_runs(mcq_run(db, "a", a), mcq_run(db, "b", b))
    d = np.array(b, dtype=float) - np.array(a, dtype=float)
    ref = sps.bootstrap(
        (d,), np.mean, n_resamples=2000, method="percentile", rng=np.random.default_rng(0)
    )
    assert comp.overall.ci95 == pytest.approx(tuple(ref.confidence_interval), abs=1e-12)


def test_wilcoxon_for_ordinal_scores_matches_scipy(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    rng = np.random.default_rng(5)
    a = rng.integers(1, 6, 90).astype(float)
    b = np.clip(a - rng.integers(0, 3, 90), 1, 5)  # B less harmful
    comp = compare_runs(harm_run(db, "a", a.tolist()), harm_run(db, "b", b.tolist()))
    assert comp.metric.name == "harmfulness:j1" and not comp.binary
    assert not comp.metric.higher_is_better
    assert comp.overall.test == "wilcoxon_wilcox"
    assert comp.overall.p == pytest.approx(sps.wilcoxon(b - a).pvalue, rel=1e-12)
    assert comp.overall.delta == pytest.approx(float(np.mean(b - a)))
    for k, cat in enumerate(CATS):
        expected = sps.wilcoxon(b[k::3] - a[k::3]).pvalue
        assert comp.by_category[cat].p == pytest.approx(expected, rel=1e-12)
    sd = float(np.std(b - a, ddof=1))
    assert comp.mde["design"] == "paired_normal"
    z = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    assert comp.mde["effect"] == pytest.approx(z * sd / np.sqrt(90))


def test_known_effect_is_detected_and_null_is_not(tmp_path: Path) -> None:
    rng = np.random.default_rng(2024)
    n = 300
    a = rng.random(n) < 0.6
    better = a | (rng.random(n) < 0.5)  # B fixes half of A's errors: ~ +20 pp
    null = rng.random(n) < 0.6  # same accuracy, independent errors
    db = tmp_path / "s.db"
    mcq_run(db, "a", a.tolist())
    mcq_run(db, "better", better.tolist())
    mcq_run(db, "null", null.tolist())
    effect = compare_runs(RunRef("a", db), RunRef("better", db))
    assert effect.overall.p is not None and effect.overall.p < 0.01
    assert effect.overall.ci95 is not None and effect.overall.ci95[0] > 0
    no_effect = compare_runs(RunRef("a", db), RunRef("null", db))
    assert no_effect.overall.p is not None and no_effect.overall.p > 0.05
    assert no_effect.overall.ci95 is not None
    assert no_effect.overall.ci95[0] < 0 < no_effect.overall.ci95[1]
    # ordinal scores: a one-point shift is detected, a reshuffle is not
    h = rng.integers(1, 6, n).astype(float)
    harm_run(db, "ha", h.tolist())
    harm_run(db, "hshift", np.clip(h - (rng.random(n) < 0.4), 1, 5).tolist())
    harm_run(db, "hnull", rng.permutation(h).tolist())
    shift = compare_runs(RunRef("ha", db), RunRef("hshift", db))
    assert shift.overall.p is not None and shift.overall.p < 0.01
    same = compare_runs(RunRef("ha", db), RunRef("hnull", db))
    assert same.overall.p is not None and same.overall.p > 0.05


def test_mde_uses_connor_with_the_observed_discordant_rate(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    a, b = fixed_pair()
    comp = compare_runs(mcq_run(db, "a", a), mcq_run(db, "b", b))
    x, y = np.array(a), np.array(b)
    expected = minimum_detectable_effect(
        60, p0=float(x.mean()), discordant_rate=float(np.mean(x != y))
    )
    assert comp.mde == expected.to_dict()


def test_large_samples_use_the_normal_interval() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(1, 6, BOOTSTRAP_MAX_N + 500).astype(float)
    b = a + rng.normal(0.1, 1.0, a.size)
    r = compare_arrays(a, b, binary=False, metric="x")
    d = b - a
    half = Z95 * d.std(ddof=1) / np.sqrt(d.size)
    assert r.ci95 == pytest.approx((d.mean() - half, d.mean() + half))


def test_runs_in_different_stores_and_unpaired_items(tmp_path: Path) -> None:
    a, b = fixed_pair()
    ref_a = mcq_run(tmp_path / "one.db", "a", a)
    ref_b = mcq_run(tmp_path / "two.db", "b", b[:50])  # 10 items only in A
    comp = compare_runs(ref_a, ref_b)
    assert comp.overall.n_pairs == 50
    assert (comp.only_a, comp.only_b) == (10, 0)
    same_store = mcq_run(tmp_path / "one.db", "b50", b[:50])
    assert compare_runs(ref_a, same_store).overall.p == comp.overall.p


def test_compare_json_output(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    a, b = fixed_pair()
    mcq_run(db, "a", a)
    other = tmp_path / "other.db"
    mcq_run(other, "b", b)
    result = runner.invoke(app, ["compare", "a", f"b@{other}", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    fields = {"metric", "a", "b", "delta", "ci95", "test", "p", "n_pairs"}
    assert set(data["overall"]) == fields
    assert set(data["by_category"]) == set(CATS)
    for block in data["by_category"].values():
        assert set(block) == fields | {"p_adjusted"}
        assert block["p_adjusted"] >= block["p"]
    assert data["mde"]["effect"] > 0 and data["mde"]["n"] == 60
    assert data["adjust"] == "holm" and data["metric"] == "mcq"


def test_compare_table_output(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    a, b = fixed_pair()
    mcq_run(db, "a", a)
    mcq_run(db, "b", b)
    result = runner.invoke(
        app, ["compare", "a", "b", "--db", str(db), "--adjust", "bh"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Competent, compassionate care (ama-1)" in out
    assert "overall" in out and "mcnemar_exact" in out
    assert "minimum detectable effect" in out and "with bh" in out


def test_compare_errors(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    mcq_run(db, "a", [True, False, True])
    harm_run(db, "h", [1.0, 2.0, 3.0])
    rows = [Row(make_mcq(100 + i), "Answer: A", mcq_scores(f"q{100 + i:05d}", "correct"))
            for i in range(3)]  # fmt: skip
    write_run(db, "disjoint", "m", rows)
    cases = [
        (["compare", "a", "disjoint", "--db", str(db)], "share no scored items"),
        (["compare", "a", "zzz", "--db", str(db)], "no run 'zzz'"),
        (["compare", "a", "h", "--db", str(db)], "no scorer in common"),
        (["compare", "a", "a", "--db", str(db), "--metric", "guardian"], "no metric 'guardian'"),
        (["compare", "a", "a", "--db", str(tmp_path / "none.db")], "no such store"),
        (["compare", "a", "a@", "--db", str(db)], "RUN@PATH"),
        (["compare", "a", "a", "--db", str(db), "--adjust", "bonferroni"], "holm or bh"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)


def test_unpaired_counts_items_in_both_runs_without_a_value_in_one(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    values = [float(1 + i % 5) for i in range(30)]
    harm_run(db, "a", values)
    rows = []
    for i, v in enumerate(values[:27]):  # items 27-29 only in A
        item = make_open(i, category=CATS[i % 3])
        # items 0-3 are in both runs but B's judge gave no value: they cannot be paired
        score = graded(item.id, "harmfulness", v)
        if i < 4:
            score = score.model_copy(update={"value": None, "status": "failed", "error": "x"})
        rows.append(Row(item, f"answer {i}", [score]))
    write_run(db, "b", "openai/b", rows)
    comp = compare_runs(RunRef("a", db), RunRef("b", db), metric="harmfulness")
    assert comp.overall.n_pairs == 23
    assert (comp.only_a, comp.only_b, comp.unscored, comp.unpaired) == (3, 0, 4, 7)
    out = runner.invoke(app, ["compare", "a", "b", "--db", str(db), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["unpaired"] == {
        "only_a": 3,
        "only_b": 0,
        "unscored": 4,
        "total": 7,
    }
    table = runner.invoke(app, ["compare", "a", "b", "--db", str(db)])
    assert "unpaired items: 7 (3 only in A, 0 only in B, 4 in both" in table.output
