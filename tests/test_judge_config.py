"""Named models from TOML: loading, errors naming file and key, resolving references."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsafe.errors import ConfigError
from medsafe.judges.build import judge_specs, parse_judge_arg
from medsafe.models.config import (
    NamedModel,
    create_named_backend,
    load_model_config,
    resolve_model,
    resolve_target,
)
from medsafe.models.openai_compat import OpenAICompatBackend
from medsafe.schema import ModelParams, ScorerSpec
from medsafe.scoring import merge_specs

GOOD = """
[models.judge-a]
model = "openai/gpt-4o-mini"
base_url = "http://127.0.0.1:8001/v1"
api_key_env = "JUDGE_A_KEY"
params = { temperature = 0, max_tokens = 300 }

[models.judge-b]
model = "openai/qwen2.5:7b"
response_format = "json_schema"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "medsafe.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_and_resolve(tmp_path: Path) -> None:
    config = load_model_config(write(tmp_path, GOOD))
    a = resolve_model("judge-a", config)
    assert a.model == "openai/gpt-4o-mini"
    assert a.api_key_env == "JUDGE_A_KEY"
    assert a.params is not None and a.params.max_tokens == 300
    assert a.stored() == {
        "model": "openai/gpt-4o-mini",
        "base_url": "http://127.0.0.1:8001/v1",
        "api_key_env": "JUDGE_A_KEY",
        "params": {"temperature": 0.0, "max_tokens": 300},
    }
    assert config["judge-b"].response_format == "json_schema"
    assert resolve_model("openai/raw", config) == NamedModel(model="openai/raw")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[models.a]\nmodel = "openai/x"\ncolour = "red"\n', "models.a.colour: Extra inputs"),
        ('[models.a]\nmodel = "nospec"\n', "models.a.model: Value error"),
        (
            '[models.a]\nmodel = "openai/x"\nparams = { temprature = 0 }\n',
            "models.a.params.temprature",
        ),
        ('[models.a]\nmodel = "openai/x"\nbase_url = "ftp://x"\n', "models.a.base_url"),
        ('[models.a]\nmodel = "openai/x"\nresponse_format = "xml"\n', "models.a.response_format"),
        ("[judges]\nx = 1\n", "unknown key 'judges'"),
        ("[models.a\n", "invalid TOML"),
        ('models = "x"\n', "models: must be a table"),
        ('[models]\na = "openai/x"\n', "models.a: must be a table"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_model_config(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_file_and_unknown_reference(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_model_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="neither a name in the config"):
        resolve_model("judge-z", {})


def test_named_backend_reads_key_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_A_KEY", "sekret")
    backend = create_named_backend(
        NamedModel(model="openai/x", base_url="http://127.0.0.1:1/v1", api_key_env="JUDGE_A_KEY")
    )
    assert isinstance(backend, OpenAICompatBackend)
    assert backend.model_id == "openai/x"
    assert backend._headers["Authorization"] == "Bearer sekret"


def test_resolve_target_merges_cli_over_config(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    target = resolve_target("judge-a", None, ModelParams(temperature=0.7), path)
    assert target.model == "openai/gpt-4o-mini"
    assert target.base_url == "http://127.0.0.1:8001/v1"
    assert target.api_key_env == "JUDGE_A_KEY"
    assert target.params is not None
    assert (target.params.temperature, target.params.max_tokens) == (0.7, 300)
    raw = resolve_target("openai/y", "http://127.0.0.1:9/v1", None, path)
    assert (raw.model, raw.base_url, raw.params) == ("openai/y", "http://127.0.0.1:9/v1", None)


def test_judge_args_group_per_scorer(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert parse_judge_arg("harmfulness:openai/llama3:8b") == ("harmfulness", "openai/llama3:8b")
    specs = judge_specs(
        ["harmfulness:judge-a", "safety:judge-b", "harmfulness:openai/raw", "guardian"], path
    )
    assert [s.name for s in specs] == ["harmfulness", "safety", "guardian"]
    assert specs[0].judges == ("judge-a", "openai/raw")
    assert specs[0].options["judge_models"]["judge-a"]["api_key_env"] == "JUDGE_A_KEY"
    assert specs[0].options["judge_models"]["openai/raw"] == {"model": "openai/raw"}
    assert specs[2] == ScorerSpec(name="guardian")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["harmfulness"], "needs a model"),
        (["guardian:openai/x"], "takes no model"),
        (["harmfulness:judge-a", "harmfulness:judge-a"], "given twice"),
        (["nosuch:judge-a"], "unknown scorer"),
        (["harmfulness:judge-z"], "neither a name"),
        (["harmfulness:"], "empty model"),
    ],
)
def test_bad_judge_args(tmp_path: Path, args: list[str], message: str) -> None:
    with pytest.raises(Exception, match=message):
        judge_specs(args, write(tmp_path, GOOD))


def test_merge_keeps_options_and_takes_judges() -> None:
    base = (ScorerSpec(name="mcq"), ScorerSpec(name="safety", options={"combine": "min"}))
    judged = (ScorerSpec(name="safety", judges=("a", "b"), options={"judge_models": {}}),)
    merged = merge_specs(base, judged)
    assert [s.name for s in merged] == ["mcq", "safety"]
    assert merged[1].judges == ("a", "b")
    assert merged[1].options == {"combine": "min", "judge_models": {}}
