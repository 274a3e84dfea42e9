"""Judge summaries in ``results --json``: agreement checked against hand-computed values,
harmfulness per principle, MedES RiskRate / QualityScore / combined, rubric bootstrap CIs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np
import pytest

from medsafe.results import load_results
from medsafe.schema import Score, ScorerSpec
from medsafe.store import StoreWriter
from tests.conftest import create_run, make_spec
from tests.judge_helpers import open_item

A = [1, 2, 3, 4, 5, 1]
B = [1, 2, 4, 4, 3, 2]


def score(item_id: str, scorer: str, judge: str, value: float | None, **kw: Any) -> Score:
    return Score(item_id=item_id, scorer=scorer, scorer_version="1", judge=judge, value=value, **kw)


def store_scores(
    db: Path, scores: list[Score], n_items: int, spec_scorers: tuple[ScorerSpec, ...] = ()
) -> dict[str, Any]:
    items = [open_item(item_id=f"i{k}", category=f"ama-{k % 2 + 1}") for k in range(n_items)]
    create_run(db, make_spec("r", "openai/m", scorers=spec_scorers), items)
    writer = StoreWriter(db)
    writer.put_scores("r", scores)
    writer.close()
    return load_results(db, "r").model_dump(mode="json")


def harm_scores() -> list[Score]:
    out = []
    for k, (a, b) in enumerate(zip(A, B, strict=True)):
        out.append(score(f"i{k}", "harmfulness", "judge-a", a))
        out.append(score(f"i{k}", "harmfulness", "judge-b", b))
        out.append(score(f"i{k}", "harmfulness", "jury", (a + b) / 2))
    return out


def test_two_judge_agreement_matches_hand_computed_values(db: Path) -> None:
    spec = (ScorerSpec(name="harmfulness", judges=("judge-a", "judge-b")),)
    summary = store_scores(db, harm_scores(), len(A), spec)
    block = summary["scorers"]["harmfulness"]
    assert block["headline"] == "harmfulness:jury"
    assert block["judges"] == ["judge-a", "judge-b"]
    assert block["n"] == 6 and block["mean"] == pytest.approx(sum(A + B) / 12)
    agreement = block["agreement"]
    # Quadratic-weighted kappa = 1 - mean (a-b)^2 / E[(A-B)^2] under independent marginals:
    # observed mean (a-b)^2 = (0+0+1+0+4+1)/6 = 1; E = E[A^2] + E[B^2] - 2 E[A] E[B]
    # = 56/6 + 50/6 - 2 (16/6)^2 = 31/9, so kappa = 1 - 9/31 = 22/31.
    assert agreement["kappa"] == pytest.approx(22 / 31)
    # Spearman on mid-ranks: ra = [1.5,3,4,5,6,1.5], rb = [1,2.5,5.5,5.5,4,2.5];
    # rho = 12.75 / sqrt(17 * 16.5).
    assert agreement["spearman"] == pytest.approx(12.75 / math.sqrt(17 * 16.5))
    # |a - b| > 1 only for the fifth item (5 vs 3).
    split = agreement["disagreements"]
    assert (split["threshold"], split["n"], split["value"]) == (1.0, 6, pytest.approx(1 / 6))
    assert split["units"] == [{"item_id": "i4", "turn": None}]
    reference = krippendorff.alpha(
        reliability_data=np.array([A, B], float), level_of_measurement="ordinal"
    )
    assert agreement["alpha"] == pytest.approx(reference)
    assert agreement["alpha_level"] == "ordinal"


def test_disagreement_threshold_comes_from_the_run_spec(db: Path) -> None:
    spec = (
        ScorerSpec(
            name="harmfulness", judges=("judge-a", "judge-b"), options={"disagreement": "0"}
        ),
    )
    summary = store_scores(db, harm_scores(), len(A), spec)
    split = summary["scorers"]["harmfulness"]["agreement"]["disagreements"]
    assert split["value"] == pytest.approx(3 / 6)


def test_harmfulness_share_and_principles(db: Path) -> None:
    summary = store_scores(db, harm_scores(), len(A))
    a = summary["scorers"]["harmfulness:judge-a"]
    # judge-a: 4 and 5 are harmful -> 2 of 6
    assert a["harmful_share"]["value"] == pytest.approx(2 / 6)
    lo, hi = a["harmful_share"]["ci95"]
    assert lo < 2 / 6 < hi
    principles = a["by_category"]
    # items i0, i2, i4 are ama-1 (values 1, 3, 5); i1, i3, i5 are ama-2 (2, 4, 1)
    assert principles["ama-1"]["mean"] == pytest.approx(3.0)
    assert principles["ama-1"]["estimate"]["method"] == "bootstrap_percentile"
    assert principles["ama-2"]["harmful_share"]["value"] == pytest.approx(1 / 3)
    assert principles["ama-1"]["failed"] == 0


def test_failures_are_counted_not_scored(db: Path) -> None:
    scores = [
        score("i0", "safety", "judge-a", 8.0),
        score("i1", "safety", "judge-a", None, status="failed", error="unparseable"),
    ]
    summary = store_scores(db, scores, 2)
    block = summary["scorers"]["safety"]
    assert (block["n"], block["ok"], block["failed"], block["mean"]) == (2, 1, 1, 8.0)
    assert block["failure_rate"] == 0.5
    assert block["agreement"] is None and block["headline"] == "safety:judge-a"


def test_medes_metrics(db: Path) -> None:
    # values: risky, 0.5, 1.0, 0.75 -> RiskRate 1/4, QualityScore 0.75, combined 0.3125
    rows = [(-1.0, True, 0.25), (0.5, False, 0.5), (1.0, False, 1.0), (0.75, False, 0.75)]
    scores = [
        score(
            f"i{k}",
            "medes",
            "j",
            v,
            label="risky" if r else "safe",
            extra={"risky": r, "quality": q},
        )
        for k, (v, r, q) in enumerate(rows)
    ]
    summary = store_scores(db, scores, 4)
    block = summary["scorers"]["medes:j"]
    # the risk rate is the share positive under the scale's rule ("risky")
    assert block["harmful_share"]["value"] == pytest.approx(0.25)
    assert block["quality_score"]["value"] == pytest.approx(0.75)
    assert block["mean"] == pytest.approx(0.3125)
    assert block["ci_method"] == "bootstrap_percentile"
    assert summary["scorers"]["medes"]["harmful_share"]["n"] == 4


def test_rubric_mean_has_a_bootstrap_ci(db: Path) -> None:
    values = [0.0, 0.25, 0.5, 0.75, 1.0, 0.5]
    scores = [score(f"i{k}", "rubric", "j", v) for k, v in enumerate(values)]
    summary = store_scores(db, scores, len(values))
    block = summary["scorers"]["rubric"]
    assert block["mean"] == pytest.approx(0.5)
    assert block["ci_method"] == "bootstrap_percentile"
    lo, hi = block["ci95"]
    assert 0.0 <= lo < 0.5 < hi <= 1.0


def test_per_turn_units_are_aligned_by_item_and_turn(db: Path) -> None:
    scores = []
    for turn, (a, b) in enumerate([(9, 9), (7, 3), (2, 2)], start=1):
        scores.append(score("i0", "safety", "x", a, turn=turn))
        scores.append(score("i0", "safety", "y", b, turn=turn))
    summary = store_scores(db, scores, 1)
    agreement = summary["scorers"]["safety"]["agreement"]
    assert agreement["n_units"] == 3
    assert agreement["disagreements"]["units"] == [{"item_id": "i0", "turn": 2}]


def test_three_judges_report_pairs(db: Path) -> None:
    scores: list[Score] = []
    for k, values in enumerate([(1, 1, 2), (3, 3, 3), (5, 4, 5), (2, 2, 1)]):
        scores.extend(
            score(f"i{k}", "harmfulness", j, v) for j, v in zip("abc", values, strict=True)
        )
    summary = store_scores(db, scores, 4)
    agreement = summary["scorers"]["harmfulness"]["agreement"]
    assert set(agreement["pairs"]) == {"a|b", "a|c", "b|c"}
    mean_kappa = np.mean([p["kappa"] for p in agreement["pairs"].values()])
    assert agreement["kappa"] == pytest.approx(mean_kappa)


def _partial_jury(n_items: int, missed: set[int]) -> list[Score]:
    """Two judges and a jury on every item, except that judge-b fails (and the jury has no value)
    on the items ``missed``."""
    out = []
    for k in range(n_items):
        out.append(score(f"i{k}", "harmfulness", "judge-a", 2))
        if k in missed:
            out.append(score(f"i{k}", "harmfulness", "judge-b", None, status="failed", error="x"))
            out.append(score(f"i{k}", "harmfulness", "jury", None, status="failed", error="x"))
        else:
            out.append(score(f"i{k}", "harmfulness", "judge-b", 3))
            out.append(score(f"i{k}", "harmfulness", "jury", 2.5))
    return out


SPEC = (ScorerSpec(name="harmfulness", judges=("judge-a", "judge-b")),)


def test_full_jury_coverage(db: Path) -> None:
    block = store_scores(db, harm_scores(), len(A), SPEC)["scorers"]["harmfulness"]
    assert block["coverage"]["value"] == 1.0 and block["coverage"]["n"] == len(A)
    assert block["coverage"]["method"] == "wilson"
    assert block["coverage_warning"] is None


def test_jury_coverage_counts_units_a_judge_failed(db: Path) -> None:
    # items i0, i2, i4, ... are ama-1; misses spread evenly: 2 in each category
    summary = store_scores(db, _partial_jury(20, {0, 2, 1, 3}), 20, SPEC)
    for key in ("harmfulness", "harmfulness:jury"):
        coverage = summary["scorers"][key]["coverage"]
        assert (coverage["value"], coverage["n"]) == (pytest.approx(16 / 20), 20)
        assert summary["scorers"][key]["coverage_warning"] is None
    assert summary["scorers"]["harmfulness:judge-a"]["coverage"] is None


def test_jury_coverage_warns_when_the_missed_units_differ_by_category(
    db: Path,
) -> None:
    from rich.console import Console

    from medsafe.report.text import print_results

    summary = store_scores(db, _partial_jury(20, {0, 2, 4, 6, 8, 10}), 20, SPEC)
    block = summary["scorers"]["harmfulness"]
    assert block["coverage"]["value"] == pytest.approx(14 / 20)
    warning = block["coverage_warning"]
    assert "misses 6 of 20" in warning and "ama-1 is 100%" in warning and "29%" in warning
    console = Console(width=400, record=True)
    print_results(console, load_results(db, "r"), "run r")
    text = console.export_text()
    assert "jury covers 70.0% [48.1–85.5] of n=20 units; coverage warning (below)" in text
    assert "warning: harmfulness: the jury misses 6 of 20 judged units" in text


def test_jury_coverage_ignores_small_categories() -> None:
    from medsafe.results.judged import coverage_warning

    even = [(c, covered, 10 if covered else 2) for c in "abde" for covered in (True, False)]
    # "c" is 20% of the missed units and none of the covered ones, but has only 2 units
    assert coverage_warning([*even, ("c", False, 2)]) is None
    # with 5 units (3 covered: 7% of the covered units) the 13-point shift is reported
    assert coverage_warning([*even, ("c", True, 3), ("c", False, 2)]) is not None
    assert coverage_warning(even) is None  # nothing differs
    assert coverage_warning([("a", True, 9)]) is None  # nothing missed
