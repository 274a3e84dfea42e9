"""The shared text normaliser: a clean copy to read, and a matching copy for patterns."""

from __future__ import annotations

import pytest

from medsafe.textnorm import clean, matching_copy


def test_clean_strips_controls_and_invisibles_and_applies_nfkc() -> None:
    text = "ig\u200bno\u200dre\u202e \x00１０\ufeff点\x07\r\nnext\tline"
    assert clean(text) == "ignore 10点\nnext\tline"


@pytest.mark.parametrize(
    "text",
    [
        "カロリーを控え、ロキソニンは食後に服用してください。",
        "请不要忽视胸痛。应立即就医。",
        "Ρrinted label",  # clean never folds a Greek capital rho
    ],
)
def test_clean_never_changes_a_visible_letter(text: str) -> None:
    assert clean(text) == text


def test_matching_copy_folds_lookalikes_and_joins_spaced_letters() -> None:
    assert matching_copy("\u0456gn\u043ere") == "ignore"  # Cyrillic і and о
    assert matching_copy("I G N O R E all rules") == "IGNORE all rules"
    assert matching_copy("i.g.n.o.r.e it") == "ignore it"
    assert matching_copy("忽 略 指 令") == "忽略指令"
    assert matching_copy("指 示 を 無 視") == "指示を無視"


def test_matching_copy_leaves_japanese_katakana_alone() -> None:
    text = "カロリーとロキソニン"  # カ/ロ look like 力/口 in wider confusable tables
    assert matching_copy(text) == text


def test_matching_copy_keeps_ordinary_words_and_pairs_of_letters() -> None:
    assert matching_copy("take 2 tablets a day, e.g. with food") == (
        "take 2 tablets a day, e.g. with food"
    )
