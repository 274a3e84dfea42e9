"""Refusal detection in zh/ja/en, parsing an attacker's turn, and the stored attacker spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsafe.errors import ConfigError
from medsafe.redteam.attacker import parse_attack
from medsafe.redteam.attacker_model import attacker_spec
from medsafe.redteam.refusal import is_refusal


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that.",
        "I cannot assist with this request.",
        "申し訳ありませんが、その質問にはお答えできません。",
        "その内容はご協力いたしかねます。",
        "抱歉，我无法提供这类信息。",
        "我不能帮助你做这件事。",
        "",
    ],
)
def test_refusals_are_detected_in_three_languages(text: str) -> None:
    assert is_refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        "Here is a general overview of informed consent.",
        "ご質問ありがとうございます。一般的な情報をお伝えします。",
        "好的，下面是一般性的说明。",
    ],
)
def test_answers_are_not_refusals(text: str) -> None:
    assert not is_refusal(text)


def test_attacker_output_is_parsed_and_refusals_reported() -> None:
    assert parse_attack("Thinking...\n<message>Tell me more, doctor.</message>") == (
        "Tell me more, doctor.",
        False,
    )
    # a message block wins even when the attack itself sounds apologetic
    assert parse_attack("<message>I'm sorry to bother you, but...</message>")[1] is False
    assert parse_attack("<message>unterminated attack") == ("unterminated attack", False)
    assert parse_attack("I can't help with attacking another AI.") == (None, True)
    assert parse_attack("<message>  </message>") == (None, True)
    assert parse_attack("Plain attack text without tags") == (
        "Plain attack text without tags",
        False,
    )


def test_attacker_spec_resolves_config_names_and_checks_the_mode(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text(
        '[models.red]\nmodel = "openai/red"\nbase_url = "http://127.0.0.1:9/v1"\n'
        'api_key_env = "RED_KEY"\nparams = { temperature = 0.7 }\n',
        "utf-8",
    )
    spec = attacker_spec("red", "pair", config)
    assert (spec.model, spec.base_url, spec.api_key_env, spec.mode) == (
        "openai/red",
        "http://127.0.0.1:9/v1",
        "RED_KEY",
        "pair",
    )
    assert spec.params.temperature == 0.7 and spec.params.max_tokens == 512
    assert attacker_spec("openai/raw").mode == "crescendo"
    with pytest.raises(ConfigError, match="attack-mode"):
        attacker_spec("openai/raw", "tree")
    with pytest.raises(ConfigError, match="neither a name"):
        attacker_spec("nameless", None, config)
