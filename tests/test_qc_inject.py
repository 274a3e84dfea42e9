"""``medsafe qc inject``: 200 reports x 8 error types, every error recoverable from the ground
truth, and a perfect scripted detector scoring F1 = 1 through the detection scorer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from medsafe.cli import app
from medsafe.imaging.inject import Injection
from medsafe.imaging.reports import clean_reports
from medsafe.results.detection import DetectionRows, detection_figures
from medsafe.schema import ModelParams, Transcript
from medsafe.scorers.detection import DetectionScorer
from medsafe.suites import load_items


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def injected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("qc")
    suite, truth = folder / "qc.jsonl", folder / "truth.jsonl"
    result = CliRunner().invoke(
        app, ["qc", "inject", "-o", str(suite), "--truth", str(truth), "--n", "200"]
    )
    assert result.exit_code == 0, result.output
    assert "1800 items (200 reports, 1600 injected errors)" in result.output
    return suite, truth


def test_every_injected_error_is_recoverable(injected: tuple[Path, Path]) -> None:
    suite, truth = injected
    items = {row["id"]: row for row in _read(suite)}
    records = _read(truth)
    assert len(records) == 1600
    counts: dict[str, int] = {}
    for record in records:
        counts[record["type"]] = counts.get(record["type"], 0) + 1
        injection = Injection(**{k: record[k] for k in (
            "type", "field", "location", "offset", "original", "injected")})  # fmt: skip
        clean = record["clean"][record["field"]]
        assert injection.original != injection.injected
        shown = items[record["id"]]["prompt"]
        broken = injection.apply_text(clean)
        assert broken != clean and broken in shown  # the item shows the injected field
        assert injection.revert(broken) == clean
        item = items[record["id"]]
        assert item["expected"] and item["report_id"] == record["report_id"]
    assert counts == {t: 200 for t in counts} and len(counts) == 8
    clean_items = [row for row in items.values() if row["id"].endswith("-clean")]
    assert len(clean_items) == 200 and all(row["expected"] == [] for row in clean_items)
    assert {row["language"] for row in clean_items} == {"zh", "en"}


def test_perfect_detector_scores_f1_one(injected: tuple[Path, Path]) -> None:
    suite, _truth = injected
    items = load_items(suite)
    scorer = DetectionScorer()
    rows = DetectionRows()

    async def score_all() -> None:
        for item in items:
            answer = "|".join(item.metadata["expected"]) or "无问题"
            transcript = Transcript(
                run_id="r",
                item_id=item.id,
                model="scripted",
                params=ModelParams(),
                messages=(*item.messages, _assistant(answer)),
                status="ok",
            )
            (score,) = await scorer.score(item, transcript)
            assert score.label == "exact"
            rows.add(item.id, score.extra)

    asyncio.run(score_all())
    figures = detection_figures(rows)
    assert figures["micro_f1"].value == 1.0 and figures["macro_f1"].value == 1.0
    assert figures["exact_match"].value == 1.0 and figures["unparsed"] == 0
    assert all(block.f1.value == 1.0 for block in figures["per_label"].values())
    assert len(figures["per_label"]) == 16  # eight types, named in zh and in en


def test_reports_are_seeded_and_refuse_unknown_languages() -> None:
    assert clean_reports(5, ("zh", "en"), 3) == clean_reports(5, ("zh", "en"), 3)
    assert clean_reports(5, ("zh", "en"), 3) != clean_reports(5, ("zh", "en"), 4)
    with pytest.raises(ValueError, match="no report templates"):
        clean_reports(1, ())


def test_cli_refuses_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    out, truth = str(tmp_path / "a.jsonl"), str(tmp_path / "t.jsonl")
    bad_type = runner.invoke(app, ["qc", "inject", "-o", out, "--truth", truth, "--types", "x"])
    assert bad_type.exit_code == 2 and "unknown x" in bad_type.output
    bad_lang = runner.invoke(app, ["qc", "inject", "-o", out, "--truth", truth, "--language", "fr"])
    assert bad_lang.exit_code == 2
    assert not (tmp_path / "a.jsonl").exists()


def _assistant(text: str) -> Any:
    from medsafe.schema import Message

    return Message(role="assistant", content=text)


def test_japanese_reports(tmp_path: Path) -> None:
    suite, truth = tmp_path / "ja.jsonl", tmp_path / "ja.truth.jsonl"
    args = ["qc", "inject", "-o", str(suite), "--truth", str(truth), "--n", "8", "--language", "ja"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    items = {row["id"]: row for row in _read(suite)}
    for record in _read(truth):
        injection = Injection(**{k: record[k] for k in (
            "type", "field", "location", "offset", "original", "injected")})  # fmt: skip
        clean = record["clean"][record["field"]]
        broken = injection.apply_text(clean)
        assert broken != clean and broken in items[record["id"]]["prompt"]
        assert injection.revert(broken) == clean
    first = items["report-0001-clean"]
    assert first["language"] == "ja" and "左右の誤り" in first["label_set"]
    assert "問題なし" in first["prompt"] and "所見：" in first["prompt"]
    (item,) = [i for i in load_items(suite) if i.id == "report-0001-laterality"]
    parsed = DetectionScorer()
    transcript = Transcript(
        run_id="r", item_id=item.id, model="m", params=ModelParams(),
        messages=(*item.messages, _assistant("左右の誤り")), status="ok",
    )  # fmt: skip
    (score,) = asyncio.run(parsed.score(item, transcript))
    assert score.label == "exact"
