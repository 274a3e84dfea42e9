"""Imaging suite formats: MedBench-style image JSONL, an image folder with labels.csv and
CT-report QC JSONL (detected by shape, items validated, errors located)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from medsafe.errors import SuiteError
from medsafe.suites import detect_format, load_items


def _jsonl(path: Path, *rows: dict[str, Any]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", "utf-8")
    return path


def _image(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (90, 40, 10)).save(path)
    return path.name


def test_medbench_image_jsonl(tmp_path: Path) -> None:
    _image(tmp_path / "img" / "a.png")
    path = _jsonl(
        tmp_path / "medbench.jsonl",
        {"question": "该眼底图最可能的诊断？\nA. 糖尿病视网膜病变\nB. 青光眼", "answer": "A",
         "img_path": "img/a.png"},
        {"question": "Describe the lesion.", "answer": "A drusen cluster.",
         "img_path": ["img/a.png"], "id": "free"},
        {"question": "Which?", "options": {"A": "DR", "B": "AMD"}, "answer": "B",
         "img_path": "img/a.png"},
    )  # fmt: skip
    assert detect_format(path) == "medbench-image"
    mcq, free, beside = load_items(path)
    assert (mcq.kind, mcq.answer, mcq.language) == ("mcq", "A", "zh")
    assert mcq.options == {"A": "糖尿病视网膜病变", "B": "青光眼"}
    assert mcq.attachments[0].path.endswith("img/a.png")
    assert (free.kind, free.reference, free.id) == ("image", "A drusen cluster.", "free")
    assert beside.options == {"A": "DR", "B": "AMD"} and beside.answer == "B"


def test_medbench_image_errors_are_located(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "m.jsonl", {"question": "q", "answer": "A", "img_path": "nope.png"})
    with pytest.raises(SuiteError, match="no such file") as info:
        load_items(path, "medbench-image")
    assert (info.value.line, info.value.field) == (1, "attachments[0].path")


def test_image_folder_with_labels(tmp_path: Path) -> None:
    folder = tmp_path / "eyes"
    for name in ("f1.png", "f2.png", "o1.png"):
        _image(folder / name)
    (folder / "labels.csv").write_text(
        "path,label,modality\nf1.png,DR,fundus\nf2.png,AMD,fundus\no1.png,CNV,oct\n", "utf-8"
    )
    assert detect_format(folder) == "image-folder"
    items = load_items(folder)
    assert [i.metadata["label"] for i in items] == ["DR", "AMD", "CNV"]
    assert items[0].metadata["classes"] == ["AMD", "CNV", "DR"]
    assert items[2].metadata["modality"] == "oct" and items[0].kind == "image"
    assert "AMD / CNV / DR" in items[0].last_user_text()
    (folder / "labels.csv").write_text("path,label\nf1.png,DR\nf2.png,AMD\no1.png,\n", "utf-8")
    with pytest.raises(SuiteError, match="empty label") as info:
        load_items(folder)
    assert info.value.line == 4
    (folder / "labels.csv").write_text("path,label\nf1.png,DR\n", "utf-8")
    with pytest.raises(SuiteError, match="at least two distinct labels"):
        load_items(folder)


def test_ct_report_qc_jsonl(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "ct.jsonl",
        {"id": "c1", "report": "影像所见：左肺上叶结节约12cm。影像诊断：右肺上叶结节。",
         "errors": [{"type": "单位错误", "location": "所见", "suggestion": "12mm"},
                    {"type": "左右错误", "location": "诊断"}]},
        {"id": "c2", "report": "Findings: normal. Impression: normal.", "errors": []},
    )  # fmt: skip
    assert detect_format(path) == "ct-report-qc"
    zh, en = load_items(path)
    assert zh.kind == "detection" and zh.language == "zh"
    assert zh.metadata["expected"] == ["单位错误", "左右错误"]
    assert zh.metadata["locations"] == {"单位错误": "findings", "左右错误": "impression"}
    assert len(zh.metadata["label_set"]) == 8
    assert en.metadata["expected"] == [] and "laterality error" in en.metadata["label_set"]
    bad = _jsonl(tmp_path / "bad.jsonl", {"report": "x", "errors": [{"type": "weird"}]})
    with pytest.raises(SuiteError, match="names no one label") as info:
        load_items(bad, "ct-report-qc")
    assert info.value.field == "errors[0]"
