"""The fast canonical encoder writes exactly what the reference RFC 8785 encoder writes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from medsafe.audit.canonical import canonical, canonical_json_text

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(_json, st.booleans())
def test_fast_path_equals_rfc8785(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        expected = rfc8785.dumps(json.loads(text))
    except rfc8785.CanonicalizationError:  # a lone surrogate from st.text()
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical_json_text(text)
        return
    assert canonical_json_text(text) == expected


@pytest.mark.parametrize(
    "number",
    [
        "1.0",
        "-0.0",
        "0.0001",
        "0.00001",
        "1e-7",
        "123456.789",
        "1e16",
        "1e21",
        "1e300",
        "9007199254740991",
        "-9007199254740991",
        "4.5",
        "2.5e-5",
        "0.1",
        "100.0",
    ],
)
def test_numbers(number: str) -> None:
    text = f'{{"v": {number}, "w": [{number}]}}'
    assert canonical_json_text(text) == rfc8785.dumps(json.loads(text))


def test_control_characters_and_key_order() -> None:
    value = {
        "b": "".join(chr(i) for i in range(0x80)) + "\u2028 中文 日本語 \U0001f600",
        "a": 1,
        "\U0001f600": 1,
        "\uff61": 2,
        "é": 3,
    }
    for ascii_only in (True, False):
        text = json.dumps(value, ensure_ascii=ascii_only)
        assert canonical_json_text(text) == canonical(value)


def test_extra_members_and_refusals() -> None:
    text = '{"target": {"status": "ok", "latency_s": 0.5}}'
    extra = {"item_id": "q1", "seq": 0, "user": "ユーザー", "reply": "好"}
    assert canonical_json_text(text, extra) == canonical({**json.loads(text), **extra})
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_json_text('{"seed": 9007199254740993}')
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_json_text('{"v": NaN}')
