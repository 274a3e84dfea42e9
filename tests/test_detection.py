"""Multi-label detection: tolerant parsing, the statistics against scikit-learn, and a scripted
run through the loopback mock whose figures match values computed by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from medsafe.api import evaluate
from medsafe.imaging.labels import LabelParser
from medsafe.results.detection import DetectionRows, additional_block
from medsafe.stats.multilabel import label_matrix, multilabel_figures
from medsafe.testing.mock_openai import MockConfig, ThreadedMockServer, message_text

LABELS = ("左右错误", "单位错误", "错别字")


@pytest.mark.parametrize(
    ("answer", "labels"),
    [
        ("左右错误|单位错误", {"左右错误", "单位错误"}),
        ("错误类型：错别字", {"错别字"}),
        ("1. laterality error\n2. typo", {"左右错误", "错别字"}),
        ("左右の誤り、単位の誤り", {"左右错误", "单位错误"}),
        ("无问题", set()),
        ("問題なし。", set()),
        ("None", set()),
        ("[]", set()),
        ('```json\n[{"错误类型": "单位错误", "修改建议": "改为 mm"}]\n```', {"单位错误"}),
        ('{"errors": [{"type": "Typo", "location": "impression"}]}', {"错别字"}),
        ("<think>左右错误?</think>无错误", set()),
        ("无左右错误，但有单位错误", {"单位错误"}),
        ("No laterality error. Unit error present.", {"单位错误"}),
        ("左右の誤りなし", set()),
        ("Laterality error: none", set()),
    ],
)
def test_parser_reads_tolerant_forms(answer: str, labels: set[str]) -> None:
    parsed = LabelParser(LABELS).parse(answer)
    assert parsed.status == "parsed"
    assert parsed.labels == labels


@pytest.mark.parametrize("answer", ["", "I cannot tell.", "请提供更多信息", '[{"x": 1}]'])
def test_unreadable_answers_are_unparsed(answer: str) -> None:
    assert LabelParser(LABELS).parse(answer).status == "unparsed"


def test_parser_keeps_locations_suggestions_and_suite_synonyms() -> None:
    parser = LabelParser(("blur", "rotation"), {"blur": ["motion artefact", "模糊"]})
    parsed = parser.parse('[{"type": "模糊", "位置": "结论", "修改建议": "重拍"}]')
    assert parsed.labels == {"blur"}
    assert parsed.locations == {"blur": "impression"}
    assert parsed.suggestions == {"blur": "重拍"}
    assert parser.parse("Motion-Artefact | rotation").labels == {"blur", "rotation"}
    with pytest.raises(ValueError, match="not in the label_set"):
        LabelParser(("blur",), {"noise": ["x"]})


def test_figures_match_scikit_learn() -> None:
    rng = np.random.default_rng(7)
    truth = (rng.random((300, 5)) < 0.3).astype(int)
    pred = np.where(rng.random((300, 5)) < 0.8, truth, 1 - truth)
    truth[:, 4] = 0  # a label no item has: left out of macro-F1
    labels = tuple("abcde")
    fig = multilabel_figures(truth, pred, labels, np.arange(300) // 3, n_resamples=200)
    p, r, f, s = precision_recall_fscore_support(truth, pred, zero_division=np.nan)
    np.testing.assert_allclose(fig.precision, p)
    np.testing.assert_allclose(fig.recall[:4], r[:4])
    np.testing.assert_allclose(fig.f1[:4], f[:4])
    assert math.isnan(fig.recall[4])
    assert fig.support == tuple(int(x) for x in s)
    assert fig.micro_f1 == pytest.approx(f1_score(truth, pred, average="micro"))
    supported = [0, 1, 2, 3]
    macro = f1_score(truth, pred, average="macro", labels=supported)
    assert fig.macro_f1 == pytest.approx(macro)
    assert fig.exact_match == pytest.approx(accuracy_score(truth, pred))
    assert fig.n_clusters == 100
    for value, ci in ((fig.micro_f1, fig.micro_f1_ci), (fig.macro_f1, fig.macro_f1_ci)):
        assert ci.lo < value < ci.hi and ci.hi - ci.lo < 0.2
    again = multilabel_figures(truth, pred, labels, np.arange(300) // 3, n_resamples=200)
    assert again.macro_f1_ci == fig.macro_f1_ci


def test_figures_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="0/1"):
        multilabel_figures([[2]], [[1]], ("a",))
    with pytest.raises(ValueError, match="items x 2"):
        multilabel_figures([[1]], [[1]], ("a", "b"))
    with pytest.raises(ValueError, match="not in the label set"):
        label_matrix([{"z"}], ("a",))


def test_single_cluster_has_no_interval() -> None:
    fig = multilabel_figures([[1], [0]], [[1], [1]], ("a",), ["x", "x"])
    assert fig.precision == (0.5,) and math.isnan(fig.precision_ci[0].lo)


# A scripted run: item -> (expected, answer). Hand-computed figures below.
SCRIPT: dict[str, tuple[list[str], str]] = {
    "r1": (["左右错误"], "左右错误"),
    "r2": (["单位错误", "错别字"], "单位错误|错别字"),
    "r3": ([], "无问题"),
    "r4": (["左右错误"], "unit error"),
    "r5": (["错别字"], '[{"错误类型": "错别字", "位置": "结论"}, {"错误类型": "左右错误"}]'),
    "r6": (["单位错误"], "I cannot tell."),
}


def _suite(tmp_path: Path) -> Path:
    path = tmp_path / "qc.jsonl"
    rows = []
    for item_id, (expected, _answer) in SCRIPT.items():
        row: dict[str, Any] = {
            "id": item_id,
            "kind": "detection",
            "language": "zh",
            "prompt": f"报告 {item_id}: 请找出错误。",
            "label_set": list(LABELS),
            "expected": expected,
        }
        if item_id == "r5":
            row["locations"] = {"错别字": "impression"}
        rows.append(json.dumps(row, ensure_ascii=False))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _answer(request: dict[str, Any]) -> str:
    text = message_text(request["messages"][-1])
    item_id = text.split(":", 1)[0].split()[-1]
    return SCRIPT[item_id][1]


def test_scripted_run_gives_hand_computed_figures(tmp_path: Path) -> None:
    with ThreadedMockServer(MockConfig(request_responder=_answer)) as server:
        results = evaluate(
            _suite(tmp_path),
            "openai/mock",
            base_url=server.base_url,
            scorers=["detection"],
            db=tmp_path / "store.db",
        )
    block = results.model_dump(mode="json")["scorers"]["detection"]
    per = block["per_label"]
    assert per["左右错误"]["precision"]["value"] == pytest.approx(0.5)
    assert per["左右错误"]["recall"]["value"] == pytest.approx(0.5)
    assert per["左右错误"]["support"] == 2
    assert per["单位错误"]["precision"]["value"] == pytest.approx(0.5)
    assert per["单位错误"]["recall"]["value"] == pytest.approx(1.0)
    assert per["单位错误"]["f1"]["value"] == pytest.approx(2 / 3)
    assert per["错别字"]["f1"]["value"] == pytest.approx(1.0)
    assert block["micro_f1"]["value"] == pytest.approx(8 / 11)
    assert block["macro_f1"]["value"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert block["macro_f1"]["method"] == "cluster_bootstrap"
    assert block["exact_match"]["value"] == pytest.approx(3 / 5)
    assert block["unparsed"] == 1
    assert block["location"]["value"] == 1.0 and block["location"]["n"] == 1
    extra = block["additional"]
    assert (extra["flagged"], extra["rate"]["value"]) == (2, pytest.approx(2 / 5))
    assert extra["precision_before"]["value"] == pytest.approx(4 / 6)
    assert extra["precision_after"] is None


def test_additional_discoveries_after_confirmation() -> None:
    rows = DetectionRows(labels=["a", "b"])
    rows.add("i1", {"expected": ["a"], "predicted": ["a", "b"], "cluster": "i1"})
    rows.add("i2", {"expected": [], "predicted": ["b"], "cluster": "i2"})
    rows.add("i3", {"expected": ["b"], "predicted": ["b"], "cluster": "i3"})
    block = additional_block(rows, {"i1": {"b"}, "i2": set()})
    assert (block.flagged, block.reviewed, block.confirmed) == (2, 2, 1)
    assert block.precision_before.value == pytest.approx(2 / 4)
    assert block.precision_after is not None
    assert block.precision_after.value == pytest.approx(3 / 4)
    assert block.confirmed_rate is not None and block.confirmed_rate.value == pytest.approx(1 / 3)


def test_detection_item_errors_name_the_field(tmp_path: Path) -> None:
    from medsafe.errors import SuiteError
    from medsafe.suites import load_items

    path = tmp_path / "bad.jsonl"
    row = {"id": "x", "kind": "detection", "prompt": "p", "label_set": ["a"], "expected": ["b"]}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(SuiteError, match="not in the label_set") as info:
        load_items(path)
    assert info.value.field == "expected"
    row["expected"] = "a"  # |-joined text is accepted
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    (item,) = load_items(path)
    assert item.metadata["expected"] == ["a"]


def test_additional_discovery_review_round_trip(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from medsafe.cli import app
    from medsafe.results import load_results
    from medsafe.review.tasks import list_tasks, submit_label, unit_ids
    from medsafe.store.sqlite import Store

    db = tmp_path / "store.db"
    with ThreadedMockServer(MockConfig(request_responder=_answer)) as server:
        run = evaluate(
            _suite(tmp_path), "openai/mock", base_url=server.base_url, scorers=["detection"], db=db
        )
    result = CliRunner().invoke(
        app, ["qc", "discoveries", run.run_id, "--db", str(db), "--reviewer", "ana", "--k", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "2 items, 2 flagged labels" in result.output
    verdicts = {"r4": {"单位错误": "confirmed", "左右错误": "not_flagged"},
                "r5": {"单位错误": "not_flagged", "左右错误": "rejected"}}  # fmt: skip
    with Store(db) as store:
        (row,) = list_tasks(store.connection, run.run_id)
        task = row.spec
        assert sorted(unit_ids(store.connection, task.task_id)) == ["r4", "r5"]
        for item_id, values in verdicts.items():
            submit_label(store.connection, task.task_id, item_id, "ana", values)
    extra = load_results(db, run.run_id).scorers["detection"].additional
    assert extra is not None
    assert (extra.flagged, extra.reviewed, extra.confirmed) == (2, 2, 1)
    assert extra.precision_after is not None
    assert extra.precision_after.value == pytest.approx(5 / 6)
    assert extra.confirmed_rate is not None
    assert extra.confirmed_rate.value == pytest.approx(1 / 5)
    again = CliRunner().invoke(
        app, ["qc", "discoveries", "nope", "--db", str(db), "--reviewer", "a"]
    )
    assert again.exit_code == 2 and "nope" in again.output
