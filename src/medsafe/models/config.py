"""Named models from a TOML config, referenced by name wherever a model spec is accepted.

```toml
[models.judge-a]
model = "openai/gpt-4o-mini"          # any KIND/NAME model spec
base_url = "http://127.0.0.1:8001/v1"
api_key_env = "JUDGE_A_KEY"           # optional; the key itself is never stored
params = { temperature = 0 }          # any ModelParams field
response_format = "json_schema"       # optional: none (default), json_object, json_schema
```

A reference is either a name defined there or a raw ``KIND/NAME`` spec
(:func:`resolve_model`). Only the environment variable's *name* is ever kept.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medsafe.errors import ConfigError
from medsafe.models.base import Backend, BackendOptions, create_backend, split_model_spec
from medsafe.redact import has_credentials, redact
from medsafe.schema import ModelParams

ResponseFormat = Literal["none", "json_object", "json_schema"]
DEFAULT_KEY_ENV = "OPENAI_API_KEY"


def check_url(url: str, where: str = "base URL") -> str:
    """``url`` if it is http(s) and carries no credentials; a ConfigError naming ``where``."""
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where} {redact(url)!r} must start with http:// or https://")
    if has_credentials(url):
        raise ConfigError(
            f"{where} {redact(url)!r} contains credentials, which would be stored with the run; "
            "remove them from the URL and put the key in OPENAI_API_KEY (or in the variable a "
            "config model's api_key_env names)"
        )
    return url


class NamedModel(BaseModel):
    """A model with where to reach it: spec, base URL, key variable name and parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    params: ModelParams | None = None
    response_format: ResponseFormat = "none"
    """Structured output the server supports (OpenAI ``response_format``); ``none`` asks only
    in the prompt."""
    image_max_side: int | None = Field(default=None, ge=16)
    """Longest side, in pixels, images are reduced to before they are sent (default 1,024)."""

    @field_validator("model")
    @classmethod
    def _spec(cls, value: str) -> str:
        kind, _, rest = value.partition("/")
        if not kind or not rest:
            raise ValueError(f"model spec {value!r} must look like KIND/NAME")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_url(value)
            except ConfigError as exc:  # pydantic reports ValueErrors with the field's name
                raise ValueError(str(exc)) from None
        return value

    def stored(self) -> dict[str, Any]:
        """The JSON kept in a run spec (only what was given; never a key, only its env name)."""
        data: dict[str, Any] = self.model_dump(exclude_unset=True, mode="json")
        return data


def _error_location(path: Path, name: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(part) for part in first["loc"])
    where = f"models.{name}.{loc}" if loc else f"models.{name}"
    return f"{path}: {where}: {first['msg']}"


def load_model_config(path: Path) -> dict[str, NamedModel]:
    """Read ``[models.NAME]`` tables; errors name the file and the key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    unknown = sorted(set(data) - {"models"})
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (expected [models.NAME] tables)")
    tables = data.get("models", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: models: must be a table of [models.NAME] tables")
    models: dict[str, NamedModel] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: models.{name}: must be a table")
        if "/" in name:
            raise ConfigError(f"{path}: models.{name}: a model name cannot contain '/'")
        try:
            models[name] = NamedModel.model_validate(table)
        except ValidationError as exc:
            raise ConfigError(_error_location(path, name, exc)) from None
    return models


def resolve_model(ref: str, config: dict[str, NamedModel] | None = None) -> NamedModel:
    """A config name's definition, else a raw ``KIND/NAME`` spec; a clear error otherwise."""
    if config and ref in config:
        return config[ref]
    if "/" in ref:
        split_model_spec(ref)
        return NamedModel(model=ref)
    known = ", ".join(sorted(config or {})) or "none (pass --config FILE)"
    raise ConfigError(
        f"model {ref!r} is neither a name in the config (known: {known}) nor a KIND/NAME spec"
    )


def load_optional(path: Path | None) -> dict[str, NamedModel]:
    """:func:`load_model_config` when a path is given, else no names."""
    return load_model_config(path) if path is not None else {}


def named_options(named: NamedModel, timeout_s: float = 60.0) -> BackendOptions:
    """The backend options a named model describes (its key's variable name, never the key)."""
    return BackendOptions(
        base_url=named.base_url,
        api_key_env=named.api_key_env or DEFAULT_KEY_ENV,
        timeout_s=timeout_s,
        extra={"image_max_side": str(named.image_max_side)} if named.image_max_side else {},
    )


def create_named_backend(named: NamedModel, timeout_s: float = 60.0) -> Backend:
    """Build the backend a named model describes (its key read from its env var, if any)."""
    return create_backend(named.model, named_options(named, timeout_s))


@dataclass(frozen=True)
class Target:
    """The target model of a run once a ``--model`` reference is resolved."""

    model: str
    base_url: str | None
    api_key_env: str | None
    params: ModelParams | None


def resolve_target(
    ref: str, base_url: str | None, params: ModelParams | None, config_path: Path
) -> Target:
    """``--model`` as a config name (or raw spec); ``--base-url`` and CLI parameters win."""
    named = resolve_model(ref, load_model_config(config_path))
    merged = named.params
    if merged is not None and params is not None:
        merged = merged.model_copy(update=params.model_dump(exclude_unset=True))
    chosen = merged if merged is not None else params
    return Target(named.model, base_url or named.base_url, named.api_key_env, chosen)
