"""The optional GiNZA extra (``medsafe[ner]``): Japanese person names without an honorific."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from medsafe.dataethics.evaluate import evaluate, load_labelled
from medsafe.dataethics.scan import ScanConfig, scan_text

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ja_ginza") is None,
    reason="the ner extra (ja-ginza) is not installed: pip install 'medsafe[ner]'",
)
NER = ScanConfig(ner=True)


def test_bare_japanese_names_are_found_only_with_ner() -> None:
    text = "担当は井上です。山田花子は昨日入院した。"
    assert scan_text(text, "ja") == []
    found = [(f.type, f.text) for f in scan_text(text, "ja", NER)]
    assert found == [("person", "井上"), ("person", "山田花子")]


def test_ner_keeps_pattern_findings_and_leaves_chinese_alone() -> None:
    text = "田中さんの電話は090-1234-5678、同様に様子を見る。"
    assert [(f.type, f.text) for f in scan_text(text, "ja", NER)] == [
        ("person", "田中"),
        ("phone", "090-1234-5678"),
    ]
    assert scan_text("由于医生不足", "zh", NER) == []


def test_ner_on_the_held_out_japanese_snippets_keeps_precision() -> None:
    phi = Path(__file__).parent / "fixtures" / "phi"
    japanese = [s for s in load_labelled(phi / "heldout.jsonl") if s.lang == "ja"]
    result = evaluate(japanese, NER)
    overall = result.total()
    assert overall.tp / (overall.tp + overall.fp) >= 0.9, result.errors
