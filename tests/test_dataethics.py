"""Data-ethics detectors: check digits, offsets, the labelled set's figures, bundled suites."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medsafe.dataethics.checkdigits import (
    cn_id_check,
    cn_id_valid,
    my_number_check,
    my_number_valid,
)
from medsafe.dataethics.entities import BLOCKING, ENTITY_TYPES, STRUCTURED
from medsafe.dataethics.evaluate import evaluate, load_labelled
from medsafe.dataethics.normalize import normalise
from medsafe.dataethics.redaction import Redactor
from medsafe.dataethics.scan import ScanConfig, scan_items, scan_text
from medsafe.errors import SuiteError
from medsafe.suites import load_items

PHI = Path(__file__).parent / "fixtures" / "phi"

# GB 11643-1999 written as its published weight table (independent of checkdigits.py)
CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def table_check(body: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(body, CN_WEIGHTS, strict=True)) % 11]


def test_resident_id_check_digit_matches_the_published_table() -> None:
    assert cn_id_valid("11010519491231002X")  # the standard's own example
    assert cn_id_valid("11010519491231002x")
    assert not cn_id_valid("110105194912310021")
    rng = random.Random(1)
    for _ in range(500):
        body = "".join(str(rng.randint(0, 9)) for _ in range(17))
        assert cn_id_check(body) == table_check(body)
    with pytest.raises(ValueError):
        cn_id_check("123")


def test_my_number_check_digit() -> None:
    assert my_number_valid("123456789018")  # 11 - (sum P_n Q_n mod 11) = 8
    assert not my_number_valid("123456789012")
    assert my_number_check("12345678901") == 8
    assert not my_number_valid("12345678901a")
    # every body has exactly one valid check digit
    rng = random.Random(2)
    for _ in range(200):
        body = "".join(str(rng.randint(0, 9)) for _ in range(11))
        assert sum(my_number_valid(body + str(d)) for d in range(10)) == 1


def test_full_width_text_keeps_original_offsets() -> None:
    text = "電話：０９０－１２３４－５６７８です"
    folded = normalise(text)
    assert "090-1234-5678" in folded.text
    [finding] = scan_text(text)
    assert finding.type == "phone"
    assert text[finding.start : finding.end] == "０９０－１２３４－５６７８" == finding.text
    ligature = "ﬁle: ﬀ a@example.com"  # one character folds to two
    [mail] = scan_text(ligature)
    assert ligature[mail.start : mail.end] == "a@example.com"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("身份证号11010519491231002X", [("cn_resident_id", "11010519491231002X")]),
        ("マイナンバー 1234-5678-9018", [("jp_my_number", "1234-5678-9018")]),
        ("请拨打 138-1234-5678", [("phone", "138-1234-5678")]),
        ("电话 010-62345678", [("phone", "010-62345678")]),
        ("Call +44 20 7946 0018 now", [("phone", "+44 20 7946 0018")]),
        ("令和5年4月1日に入院", [("date", "令和5年4月1日")]),
        ("生年月日：昭和60年3月3日", [("date_of_birth", "昭和60年3月3日")]),
        ("该规定于2022年7月1日生效", [("date", "2022年7月1日")]),
        ("田中さんと山田様", [("person", "田中"), ("person", "山田")]),
        ("王医生建议复查", [("person", "王")]),
        ("Dr. Smith called", [("person", "Smith")]),
        ("Prof. Dr. Müller agreed", [("person", "Müller")]),
        ("see 10.1.2.3 of the guideline; server 10.0.0.1", [("ip_address", "10.0.0.1")]),
        (
            "〒100-0001 東京都千代田区千代田1-1",
            [("postal_code", "100-0001"), ("address", "東京都千代田区千代田1-1")],
        ),
        ("IP 192.168.10.20.", [("ip_address", "192.168.10.20")]),
        ("同様に様子を見る。皆様、患者様、お母さん、看護師さん", []),
        ("由于医生不足，请向医生说明，万一医生不在", []),
        ("Metformin 500 mg bid; HbA1c 7.2%; ICD-10 E11.9; J45.909", []),
        ("Lot 20230415; 批号 2304151234; Article 12.3.4.1; 第3.2.1.4节", []),
        ("Order number 1234-5678-9012; 订单号 202304151234567890", []),
    ],
)
def test_examples(text: str, expected: list[tuple[str, str]]) -> None:
    assert [(f.type, f.text) for f in scan_text(text)] == expected


def test_configured_mrn_pattern() -> None:
    text = "Case HX-2024-00917 was reviewed."
    assert scan_text(text) == []
    config = ScanConfig(mrn_patterns=(r"\b(HX-\d{4}-\d{5})\b",))
    [finding] = scan_text(text, config=config)
    assert (finding.type, finding.text) == ("mrn", "HX-2024-00917")


def test_labelled_set_is_big_enough_and_balanced() -> None:
    snippets = load_labelled(PHI / "labelled.jsonl")
    assert len(snippets) >= 300
    assert sum(not s.gold for s in snippets) >= len(snippets) / 3
    assert {s.lang for s in snippets} == {"zh", "ja", "en"}
    kinds = {kind for s in snippets for kind, _, _ in s.gold}
    assert kinds == set(ENTITY_TYPES)


@pytest.mark.parametrize("name", ["labelled.jsonl", "heldout.jsonl"])
def test_precision_and_recall_on_the_labelled_sets(name: str) -> None:
    result = evaluate(load_labelled(PHI / name))
    structured = result.total(types=STRUCTURED)
    overall = result.total()
    assert structured.tp / (structured.tp + structured.fn) >= 0.95, result.errors
    assert overall.tp / (overall.tp + overall.fp) >= 0.9, result.errors
    data = result.to_dict()
    for block in data["by_type_language"].values():
        assert block["tp"] + block["fn"] > 0 or block["fp"] > 0


def test_a_detector_that_finds_nothing_scores_zero_recall(monkeypatch: pytest.MonkeyPatch) -> None:
    """The evaluation counts misses: with the detectors off, recall is 0 and errors list them."""
    import medsafe.dataethics.scan as scan

    monkeypatch.setattr(scan, "detect", lambda text, lang, patterns: [])
    result = evaluate(load_labelled(PHI / "labelled.jsonl"))
    assert result.total().tp == 0 and result.total().fn > 200
    assert any("missed" in e for e in result.errors)


def test_bad_labelled_file_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"lang": "en", "text": "call 212-555-0100", "entities": []}\n'
        '{"lang": "en", "text": "x", "entities": [{"type": "phone", "text": "y"}]}\n',
        encoding="utf-8",
    )
    with pytest.raises(SuiteError, match=r"bad.jsonl:2: field 'entities.0'"):
        load_labelled(path)


@pytest.mark.parametrize("suite", ["starter", "demo"])
def test_bundled_suites_have_no_findings(suite: str) -> None:
    findings = list(scan_items(load_items(suite)))
    assert findings == []


def test_redaction_placeholders_are_consistent() -> None:
    redactor = Redactor()
    first = "田中さんの電話は090-1234-5678、田中さんのメールは t@example.com"
    second = "電話 ０９０１２３４５６７８ と 080-1111-2222、2023年4月1日に入院"
    out1 = redactor.redact(first, scan_text(first))
    out2 = redactor.redact(second, scan_text(second))
    assert out1 == "[PERSON_1]さんの電話は[PHONE_1]、[PERSON_1]さんのメールは [EMAIL_1]"
    assert out2 == "電話 [PHONE_1] と [PHONE_2]、[DATE_1]に入院"
    keep = Redactor(keep_dates=True)
    assert keep.redact(second, scan_text(second)).endswith("2023年4月1日に入院")


def test_blocking_types() -> None:
    assert "person" not in BLOCKING and "date" not in BLOCKING
    assert {"email", "phone", "cn_resident_id", "jp_my_number", "date_of_birth"} <= BLOCKING


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            list("0123456789０１２３４５６７８９－-@.abcXｘ ﬁ㍉①患者様さん田中电话\n")
        ),
        max_size=60,
    )
)
def test_offsets_always_index_the_original_text(text: str) -> None:
    folded = normalise(text)
    assert len(folded.origin) == len(folded.text)
    assert list(folded.origin) == sorted(folded.origin)
    for finding in scan_text(text):
        assert 0 <= finding.start < finding.end <= len(text)
        assert text[finding.start : finding.end] == finding.text
