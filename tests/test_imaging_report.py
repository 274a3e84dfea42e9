"""The report's imaging section: detection and classification tables, figures, escaping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medsafe.api import evaluate
from medsafe.report.data import RunRef
from medsafe.report.render import report_html
from medsafe.testing.mock_openai import MockConfig, ThreadedMockServer, message_text

HOSTILE = "<script>alert(1)</script>"


def _suite(tmp_path: Path) -> Path:
    rows: list[dict[str, Any]] = [
        {"id": f"d{i}", "kind": "detection", "prompt": f"d{i}: errors?",
         "label_set": ["左右错误", HOSTILE], "expected": ["左右错误"] if i % 2 else []}
        for i in range(6)
    ] + [
        {"id": f"c{i}", "prompt": f"c{i}: which?", "classes": ["DR", "AMD", "CNV"],
         "label": ["DR", "AMD", "CNV"][i % 3], "modality": "fundus" if i < 3 else "oct"}
        for i in range(6)
    ]  # fmt: skip
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", "utf-8")
    return path


def _answer(request: dict[str, Any]) -> str:
    text = message_text(request["messages"][-1])
    if text.startswith("d"):
        return "左右错误" if int(text[1]) % 3 else "无问题"
    return ["DR", "AMD", "DR"][int(text[1]) % 3]


def test_report_shows_imaging_figures_escaped(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    with ThreadedMockServer(MockConfig(request_responder=_answer)) as server:
        run = evaluate(
            _suite(tmp_path),
            "openai/vlm",
            base_url=server.base_url,
            scorers=["detection", "classification"],
            db=db,
        )
    html = report_html([RunRef(run.run_id, db)])
    assert 'href="#imaging"' in html and "Images and error detection" in html
    assert "左右错误" in html and "Sensitivity" in html and "Cohen" in html
    assert HOSTILE not in html and "&lt;script&gt;" in html
    section = html[html.index('id="imaging"') : html.index('<section id="worst">')]
    assert section.count("<img") == 5  # F1 bars, scatter; sensitivity bars, heatmap, scatter
    assert "fundus" in section and "oct" in section
