"""Building judged scorers: judge models from a scorer config, ``--judge`` arguments, options.

The resolved definition of every judge (``NamedModel``: spec, base URL, key *variable name*,
parameters) is stored in the scorer's options under ``judge_models`` so that the run spec alone
rebuilds the judges (``--rescore`` needs no config file). API keys are never stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from medsafe.errors import ConfigError
from medsafe.judges.base import JudgedScorer, JuryOptions
from medsafe.judges.client import JudgeClient
from medsafe.judges.jury import check_method
from medsafe.models.config import NamedModel, load_optional, resolve_model
from medsafe.schema import ScorerSpec
from medsafe.scoring import Scorer, ScorerConfig, create_scorer, scorers

T = TypeVar("T")
MODELS_KEY = "judge_models"
CLIENT_OPTIONS = ("concurrency", "timeout", "retries", "parse_retries")
JURY_OPTIONS = ("combine", "disagreement")
COMMON_OPTIONS = (MODELS_KEY, *CLIENT_OPTIONS, *JURY_OPTIONS)
MODEL_FREE = frozenset({"guardian"})
"""Scorers that ``--judge`` accepts without a model."""


def _typed(options: dict[str, Any], key: str, cast: Callable[[Any], T], default: T) -> T:
    if key not in options:
        return default
    try:
        return cast(options[key])
    except (TypeError, ValueError):
        raise ConfigError(f"scorer option {key}={options[key]!r} is not valid") from None


def check_options(name: str, options: dict[str, Any], extra: Iterable[str] = ()) -> None:
    """Reject options a scorer does not know (a typo must not silently change nothing)."""
    known = (*COMMON_OPTIONS, *extra)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown option {unknown[0]!r} for scorer {name!r} (known: {', '.join(known)})"
        )


def judge_clients(config: ScorerConfig) -> list[JudgeClient]:
    """One client per judge reference, from the stored definitions or a raw ``KIND/NAME``."""
    stored = config.options.get(MODELS_KEY) or {}
    if not isinstance(stored, dict):
        raise ConfigError(f"scorer {config.name!r}: option {MODELS_KEY} must be a mapping")
    opts = config.options
    clients = []
    for ref in config.judges:
        try:
            named = NamedModel.model_validate(stored[ref]) if ref in stored else resolve_model(ref)
        except ValidationError as exc:
            raise ConfigError(f"scorer {config.name!r}: judge {ref!r}: {exc}") from None
        clients.append(
            JudgeClient(
                ref,
                named,
                concurrency=_typed(opts, "concurrency", int, 8),
                timeout_s=_typed(opts, "timeout", float, 120.0),
                retries=_typed(opts, "retries", int, 3),
                parse_retries=_typed(opts, "parse_retries", int, 2),
            )
        )
    return clients


def jury_options(config: ScorerConfig) -> JuryOptions:
    """``combine`` (mean, min, max, conservative, majority) and ``disagreement`` threshold."""
    method = check_method(str(config.options.get("combine", "mean")))
    threshold: float | None = _typed(config.options, "disagreement", float, None)
    return JuryOptions(method=method, threshold=threshold)


def build(cls: Callable[..., JudgedScorer], config: ScorerConfig, **kwargs: Any) -> JudgedScorer:
    """Instantiate a judged scorer class with its judges and jury options."""
    return cls(judge_clients(config), jury_options(config), **kwargs)


def parse_judge_arg(text: str) -> tuple[str, str | None]:
    """``SCORER[:MODEL]`` -> ``(scorer, model)``; the model may itself contain ``:``."""
    name, sep, model = text.partition(":")
    name, model = name.strip(), model.strip()
    if not name:
        raise ConfigError(f"--judge {text!r}: no scorer name")
    if sep and not model:
        raise ConfigError(f"--judge {text!r}: empty model after ':'")
    return name, model or None


def judge_specs(args: Sequence[str], config_path: Path | None) -> tuple[ScorerSpec, ...]:
    """Scorer specs for ``--judge`` arguments, judges grouped per scorer in the order given."""

    config = load_optional(config_path)
    grouped: dict[str, list[str]] = {}
    models: dict[str, dict[str, dict[str, Any]]] = {}
    for arg in args:
        name, ref = parse_judge_arg(arg)
        scorers.get(name)  # unknown scorer: RegistryError listing the known ones
        refs = grouped.setdefault(name, [])
        if name in MODEL_FREE:
            if ref is not None:
                raise ConfigError(f"--judge {arg!r}: scorer {name!r} takes no model")
            continue
        if ref is None:
            raise ConfigError(f"--judge {arg!r}: scorer {name!r} needs a model: {name}:MODEL")
        if ref in refs:
            raise ConfigError(f"--judge {arg!r}: judge {ref!r} given twice for {name!r}")
        refs.append(ref)
        models.setdefault(name, {})[ref] = resolve_model(ref, config).stored()
    return tuple(
        ScorerSpec(
            name=name,
            judges=tuple(refs),
            options={MODELS_KEY: models[name]} if name in models else {},
        )
        for name, refs in grouped.items()
    )


def build_judged_scorer(name: str, judge_ref: str | None, config_path: Path | None) -> Scorer:
    """One judged scorer (``judge_ref`` None for ``guardian``), e.g. for ``medsafe calibrate``.

    Close it with :func:`aclose_scorer` inside the event loop that used it.
    """
    arg = name if judge_ref is None else f"{name}:{judge_ref}"
    (spec,) = judge_specs([arg], config_path)
    return create_scorer(ScorerConfig(name=spec.name, judges=spec.judges, options=spec.options))


async def aclose_scorer(scorer: Scorer) -> None:
    """Release a scorer's judge backends, if it has any."""
    await scorer.aclose()
