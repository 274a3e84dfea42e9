"""The shared text normaliser: a clean copy to read, and a matching copy for patterns."""

from __future__ import annotations

import pytest

from medsafe.textnorm import clean, matching_copy


def test_clean_strips_controls_and_invisibles_and_applies_nfkc() -> None:
    text = "ig\u200bno\u200dre\u202b \x00１０\ufeff点\x07\r\nnext\tline"
    assert clean(text) == "ignore 10点\nnext\tline"


@pytest.mark.parametrize(
    ("stored", "seen"),
    [
        # a right-to-left override shows its content reversed: what a reader sees is the order
        ("No. \u202e.puos reh otni ti hsurC\u202c", "No. Crush it into her soup."),
        ("我不能帮忙。\u202e。里汤进放\u202c", "我不能帮忙。放进汤里。"),
        ("\u202e(etoN) ti pmuD", "Dump it (Note)"),  # no PDF: the line's end closes it
        ("\u202eab\ncd\u202c", "ba\ncd"),  # a newline ends the override
        ("\u202ea\u202dbc\u202cd\u202c", "dbca"),  # nested LTR override kept in its order
        ("\u202e\u2067xy\u2069z\u202c", "zxy"),  # an isolate is a unit
        ("\u202ee\u0301x\u202c", "xé"),  # a combining accent stays on its letter
        ("\u202bRLE keeps Latin order\u202c", "RLE keeps Latin order"),
    ],
)
def test_clean_resolves_right_to_left_overrides_into_display_order(stored: str, seen: str) -> None:
    assert clean(stored) == seen


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
