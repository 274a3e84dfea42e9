"""One evaluation from start to finish: import the suite, generate, score, summarise.

The CLI is a thin layer over :func:`run_evaluation`; so are the demo and the tests.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from medsafe.errors import ConfigError, StoreError
from medsafe.models.base import Backend, BackendOptions, create_backend
from medsafe.provenance import provenance, suite_hash
from medsafe.runner.generate import GenerationStats, SuiteImport, generate
from medsafe.runner.score import ScoringStats, score_run
from medsafe.schema import AttackerSpec, Item, ModelParams, RunSpec, ScorerSpec
from medsafe.scorers.base import (
    Scorer,
    ScorerConfig,
    create_scorer,
    is_inline,
    merge_specs,
    scorers,
)
from medsafe.store.sqlite import Store
from medsafe.suites import ColumnMapping, open_suite
from medsafe.summary import run_summary

T = TypeVar("T")
DEFAULT_SCORERS = ("mcq", "guardian")
DEFAULT_MODEL = "embedded/smollm2"


@dataclass(frozen=True)
class RunOptions:
    """Everything ``medsafe run`` can be told."""

    suite: str | None
    model: str | None = None
    db: Path = Path("medsafe.db")
    run_id: str | None = None
    base_url: str | None = None
    fmt: str | None = None
    mapping: ColumnMapping = field(default_factory=ColumnMapping)
    params: ModelParams | None = None
    concurrency: int = 8
    timeout_s: float = 60.0
    retries: int = 3
    limit: int | None = None
    rotate: int | None = None
    scorers: tuple[ScorerSpec, ...] | None = None
    rescore: bool = False
    config: Path | None = None
    """TOML file of named models (``[models.NAME]``) that --model and --judge may refer to."""
    judges: tuple[str, ...] = ()
    """``--judge SCORER[:MODEL]`` arguments: judged scorers added to the run."""
    api_key_env: str | None = None
    """The target's key variable (set when --model names a config model that has one)."""
    attacker: str | None = None
    """Attacker model (config name or KIND/NAME) for adaptive red-team dialogues."""
    attack_mode: str | None = None
    show_progress: bool = False
    notify: Callable[[str], None] | None = None
    """Called with a backend's notice (e.g. the embedded model is English-only)."""


@dataclass(frozen=True)
class RunOutcome:
    """What :func:`run_evaluation` did and the resulting summary."""

    spec: RunSpec
    resumed: bool
    generation: GenerationStats | None
    scoring: ScoringStats
    summary: dict[str, Any]


def default_run_id(suite_name: str, model: str) -> str:
    """``SUITE-MODEL-YYYYmmdd-HHMMSS`` with unsafe characters replaced."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    raw = f"{suite_name}-{model.rsplit('/', 1)[-1]}-{stamp}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)


def default_scorer_specs() -> tuple[ScorerSpec, ...]:
    """The scorers a run gets when none are named: every default that is installed."""
    import medsafe.scorers.builtin  # noqa: F401

    return tuple(ScorerSpec(name=n) for n in DEFAULT_SCORERS if n in scorers)


def _suite_items(options: RunOptions) -> tuple[str, str, Iterator[Item]]:
    assert options.suite is not None
    source = open_suite(options.suite, options.fmt, options.mapping)
    items: Iterator[Item] = source.items()
    if options.rotate is not None:
        from medsafe.suites.rotation import rotate_items

        # 0 means every rotation (as many as the item has options)
        items = rotate_items(items, None if options.rotate <= 0 else options.rotate)
    if options.limit is not None:
        items = _take(items, options.limit)
    return source.name, source.format, items


def _take(items: Iterator[Item], limit: int) -> Iterator[Item]:
    for count, item in enumerate(items):
        if count >= limit:
            return
        yield item


def prepare_run(options: RunOptions, store: Store) -> tuple[RunSpec, SuiteImport | None]:
    """Check that a resumed run matches what is asked, or begin importing a new one.

    For a new run the returned :class:`SuiteImport` holds the open import (items not read
    yet); generation reads it, starting on the first items while the rest is imported. For a
    resumed run it is None.
    """
    judged: tuple[ScorerSpec, ...] = ()
    if options.judges:
        from medsafe.judges.build import judge_specs

        judged = tuple(judge_specs(options.judges, options.config))
    base_specs = options.scorers if options.scorers is not None else default_scorer_specs()
    scorer_specs = merge_specs(base_specs, judged)
    existing = store.get_run(options.run_id) if options.run_id else None
    if existing is not None:
        spec = existing.spec
        if options.suite is not None and not options.rescore:
            _name, _fmt, items = _suite_items(options)
            if suite_hash(items) != spec.suite_hash:
                raise StoreError(
                    f"run {spec.run_id!r} was made from a different suite (content hash differs); "
                    "use a new --run-id"
                )
        model_differs = options.model is not None and options.model != spec.model
        params_differ = options.params is not None and options.params != spec.params
        if not options.rescore:
            from medsafe.redteam.attacker_model import check_attacker

            check_attacker(spec, options.attacker, options.attack_mode, options.config)
        if not options.rescore and (model_differs or params_differ):
            raise StoreError(
                f"run {spec.run_id!r} used model {spec.model!r} with {spec.params.model_dump()}; "
                "resume it with the same model and parameters, or use a new --run-id"
            )
        merged = {s.name: s for s in spec.scorers}
        merged.update({s.name: s for s in (options.scorers or ())})
        merged = {s.name: s for s in merge_specs(tuple(merged.values()), judged)}
        spec = spec.model_copy(
            update={
                "scorers": tuple(merged.values()),
                "base_url": options.base_url or spec.base_url,
                "concurrency": options.concurrency,
                "timeout_s": options.timeout_s,
                "retries": options.retries,
            }
        )
        store.update_spec(spec)
        return spec, None
    if options.suite is None:
        raise ConfigError("a suite is needed to start a new run")
    if options.rescore:
        raise StoreError(
            f"--rescore needs an existing run; {options.run_id!r} is not in {store.path}"
        )
    name, fmt, items = _suite_items(options)
    model = options.model or DEFAULT_MODEL
    spec = RunSpec(
        run_id=options.run_id or default_run_id(name, model),
        suite=options.suite,
        suite_format=fmt,
        suite_hash="",
        model=model,
        base_url=options.base_url,
        api_key_env=options.api_key_env,
        params=options.params or ModelParams(),
        scorers=scorer_specs,
        concurrency=options.concurrency,
        timeout_s=options.timeout_s,
        retries=options.retries,
        limit=options.limit,
        rotate=options.rotate,
        attacker=_attacker_spec(options),
    )
    return spec, SuiteImport(items, store.begin_import(spec, provenance({"suite_name": name})))


def _attacker_spec(options: RunOptions) -> AttackerSpec | None:
    if not options.attacker:
        return None
    from medsafe.redteam.attacker_model import attacker_spec

    return attacker_spec(options.attacker, options.attack_mode, options.config)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is installed (less CPU per request), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def build_scorers(specs: Sequence[ScorerSpec]) -> list[Scorer]:
    """Instantiate the scorers a run's spec names."""
    return [
        create_scorer(ScorerConfig(name=s.name, judges=s.judges, options=dict(s.options)))
        for s in specs
    ]


async def _generate(
    spec: RunSpec,
    db: Path,
    backend: Backend,
    progress: bool,
    inline: Sequence[Scorer],
    suite: SuiteImport | None,
) -> GenerationStats:
    attacker = None
    if spec.attacker:
        from medsafe.redteam.attacker_model import attacker_backend

        attacker = attacker_backend(spec.attacker, spec.timeout_s)
    try:
        return await generate(
            spec,
            db,
            backend,
            show_progress=progress,
            inline_scorers=inline,
            attacker=attacker,
            suite=suite,
        )
    finally:
        await backend.aclose()
        if attacker is not None:
            await attacker.aclose()


def _backend_for(options: RunOptions, store: Store) -> Backend:
    """Build the target backend before anything is stored, so a bad spec stores nothing."""
    existing = store.get_run(options.run_id) if options.run_id else None
    model = options.model or (existing.spec.model if existing else DEFAULT_MODEL)
    base_url = options.base_url or (existing.spec.base_url if existing else None)
    key_env = options.api_key_env or (existing.spec.api_key_env if existing else None)
    backend_options = BackendOptions(base_url=base_url, timeout_s=options.timeout_s)
    if key_env:
        backend_options = replace(backend_options, api_key_env=key_env)
    return create_backend(model, backend_options)


def _named_target(options: RunOptions) -> RunOptions:
    """Resolve ``--model`` against ``--config`` (a named model's spec, URL, key variable)."""
    if options.config is None or options.model is None:
        return options
    from medsafe.models.config import resolve_target

    target = resolve_target(options.model, options.base_url, options.params, options.config)
    return replace(
        options,
        model=target.model,
        base_url=target.base_url,
        api_key_env=target.api_key_env,
        params=target.params,
    )


def run_evaluation(options: RunOptions) -> RunOutcome:
    """Import (or resume) a run, generate what is missing, score, and summarise."""
    options = _named_target(options)
    store = Store(options.db)
    try:
        backend = None if options.rescore else _backend_for(options, store)
        notice = getattr(backend, "notice", None)
        if notice and options.notify is not None:
            options.notify(str(notice))
        suite: SuiteImport | None = None
        try:
            spec, suite = prepare_run(options, store)
            scorer_objs = build_scorers(spec.scorers)
        except BaseException:
            if suite is not None:
                suite.importing.abort()
            if backend is not None:
                run_async(backend.aclose())
            raise
        resumed = suite is None
        if options.rescore:
            store.delete_scores(spec.run_id, [s.name for s in scorer_objs])
        generation = None
        if backend is not None:
            inline = [s for s in scorer_objs if is_inline(s)]
            generation = run_async(
                _generate(spec, options.db, backend, options.show_progress, inline, suite)
            )
            if suite is not None:
                spec = suite.importing.spec  # as committed, with the suite's content hash
        scoring = run_async(
            score_run(
                spec.run_id,
                options.db,
                scorer_objs,
                concurrency=spec.concurrency,
                show_progress=options.show_progress,
            )
        )
        summary = run_summary(store.connection, spec.run_id)
    finally:
        store.close()
    return RunOutcome(spec, resumed, generation, scoring, summary)
