"""Classification figures against hand-computed values and reference implementations."""

from __future__ import annotations

import asyncio

import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.proportion import proportion_confint

from medsafe.results.classification import ClassRows, classification_figures
from medsafe.schema import Item, Message, ModelParams, Transcript
from medsafe.scorers.classification import ClassificationScorer

PAIRS = [("DR", "DR"), ("DR", "DR"), ("DR", "AMD"), ("AMD", "AMD"),
         ("AMD", "CNV"), ("CNV", "CNV"), ("CNV", "DR"), ("CNV", "CNV")]  # fmt: skip


def _rows() -> ClassRows:
    return ClassRows(
        classes=["DR", "AMD", "CNV"],
        reference=[r for r, _ in PAIRS],
        predicted=[p for _, p in PAIRS],
        modality=["fundus"] * 4 + ["oct"] * 4,
        unparsed=1,
    )


def test_per_class_figures_match_hand_computed_values() -> None:
    fig = classification_figures(_rows())
    assert fig.confusion == [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
    dr, amd = fig.per_class["DR"], fig.per_class["AMD"]
    assert (dr.sensitivity.value, dr.specificity.value, dr.ppv.value) == pytest.approx(
        (2 / 3, 4 / 5, 2 / 3)
    )
    assert (amd.sensitivity.value, amd.specificity.value) == pytest.approx((1 / 2, 5 / 6))
    assert fig.macro_f1 == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert fig.accuracy.value == pytest.approx(5 / 8)
    assert fig.by_modality["fundus"].value == pytest.approx(3 / 4)
    assert fig.by_modality["oct"].value == pytest.approx(2 / 4)
    assert fig.unparsed == 1
    ref = [r for r, _ in PAIRS]
    got = [p for _, p in PAIRS]
    assert fig.kappa == pytest.approx(cohen_kappa_score(ref, got))
    lo, hi = proportion_confint(2, 3, method="wilson")
    assert dr.sensitivity.ci95 == pytest.approx((lo, hi))
    assert dr.sensitivity.method == "wilson" and dr.support == 3


def _item(label: str) -> Item:
    return Item(
        id="x",
        kind="image",
        messages=(Message(role="user", content="Which?"),),
        metadata={"classes": ["DR", "AMD"], "label": label, "synonyms": {"DR": ["糖网"]}},
    )


@pytest.mark.parametrize(
    ("answer", "label", "value"),
    [("答案：糖网", "correct", 1.0), ("AMD", "incorrect", 0.0), ("DR or AMD", "unparsed", None),
     ("I do not know", "unparsed", None)],
)  # fmt: skip
def test_scorer_reads_one_class(answer: str, label: str, value: float | None) -> None:
    item = _item("DR")
    transcript = Transcript(
        run_id="r",
        item_id="x",
        model="m",
        params=ModelParams(),
        messages=(*item.messages, Message(role="assistant", content=answer)),
        status="ok",
    )
    (score,) = asyncio.run(ClassificationScorer().score(item, transcript))
    assert (score.label, score.value) == (label, value)


def test_scorer_skips_malformed_items() -> None:
    item = _item("GLAUCOMA")
    transcript = Transcript(
        run_id="r", item_id="x", model="m", params=ModelParams(), messages=(), status="ok"
    )
    (score,) = asyncio.run(ClassificationScorer().score(item, transcript))
    assert score.status == "skipped" and "not among the classes" in (score.error or "")
