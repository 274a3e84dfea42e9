"""One evaluation from start to finish: import the suite, generate, score, summarise.

:class:`RunOptions` (what ``medsafe run`` or :func:`medsafe.evaluate` was told) is resolved
once, at the start, into a validated :class:`RunPlan`: the target backend, the stored
:class:`~medsafe.schema.RunSpec` (model, parameters, judges, attacker, scorer specs with their
declared scales, limits), the suite source and the scorers. Nothing is stored before the plan
is complete; then each stage gets only its part of it. The CLI, the Python API, the demo and
the tests all go through :func:`run_evaluation` / :func:`run_options_async`.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import math
import re
import secrets
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from medsafe.errors import ConfigError, StoreError
from medsafe.models.base import (
    Backend,
    BackendOptions,
    backend_key,
    backends,
    create_backend,
    model_key,
    spec_of_key,
)
from medsafe.models.config import NamedModel, check_url, load_optional, resolve_model
from medsafe.provenance import provenance, suite_hash
from medsafe.runner.generate import GenerationStats, SuiteImport, generate
from medsafe.runner.score import ScoringStats, score_run
from medsafe.schema import AttackerSpec, Item, Message, ModelParams, RunSpec, ScorerSpec
from medsafe.scoring import (
    Scorer,
    ScorerConfig,
    create_scorer,
    merge_specs,
    scorers,
    with_scales,
)
from medsafe.store.lease import acquire
from medsafe.store.sqlite import RunRecord, Store
from medsafe.suites import ColumnMapping, SuiteSource, open_suite

if TYPE_CHECKING:
    from medsafe.dataethics.egress import EgressDecision
    from medsafe.results import RunResults

T = TypeVar("T")
DEFAULT_SCORERS = ("mcq", "guardian")
DEFAULT_MODEL = "embedded/smollm2"
ITEMS_FORMAT = "items"
"""``suite_format`` of a run whose items were given in memory (the Python API)."""
MAX_TEMPERATURE = 2.0


@dataclass(frozen=True)
class RunOptions:
    """Everything ``medsafe run`` (or :func:`medsafe.evaluate`) can be told."""

    suite: str | Sequence[Item] | None
    """A suite path or bundled name, or items given in memory."""
    model: str | Backend | None = None
    """A model spec or config name, or a backend object."""
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
    scorers: tuple[ScorerSpec | Scorer, ...] | None = None
    """Scorer specs (built from the registry) or scorer objects (used as they are)."""
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
    force: bool = False
    """Take over the run's lease when it is stale (a live lease is never taken over)."""
    phi_check: str | None = None
    """Egress policy: off, warn or block (None: block when an endpoint is remote); see
    :mod:`medsafe.dataethics.egress`."""
    allow_phi: bool = False
    """Send items with identifiers to a remote endpoint anyway (recorded with the run)."""
    executor: str = "local"
    """Where the model calls run: ``local`` (this process) or ``ray`` (Ray actors; see
    :mod:`medsafe.runner.ray_pool`). Never part of a request's cache key."""
    workers: int | None = None
    """Ray actors (``--workers``); None: one per GPU for a local model on GPUs, else per CPU."""
    ray_address: str | None = None
    """A running Ray cluster (``auto`` or ``HOST:PORT``); None starts one on 127.0.0.1."""


EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class SuitePlan:
    """Where a new run's items come from (a suite file or items in memory), rotated, limited."""

    ref: str
    """What the run stores as its suite: a path, a bundled name, or the items' suite name."""
    name: str
    format: str
    source: SuiteSource | None = None
    given: tuple[Item, ...] = ()
    rotate: int | None = None
    limit: int | None = None

    def items(self) -> Iterator[Item]:
        """The items, lazily, each time afresh (rotations expanded, then the limit)."""
        items: Iterator[Item] = self.source.items() if self.source is not None else iter(self.given)
        if self.rotate is not None:
            from medsafe.suites.rotation import rotate_items

            # 0 means every rotation (as many as the item has options)
            items = rotate_items(items, None if self.rotate <= 0 else self.rotate)
        if self.limit is not None:
            items = _take(items, self.limit)
        return items


@dataclass(frozen=True)
class RunPlan:
    """One run, resolved and validated before anything is stored.

    The plan owns ``backend`` and ``scorers`` until :func:`execute` closes them.
    """

    db: Path
    spec: RunSpec
    """What is stored with the run (a new run's suite hash is filled in by its import)."""
    resumed: bool
    suite: SuitePlan | None
    """The items a new run imports (None for a resumed run)."""
    backend: Backend | None
    """The target; None when only rescoring."""
    scorers: tuple[Scorer, ...]
    """Built from ``spec.scorers``, in the same order."""
    rescore: bool = False
    phi_check: str | None = None
    allow_phi: bool = False
    egress: EgressDecision | None = None
    """The egress check's decision, set by :func:`execute` before any request."""


@dataclass(frozen=True)
class RunOutcome:
    """What :func:`run_evaluation` did and the run's results."""

    spec: RunSpec
    resumed: bool
    generation: GenerationStats | None
    scoring: ScoringStats
    results: RunResults


@dataclass(frozen=True)
class _Target:
    spec: str | None
    """The model spec the backend is built from (None for a backend object)."""
    backend: Backend | None
    base_url: str | None
    api_key_env: str | None
    params: ModelParams | None
    image_max_side: int | None = None
    """A named model's longest image side (docs/imaging.md); None: the backend's default."""


def default_run_id(suite_name: str, model: str) -> str:
    """``SUITE-MODEL-YYYYmmdd-HHMMSS-xxxx`` with unsafe characters replaced; the 4 random hex
    digits keep two runs started in the same second apart."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    raw = f"{suite_name}-{model.rsplit('/', 1)[-1]}-{stamp}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)


def _free_run_id(store: Store, run_id: str) -> str:
    """``run_id``, or ``run_id-2``, ``-3``... when a run already has it (a last guard)."""
    taken, n = run_id, 1
    while store.get_run(taken) is not None:
        n += 1
        taken = f"{run_id}-{n}"
    return taken


def default_scorer_specs() -> tuple[ScorerSpec, ...]:
    """The scorers a run gets when none are named: every default that is installed."""

    return tuple(ScorerSpec(name=n) for n in DEFAULT_SCORERS if n in scorers)


def _take(items: Iterator[Item], limit: int) -> Iterator[Item]:
    for count, item in enumerate(items):
        if count >= limit:
            return
        yield item


def check_params(params: ModelParams) -> ModelParams:
    """``params`` if every generation parameter is usable; a ConfigError naming the field."""
    temperature, top_p, max_tokens = params.temperature, params.top_p, params.max_tokens
    if temperature is not None and not (
        math.isfinite(temperature) and 0.0 <= temperature <= MAX_TEMPERATURE
    ):
        raise ConfigError(f"temperature must be between 0 and {MAX_TEMPERATURE}, not {temperature}")
    if top_p is not None and not (math.isfinite(top_p) and 0.0 < top_p <= 1.0):
        raise ConfigError(f"top_p must be above 0 and at most 1, not {top_p}")
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError(f"max_tokens must be at least 1, not {max_tokens}")
    for name in ("max_tokens", "seed"):
        value = getattr(params, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{name} must be a whole number, not {value!r}")
    return params


def suite_plan(options: RunOptions) -> SuitePlan:
    """Open the suite ``options`` name (or take the items given) without reading it."""
    suite = options.suite
    if suite is None:
        raise ConfigError("a suite is needed to start a new run")
    if isinstance(suite, str):
        source = open_suite(suite, options.fmt, options.mapping)
        return SuitePlan(
            suite, source.name, source.format, source, rotate=options.rotate, limit=options.limit
        )
    given = tuple(suite)
    names = {item.suite for item in given if item.suite}
    name = names.pop() if len(names) == 1 else ITEMS_FORMAT
    given = tuple(item if item.suite else item.model_copy(update={"suite": name}) for item in given)
    return SuitePlan(
        name, name, ITEMS_FORMAT, given=given, rotate=options.rotate, limit=options.limit
    )


def _resolve_target(
    options: RunOptions, config: dict[str, NamedModel], existing: RunRecord | None
) -> _Target:
    """The target model: a backend object, a config name, a spec, or the resumed run's."""
    model = options.model
    if model is not None and not isinstance(model, str):
        return _Target(None, model, options.base_url, options.api_key_env, options.params)
    stored = existing.spec if existing is not None else None
    if model is None:
        model = spec_of_key(stored.model) if stored is not None else DEFAULT_MODEL
    named = config.get(model)
    if named is None and config and "/" not in model and model not in backends:
        resolve_model(model, config)  # neither a config name nor a spec: say which names exist
    params = options.params
    if named is None:
        return _Target(
            model,
            None,
            options.base_url or (stored.base_url if stored else None),
            options.api_key_env or (stored.api_key_env if stored else None),
            params,
        )
    if named.params is not None:  # the config's parameters; those given explicitly win
        update = params.model_dump(exclude_unset=True) if params is not None else {}
        params = named.params.model_copy(update=update)
    return _Target(
        named.model,
        None,
        options.base_url or named.base_url,
        options.api_key_env or named.api_key_env,
        params,
        named.image_max_side,
    )


def _check_executor(options: RunOptions) -> None:
    """ConfigError for an unknown executor or Ray options without ``--executor ray``."""
    if options.executor not in EXECUTORS:
        known = ", ".join(EXECUTORS)
        raise ConfigError(f"executor must be one of {known}, not {options.executor!r}")
    if options.executor != "ray" and (options.workers is not None or options.ray_address):
        raise ConfigError("--workers and --ray-address need --executor ray")
    if options.workers is not None and options.workers < 1:
        raise ConfigError(f"workers must be at least 1, not {options.workers}")


def _build_backend(target: _Target, run: RunOptions) -> tuple[Backend, str]:
    """The target backend and its model key (built before anything is stored); with
    ``--executor ray`` a pool of Ray actors that each build it."""
    timeout_s = run.timeout_s
    if target.backend is not None:
        if run.executor == "ray":
            raise ConfigError("--executor ray needs a model spec, not a backend object")
        return target.backend, backend_key(target.backend)
    assert target.spec is not None
    options = BackendOptions(base_url=target.base_url, timeout_s=timeout_s)
    if target.api_key_env:
        options = replace(options, api_key_env=target.api_key_env)
    if target.image_max_side:
        options = replace(options, extra={"image_max_side": str(target.image_max_side)})
    if run.executor == "ray":
        from medsafe.runner.ray_pool import pool_backend

        pool = pool_backend(
            target.spec,
            options,
            workers=run.workers,
            concurrency=run.concurrency,
            address=run.ray_address,
        )
        return pool, model_key(target.spec, pool)
    backend = create_backend(target.spec, options)
    return backend, model_key(target.spec, backend)


def _scorer_specs(options: RunOptions, existing: RunRecord | None) -> tuple[ScorerSpec, ...]:
    """The run's scorers: the given (or default) ones, a resumed run's, and ``--judge`` ones."""
    judged: tuple[ScorerSpec, ...] = ()
    if options.judges:
        from medsafe.judges.build import judge_specs

        judged = judge_specs(options.judges, options.config)
    given = tuple(
        s if isinstance(s, ScorerSpec) else ScorerSpec(name=s.name) for s in options.scorers or ()
    )
    if existing is None:
        return merge_specs(given if options.scorers is not None else default_scorer_specs(), judged)
    merged = {s.name: s for s in existing.spec.scorers}
    merged.update({s.name: s for s in given})
    return merge_specs(tuple(merged.values()), judged)


def _build_scorers(
    specs: Sequence[ScorerSpec], objects: Sequence[ScorerSpec | Scorer]
) -> tuple[tuple[ScorerSpec, ...], tuple[Scorer, ...]]:
    """Build every scorer (objects given are used as they are); specs stamped with scales."""
    given = {s.name: s for s in objects if not isinstance(s, ScorerSpec)}
    built: list[Scorer] = []
    for spec in specs:
        scorer = given.get(spec.name) or create_scorer(
            ScorerConfig(name=spec.name, judges=spec.judges, options=dict(spec.options))
        )
        built.append(scorer)
    stamped = tuple(with_scales(spec, scorer) for spec, scorer in zip(specs, built, strict=True))
    return stamped, tuple(built)


async def _close(backend: Backend | None, built: Sequence[Scorer]) -> None:
    if backend is not None:
        await backend.aclose()
    for scorer in built:
        await scorer.aclose()


async def plan_run(options: RunOptions, store: Store) -> RunPlan:
    """Resolve ``options`` once into a validated :class:`RunPlan`; nothing is stored yet.

    Reads the model config, the resumed run (if any) and, to check a resumed run's suite, the
    suite; builds the target backend and the scorers (closed again if the plan is refused).
    """
    config = load_optional(options.config)
    existing = store.get_run(options.run_id) if options.run_id else None
    if existing is None and options.suite is None:
        raise ConfigError("a suite is needed to start a new run")
    if existing is None and options.rescore:
        raise StoreError(
            f"--rescore needs an existing run; {options.run_id!r} is not in {store.path}"
        )
    _check_executor(options)
    target = _resolve_target(options, config, existing)
    if target.params is not None:
        check_params(target.params)
    backend: Backend | None = None
    built: tuple[Scorer, ...] = ()
    try:
        key = ""
        if not options.rescore:
            backend, key = _build_backend(target, options)
        specs, built = _build_scorers(_scorer_specs(options, existing), options.scorers or ())
        if options.executor == "ray":
            await _judges_on_ray(built, options)
        if existing is not None:
            spec = _check_urls(_resumed_spec(options, existing.spec, target, key, specs))
            return RunPlan(
                options.db,
                spec,
                True,
                None,
                backend,
                built,
                options.rescore,
                options.phi_check,
                options.allow_phi,
            )
        suite = suite_plan(options)
        spec = RunSpec(
            run_id=options.run_id
            or _free_run_id(store, default_run_id(suite.name, target.spec or key)),
            suite=suite.ref,
            suite_format=suite.format,
            suite_hash="",
            model=key,
            base_url=target.base_url,
            api_key_env=target.api_key_env,
            params=target.params or ModelParams(),
            scorers=specs,
            concurrency=options.concurrency,
            timeout_s=options.timeout_s,
            retries=options.retries,
            limit=options.limit,
            rotate=options.rotate,
            attacker=_attacker(options),
        )
        return RunPlan(
            options.db,
            _check_urls(spec),
            False,
            suite,
            backend,
            built,
            phi_check=options.phi_check,
            allow_phi=options.allow_phi,
        )
    except BaseException:
        await _close(backend, built)
        raise


async def _judges_on_ray(built: Sequence[Scorer], options: RunOptions) -> None:
    """With ``--executor ray``, each judge behind an API gets its own pool of Ray actors (its
    cache key unchanged); a local judge model stays in this process."""
    from medsafe.models.config import named_options
    from medsafe.runner.ray_pool import LOCAL_KINDS, pool_backend

    for scorer in built:
        for client in getattr(scorer, "judges", ()) or ():
            named, backend = getattr(client, "named", None), getattr(client, "backend", None)
            if not isinstance(named, NamedModel) or backend is None:
                continue
            if named.model.partition("/")[0] in LOCAL_KINDS:
                continue
            timeout_s = float(getattr(client, "timeout_s", options.timeout_s))
            client.backend = pool_backend(
                named.model,
                named_options(named, timeout_s),
                workers=options.workers,
                concurrency=options.concurrency,
                address=options.ray_address,
            )
            await backend.aclose()


def _check_urls(spec: RunSpec) -> RunSpec:
    """``spec`` if the URLs it would store carry no credentials and the attacker has a URL."""
    if spec.base_url is not None:
        check_url(spec.base_url)
    attacker = spec.attacker
    if attacker is not None and attacker.model.partition("/")[0] == "openai":
        from medsafe.models.openai_compat import resolve_base_url

        resolve_base_url(attacker.base_url)  # built only when generating: check it now
    return spec


def _attacker(options: RunOptions) -> AttackerSpec | None:
    if not options.attacker:
        return None
    from medsafe.redteam.attacker_model import attacker_spec

    return attacker_spec(options.attacker, options.attack_mode, options.config)


def _resumed_spec(
    options: RunOptions, spec: RunSpec, target: _Target, key: str, specs: tuple[ScorerSpec, ...]
) -> RunSpec:
    """A resumed run's spec, after checking that what is asked matches what it was made with."""
    if not options.rescore:
        if options.suite is not None and suite_hash(suite_plan(options).items()) != spec.suite_hash:
            raise StoreError(
                f"run {spec.run_id!r} was made from a different suite (content hash differs); "
                "use a new --run-id"
            )
        from medsafe.redteam.attacker_model import check_attacker

        check_attacker(spec, options.attacker, options.attack_mode, options.config)
        model_differs = key != spec.model
        if model_differs and options.model is None:
            raise StoreError(
                f"run {spec.run_id!r} was made with {spec.model!r}, but that backend is now "
                f"{key!r}; resume it with the same backend, or use a new --run-id"
            )
        params_differ = options.params is not None and target.params != spec.params
        if model_differs or params_differ:
            raise StoreError(
                f"run {spec.run_id!r} used model {spec.model!r} with {spec.params.model_dump()}; "
                "resume it with the same model and parameters, or use a new --run-id"
            )
    return spec.model_copy(
        update={
            "scorers": specs,
            "base_url": target.base_url or spec.base_url,
            "concurrency": options.concurrency,
            "timeout_s": options.timeout_s,
            "retries": options.retries,
        }
    )


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is installed (less CPU per request), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


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


def _begin(plan: RunPlan, store: Store) -> SuiteImport | None:
    """Store what the plan says before generating: a new run's import, a resumed run's spec."""
    if plan.suite is not None:
        extra: dict[str, Any] = {"suite_name": plan.suite.name}
        if plan.egress is not None and plan.egress.remote:
            extra["egress"] = plan.egress.record()
        executor = getattr(plan.backend, "executor", None)  # e.g. {"kind": "ray", "workers": 3}
        if isinstance(executor, dict):
            extra["executor"] = executor
        info = provenance(extra)
        return SuiteImport(plan.suite.items(), store.begin_import(plan.spec, info))
    store.update_spec(plan.spec)
    if plan.rescore:
        store.delete_scores(plan.spec.run_id, [s.name for s in plan.scorers])
    return None


WARM_MODULES = (
    "numpy",
    "medsafe.stats.intervals",
    "medsafe.results.scores",
    "medsafe.results.judged",
    "medsafe.results.calibration",
    "medsafe.results.circular",
    "medsafe.report.text",
)
"""What the results at the end of a run need; imported while the first answers stream in."""


def _warm_imports() -> None:
    """Import the results layer in a background thread while generation waits on the model
    (about 0.3 s of imports that would otherwise come after the last answer)."""

    def load() -> None:
        for name in WARM_MODULES:
            try:
                importlib.import_module(name)
            except ImportError:  # the run will report it where the module is used
                return

    threading.Thread(target=load, name="medsafe-warm-imports", daemon=True).start()


def _replay_preflight(plan: RunPlan, store: Store) -> str | None:
    """For a replay backend: one line saying which items have no replayed answer (said once,
    before the run, instead of as many failed calls)."""
    from medsafe.models.replay import ReplayBackend

    if not isinstance(plan.backend, ReplayBackend):
        return None
    if plan.suite is not None:
        items: Iterable[Item] = plan.suite.items()
    else:
        items = store.iter_items(plan.spec.run_id, pending_only=True)
    return plan.backend.preflight(items)


def _endpoints(plan: RunPlan) -> tuple[list[str], list[str]]:
    """The URLs a run sends items to: the target's and its attacker's (which see the items
    still to generate), and its judges' (which see every item they score)."""
    urls: list[object] = [getattr(plan.backend, "base_url", None)]
    attacker = plan.spec.attacker
    if attacker is not None and attacker.model.partition("/")[0] == "openai":
        from medsafe.models.openai_compat import resolve_base_url

        urls.append(resolve_base_url(attacker.base_url))
    judges: list[object] = []
    for scorer in plan.scorers:
        for judge in getattr(scorer, "judges", ()) or ():
            judges.append(getattr(getattr(judge, "backend", None), "base_url", None))
    return [u for u in urls if isinstance(u, str)], [u for u in judges if isinstance(u, str)]


def _check_egress(plan: RunPlan, store: Store, notify: Callable[[str], None] | None) -> RunPlan:
    """Scan every item the run will send before any request; EgressRefused (exit 2) when the
    policy forbids sending them (see :mod:`medsafe.dataethics.egress`)."""
    from medsafe.dataethics.egress import EgressRefused, check_egress, is_loopback

    generating, judging = _endpoints(plan)
    items: Iterable[Item]
    if plan.suite is not None:
        items = plan.suite.items()
    else:  # a resumed run: the target sees only what is pending; a remote judge sees all
        every = plan.rescore or not all(is_loopback(url) for url in judging)
        items = store.iter_items(plan.spec.run_id, pending_only=not every)
    system = plan.spec.params.system_prompt
    if system:  # sent with every item
        message = Message(role="system", content=system)
        prompt = Item(id="(system prompt)", kind="open", messages=(message,))
        items = itertools.chain([prompt], items)
    mode: Any = plan.phi_check
    endpoints = generating + judging
    decision = check_egress(items, endpoints, mode, allow_phi=plan.allow_phi)
    if not decision.allowed:
        raise EgressRefused(decision.refusal())
    for note in decision.warnings():
        if notify is not None:
            notify(note)
    return replace(plan, egress=decision)


def _audit_allow_phi(plan: RunPlan, store: Store) -> None:
    """An ``allow_phi`` entry in the audit trail when identifiers are sent on --allow-phi."""
    decision = plan.egress
    if decision is None or not (decision.allow_phi and decision.blocking_items):
        return
    import getpass

    from medsafe.audit.chain import append

    try:
        actor = getpass.getuser()
    except (KeyError, OSError):
        actor = "unknown"
    append(store.connection, actor, "allow_phi", plan.spec.run_id, decision.record())


async def execute(
    plan: RunPlan,
    store: Store,
    *,
    show_progress: bool = False,
    notify: Callable[[str], None] | None = None,
    force: bool = False,
) -> RunOutcome:
    """Carry out a plan: store it, generate what is missing, score, and summarise.

    The run's lease (:mod:`medsafe.store.lease`) is held from before anything is stored until
    scoring ends; LeaseError (exit 2) when another process holds it (``force``: unless stale).
    """
    notice = getattr(plan.backend, "notice", None)
    if notice and notify is not None:
        notify(str(notice))
    missing = _replay_preflight(plan, store)
    if missing and notify is not None:
        notify(missing)
    spec = plan.spec
    try:
        plan = _check_egress(plan, store, notify)
        lease = acquire(plan.db, spec.run_id, force=force)
    except BaseException:
        await _close(plan.backend, plan.scorers)
        raise
    with lease:
        return await _execute_leased(plan, store, show_progress, notify)


async def _execute_leased(
    plan: RunPlan,
    store: Store,
    show_progress: bool,
    notify: Callable[[str], None] | None = None,
) -> RunOutcome:
    """:func:`execute` once the run's lease is held."""
    spec = plan.spec
    try:
        _audit_allow_phi(plan, store)
        suite = _begin(plan, store)
    except BaseException:
        await _close(plan.backend, plan.scorers)
        raise
    generation = None
    if plan.backend is not None:
        _warm_imports()
        inline = [s for s in plan.scorers if s.inline]
        try:  # _generate closes the backend
            generation = await _generate(spec, plan.db, plan.backend, show_progress, inline, suite)
        except BaseException:
            await _close(None, plan.scorers)
            raise
        if suite is not None:
            spec = suite.importing.spec  # as committed, with the suite's content hash
    announce = notify if plan.rescore else None  # says how many uncached judge calls it asks
    scoring = await score_run(
        spec.run_id, plan.db, plan.scorers, show_progress=show_progress, announce=announce
    )
    from medsafe.results import compute_results

    results = compute_results(store.connection, store.require_run(spec.run_id))
    return RunOutcome(spec, plan.resumed, generation, scoring, results)


async def run_options_async(options: RunOptions) -> RunOutcome:
    """Plan and carry out one run (the coroutine behind :func:`run_evaluation`)."""
    if options.params is not None:
        check_params(options.params)  # before the store is created
    with Store(options.db) as store:
        plan = await plan_run(options, store)
        return await execute(
            plan,
            store,
            show_progress=options.show_progress,
            notify=options.notify,
            force=options.force,
        )


def run_evaluation(options: RunOptions) -> RunOutcome:
    """Import (or resume) a run, generate what is missing, score, and summarise."""
    return run_async(run_options_async(options))
