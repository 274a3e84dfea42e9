"""The Python API: one front door to medsafe for scripts and notebooks::

    import medsafe
    results = medsafe.evaluate("starter", "openai/gpt-4o-mini", scorers=["mcq"], limit=20)
    results.mcq.value

:func:`evaluate` runs (or resumes) an evaluation exactly as ``medsafe run`` does (both build
the same :class:`~medsafe.pipeline.RunPlan`) and returns its :class:`~medsafe.results.RunResults`.
:func:`scorer` and :func:`backend` turn a function into a registered scorer or model backend.
Heavy modules (runner, store, report) are imported on first use, so ``import medsafe`` stays fast.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from pydantic import ValidationError

from medsafe.errors import BackendError, ConfigError
from medsafe.models.base import Backend, ChatRequest, ChatResponse, backends
from medsafe.scale import Scale
from medsafe.schema import Item, ItemKind, Message, ModelParams, Score, ScorerSpec, Transcript
from medsafe.scoring import BaseScorer, Scorer, ScorerConfig, register_scorer

if TYPE_CHECKING:
    from medsafe.pipeline import RunOptions
    from medsafe.report.compare import Comparison
    from medsafe.results import RunResults

T = TypeVar("T")
PathLike = str | os.PathLike[str]
SuiteArg = str | os.PathLike[str] | Sequence[Item]
ScorerArg = str | Scorer
ScoreResult = float | tuple[float, str] | Score | list[Score] | None
ScoreFunction = Callable[[Item, Transcript], ScoreResult | Awaitable[ScoreResult]]
GenerateFunction = Callable[
    [tuple[Message, ...], ModelParams], str | ChatResponse | Awaitable[str | ChatResponse]
]
BackendT = TypeVar("BackendT", bound=type)

GENERATION_PARAMS = {
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "seed": "seed",
    "system": "system_prompt",
    "top_p": "top_p",
}
"""``evaluate()`` keyword -> :class:`~medsafe.schema.ModelParams` field."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# --- evaluate ---------------------------------------------------------------------------------


def _params(params: dict[str, Any]) -> ModelParams | None:
    """Generation parameters from ``evaluate(**params)``; TypeError naming a bad keyword."""
    unknown = sorted(set(params) - set(GENERATION_PARAMS))
    if unknown:
        raise TypeError(
            f"evaluate() got an unexpected keyword argument {unknown[0]!r} "
            f"(generation parameters: {', '.join(GENERATION_PARAMS)})"
        )
    if not params:
        return None
    fields = {GENERATION_PARAMS[k]: v for k, v in params.items()}
    for key, value in fields.items():
        if key in ("temperature", "top_p") and value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{key} must be a number, not {type(value).__name__}")
            if not math.isfinite(value):
                raise ConfigError(f"{key} must be a finite number, not {value}")
        if key in ("max_tokens", "seed") and isinstance(value, bool | float | str):
            raise TypeError(f"{key} must be an int, not {type(value).__name__}")
    try:
        return ModelParams(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        name = next((k for k, v in GENERATION_PARAMS.items() if v == where), where)
        raise TypeError(f"evaluate() argument {name}: {first['msg']}") from None


def _scorer_spec(text: str) -> ScorerSpec:
    """``NAME`` or ``NAME:key=value,key=value`` (as ``medsafe run --scorer``)."""
    name, _, rest = text.partition(":")
    options: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"scorer option {part!r} must look like key=value")
        options[key.strip()] = value.strip()
    if not name.strip():
        raise ConfigError(f"scorer {text!r} has no name")
    return ScorerSpec(name=name.strip(), options=options)


def _scorers(scorers: ScorerArg | Iterable[ScorerArg] | None) -> tuple[ScorerSpec | Scorer, ...]:
    if scorers is None:
        return ()
    given: Iterable[ScorerArg] = [scorers] if isinstance(scorers, str | Scorer) else scorers
    out: list[ScorerSpec | Scorer] = []
    for entry in given:
        if isinstance(entry, str):
            out.append(_scorer_spec(entry))
        elif isinstance(entry, type):
            raise TypeError(f"scorers: pass an instance of {entry.__name__}, not the class")
        elif isinstance(entry, Scorer):
            out.append(entry)
        else:
            raise TypeError(
                f"scorers: {type(entry).__name__} is neither a scorer name nor a Scorer object"
            )
    return tuple(out)


def run_options(
    suite: SuiteArg | None,
    model: str | Backend | None,
    *,
    base_url: str | None = None,
    scorers: ScorerArg | Iterable[ScorerArg] | None = None,
    judges: str | Iterable[str] = (),
    config: PathLike | None = None,
    db: PathLike = "medsafe.db",
    run_id: str | None = None,
    concurrency: int = 8,
    limit: int | None = None,
    fmt: str | None = None,
    timeout: float = 60,
    retries: int = 3,
    rotate: int | None = None,
    attacker: str | None = None,
    attack_mode: str | None = None,
    rescore: bool = False,
    progress: bool = False,
    phi_check: str | None = None,
    allow_phi: bool = False,
    executor: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    **params: Any,
) -> RunOptions:
    """The :class:`~medsafe.pipeline.RunOptions` that :func:`evaluate` is given (checked)."""
    from medsafe.pipeline import RunOptions

    if isinstance(model, type):
        raise TypeError(f"model: pass an instance of {model.__name__}, not the class")
    if model is not None and not isinstance(model, str | Backend):
        raise TypeError(f"model: {type(model).__name__} is neither a model spec nor a Backend")
    if isinstance(suite, os.PathLike):
        suite = os.fspath(suite)
    elif suite is not None and not isinstance(suite, str):
        suite = tuple(suite)
        bad = next((i for i, item in enumerate(suite) if not isinstance(item, Item)), None)
        if bad is not None:
            kind = type(suite[bad]).__name__
            raise TypeError(f"suite item {bad} is a {kind}, not a medsafe.Item")
    for field, value, low in (("concurrency", concurrency, 1), ("retries", retries, 0)):
        if value < low:
            raise ConfigError(f"{field} must be at least {low}, not {value}")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1, not {limit}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"timeout must be a positive number of seconds, not {timeout}")
    return RunOptions(
        suite=suite,
        model=model,
        db=Path(db),
        run_id=run_id,
        base_url=base_url,
        fmt=fmt,
        params=_params(params),
        concurrency=concurrency,
        timeout_s=float(timeout),
        retries=retries,
        limit=limit,
        rotate=rotate,
        scorers=_scorers(scorers) if scorers is not None else None,
        rescore=rescore,
        config=Path(config) if config is not None else None,
        judges=(judges,) if isinstance(judges, str) else tuple(judges),
        attacker=attacker,
        attack_mode=attack_mode,
        show_progress=progress,
        phi_check=phi_check,
        allow_phi=allow_phi,
        executor=executor,
        workers=workers,
        ray_address=ray_address,
    )


async def evaluate_async(
    suite: SuiteArg | None,
    model: str | Backend | None = None,
    *,
    base_url: str | None = None,
    scorers: ScorerArg | Iterable[ScorerArg] | None = None,
    judges: str | Iterable[str] = (),
    config: PathLike | None = None,
    db: PathLike = "medsafe.db",
    run_id: str | None = None,
    concurrency: int = 8,
    limit: int | None = None,
    fmt: str | None = None,
    timeout: float = 60,
    retries: int = 3,
    rotate: int | None = None,
    attacker: str | None = None,
    attack_mode: str | None = None,
    rescore: bool = False,
    progress: bool = False,
    phi_check: str | None = None,
    allow_phi: bool = False,
    executor: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    **params: Any,
) -> RunResults:
    """:func:`evaluate` as a coroutine, for code already inside an event loop."""
    from medsafe.pipeline import run_options_async

    options = run_options(
        suite,
        model,
        base_url=base_url,
        scorers=scorers,
        judges=judges,
        config=config,
        db=db,
        run_id=run_id,
        concurrency=concurrency,
        limit=limit,
        fmt=fmt,
        timeout=timeout,
        retries=retries,
        rotate=rotate,
        attacker=attacker,
        attack_mode=attack_mode,
        rescore=rescore,
        progress=progress,
        phi_check=phi_check,
        allow_phi=allow_phi,
        executor=executor,
        workers=workers,
        ray_address=ray_address,
        **params,
    )
    return (await run_options_async(options)).results


def evaluate(
    suite: SuiteArg | None,
    model: str | Backend | None = None,
    *,
    base_url: str | None = None,
    scorers: ScorerArg | Iterable[ScorerArg] | None = None,
    judges: str | Iterable[str] = (),
    config: PathLike | None = None,
    db: PathLike = "medsafe.db",
    run_id: str | None = None,
    concurrency: int = 8,
    limit: int | None = None,
    fmt: str | None = None,
    timeout: float = 60,
    retries: int = 3,
    rotate: int | None = None,
    attacker: str | None = None,
    attack_mode: str | None = None,
    rescore: bool = False,
    progress: bool = False,
    phi_check: str | None = None,
    allow_phi: bool = False,
    executor: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    **params: Any,
) -> RunResults:
    """Run (or resume) an evaluation and return its results (as ``medsafe run`` does).

    ``suite``: a suite file or directory, a bundled suite name, or a sequence of
    :class:`~medsafe.schema.Item` s. ``model``: a model spec (``openai/NAME``, ``replay/PATH``,
    ``embedded/smollm2``...), a model named in ``config``, or a :class:`Backend` object (default:
    the resumed run's model, else ``embedded/smollm2``). ``scorers``: names, ``"name:k=v"``
    strings or scorer objects (default ``mcq`` and ``guardian``); ``judges``: ``"SCORER[:MODEL]"``
    strings as ``--judge`` takes them. ``phi_check`` (off, warn, block) and ``allow_phi`` are the
    egress policy of ``medsafe run`` (items with identifiers are not sent to a non-loopback
    endpoint by default). ``executor="ray"`` (with ``workers``, ``ray_address``) sends the model
    calls to Ray actors as ``--executor ray`` does. ``**params`` are generation parameters
    (``temperature``, ``max_tokens``, ``seed``, ``system``, ``top_p``); any other keyword is a
    TypeError.

    Works inside a running event loop (a Jupyter cell): the run then goes on in a worker
    thread with its own loop.
    """
    options = run_options(
        suite,
        model,
        base_url=base_url,
        scorers=scorers,
        judges=judges,
        config=config,
        db=db,
        run_id=run_id,
        concurrency=concurrency,
        limit=limit,
        fmt=fmt,
        timeout=timeout,
        retries=retries,
        rotate=rotate,
        attacker=attacker,
        attack_mode=attack_mode,
        rescore=rescore,
        progress=progress,
        phi_check=phi_check,
        allow_phi=allow_phi,
        executor=executor,
        workers=workers,
        ray_address=ray_address,
        **params,
    )
    from medsafe.pipeline import run_options_async

    return run_sync(lambda: run_options_async(options)).results


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine ``make()`` to completion from synchronous code.

    With no event loop running in this thread it runs here (on uvloop when installed); inside a
    running loop (Jupyter) it runs in a worker thread with its own loop, and this call waits.
    """
    from medsafe.pipeline import run_async

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run_async(make())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="medsafe") as pool:
        return pool.submit(lambda: run_async(make())).result()


# --- results, reports, comparisons ------------------------------------------------------------


def load_results(db: PathLike, run_id: str) -> RunResults:
    """The results of run ``run_id`` in the store ``db`` (see :mod:`medsafe.results`)."""
    from medsafe.results import load_results as load

    return load(db, run_id)


def _refs(run_ids: str | Sequence[str], db: PathLike) -> list[Any]:
    from medsafe.report.data import parse_run_ref

    ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    if not ids:
        raise ConfigError("name at least one run")
    return [parse_run_ref(r, Path(db)) for r in ids]


def write_report(
    run_ids: str | Sequence[str],
    output: PathLike = "report.html",
    *,
    db: PathLike = "medsafe.db",
    pdf: PathLike | None = None,
    worst: int = 10,
    adjust: Literal["holm", "bh"] = "holm",
) -> Path:
    """Write the self-contained HTML report of one or more runs (the first is the baseline);
    also a PDF when ``pdf`` is given. Run ids may be ``RUN@PATH``. Returns the HTML path."""
    from medsafe.report.render import build_report

    report = build_report(_refs(run_ids, db), worst=worst, adjust=adjust, for_pdf=pdf is not None)
    path = Path(output)
    part = path.with_name(path.name + ".part")
    part.write_text(report.html, encoding="utf-8")
    part.replace(path)
    if pdf is not None:
        from medsafe.report.pdf import write_pdf

        write_pdf(report.print_html or report.html, Path(pdf))
    return path


def compare(
    run_a: str,
    run_b: str,
    *,
    db: PathLike = "medsafe.db",
    metric: str | None = None,
    adjust: Literal["holm", "bh"] = "holm",
) -> Comparison:
    """Paired comparison of run B with baseline run A on the same items (``medsafe compare``);
    ``metric`` is a scorer or ``scorer:judge`` (default: mcq, else guardian, else the first)."""
    from medsafe.report.compare import compare_runs

    ref_a, ref_b = _refs([run_a, run_b], db)
    return compare_runs(ref_a, ref_b, metric=metric, adjust=adjust)


# --- @scorer ----------------------------------------------------------------------------------


class FunctionScorer(BaseScorer):
    """A scorer made by :func:`scorer` from a function ``(item, transcript) -> value``."""

    kinds: frozenset[str] | None = None

    def __init__(self, function: ScoreFunction) -> None:
        self.function = function

    def applies_to(self, item: Item) -> bool:
        """Items of the declared ``kinds`` (every item when none were declared)."""
        return self.kinds is None or item.kind in self.kinds

    def _score(self, item: Item, **fields: Any) -> Score:
        return Score(item_id=item.id, scorer=self.name, scorer_version=self.version, **fields)

    async def score(self, item: Item, transcript: Transcript) -> list[Score]:
        """The function's verdict as scores; an error in it becomes a ``failed`` score."""
        if transcript.status != "ok":
            cause = transcript.error or "unknown cause"
            return [self._score(item, status="skipped", error=f"generation failed: {cause}")]
        try:
            result = self.function(item, transcript)
            if inspect.isawaitable(result):
                result = await result
            return self._scores(item, result)
        except Exception as exc:
            return [self._score(item, status="failed", error=f"{type(exc).__name__}: {exc}")]

    def _scores(self, item: Item, result: object) -> list[Score]:
        if result is None:
            return [self._score(item, status="skipped", error="the scorer returned None")]
        if isinstance(result, Score):
            return [result]
        if isinstance(result, list) and all(isinstance(s, Score) for s in result):
            return list(result)
        label: str | None = None
        if isinstance(result, tuple) and len(result) == 2:
            result, label = result
            if not isinstance(label, str):
                raise TypeError(f"the label must be a str, not {type(label).__name__}")
            if self.scale.labels and label not in self.scale.labels:
                raise ValueError(f"label {label!r} is not one of {list(self.scale.labels)}")
        if isinstance(result, bool) or not isinstance(result, int | float):
            raise TypeError(
                f"scorer {self.name!r} returned {type(result).__name__}; return a number, "
                "(number, label), a Score or a list of Score"
            )
        value = float(result)
        if not math.isfinite(value) or not self.scale.in_range(value):
            raise ValueError(
                f"value {value} is not on the declared scale [{self.scale.lo}, {self.scale.hi}]"
                + (f" (levels {list(self.scale.levels)})" if self.scale.levels else "")
            )
        return [self._score(item, value=value, label=label)]


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{what} name {name!r} must be letters, digits, '.', '_' or '-' (no '/', ':', '@')"
        )
    return name


def scorer(
    *,
    name: str | None = None,
    scale: Scale,
    version: str = "1",
    kinds: Iterable[ItemKind] | None = None,
    replace_builtin: bool = False,
) -> Callable[[ScoreFunction], FunctionScorer]:
    """Decorator: make a function ``(item, transcript) -> value`` a registered scorer.

    The function (sync or async) returns a number on ``scale``, ``(number, label)``, a
    :class:`~medsafe.schema.Score` or a list of them; ``None`` skips the item. ``kinds`` limits
    it to those item kinds. The result is a :class:`~medsafe.scoring.BaseScorer` instance,
    registered under ``name`` (default: the function's name): pass it, or its name, in
    ``evaluate(scorers=...)``. Defining it again replaces it (with a warning); a built-in
    name (``mcq``, ``guardian``...) needs ``replace_builtin=True``.
    """
    if not isinstance(scale, Scale):
        raise TypeError(f"scale must be a medsafe.Scale, not {type(scale).__name__}")
    allowed = frozenset(kinds) if kinds is not None else None

    def decorate(function: ScoreFunction) -> FunctionScorer:
        default = getattr(function, "__name__", "")
        chosen = _check_name(name if name is not None else str(default), "scorer")
        attributes = {
            "name": chosen,
            "version": str(version),
            "scale": scale,
            "kinds": allowed,
            "__doc__": function.__doc__ or FunctionScorer.__doc__,
            "__module__": getattr(function, "__module__", __name__),
        }
        title = re.sub(r"[^A-Za-z0-9]", "", chosen.title())
        cls = type(f"{title}Scorer", (FunctionScorer,), attributes)
        instance: FunctionScorer = cls(function)

        def factory(config: ScorerConfig) -> FunctionScorer:
            if config.options or config.judges:
                raise ConfigError(f"scorer {chosen!r} takes no options or judges")
            return instance

        register_scorer(chosen, scale, replace_builtin=replace_builtin)(factory)
        return instance

    return decorate


# --- @backend ---------------------------------------------------------------------------------


class FunctionBackend:
    """A backend made by :func:`backend` from a function ``(messages, params) -> text``."""

    def __init__(
        self,
        name: str,
        model_id: str,
        function: GenerateFunction,
        max_concurrency: int | None = None,
    ) -> None:
        self.name = name
        self.model_id = model_id
        self.function = function
        self.max_concurrency = max_concurrency

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Call the function; its errors become non-retryable :class:`BackendError` s."""
        try:
            result = self.function(request.messages, request.params)
            if inspect.isawaitable(result):
                result = await result
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f"backend {self.name!r}: {type(exc).__name__}: {exc}") from exc
        if isinstance(result, ChatResponse):
            return result
        if isinstance(result, str):
            return ChatResponse(text=result, finish_reason="stop")
        raise BackendError(
            f"backend {self.name!r} returned {type(result).__name__}; return a str or ChatResponse"
        )

    async def aclose(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"<backend {self.name!r} model_id={self.model_id!r}>"


@dataclass(frozen=True)
class _BackendDecorator:
    name: str
    model_id: str
    max_concurrency: int | None
    replace_builtin: bool

    @overload
    def __call__(self, target: BackendT) -> BackendT: ...

    @overload
    def __call__(self, target: GenerateFunction) -> FunctionBackend: ...

    def __call__(self, target: Any) -> Any:
        register = backends.register(self.name, builtin=False, replace_builtin=self.replace_builtin)
        if isinstance(target, type):
            if not inspect.iscoroutinefunction(getattr(target, "complete", None)):
                raise TypeError(
                    f"backend class {target.__name__} needs an async complete(request) method"
                )
            cls: Any = target
            cls.name, cls.model_id = self.name, self.model_id
            if not hasattr(cls, "max_concurrency"):
                cls.max_concurrency = self.max_concurrency
            if not hasattr(cls, "aclose"):
                cls.aclose = FunctionBackend.aclose
            register(lambda _name, _options: cls())
            return target
        if not callable(target):
            raise TypeError(f"@backend decorates a class or a function, not {target!r}")
        made = FunctionBackend(self.name, self.model_id, target, self.max_concurrency)
        register(lambda _name, _options: made)
        return made


def backend(
    name: str,
    *,
    model_id: str,
    max_concurrency: int | None = None,
    replace_builtin: bool = False,
) -> _BackendDecorator:
    """Decorator: make a function ``(messages, params) -> str`` (sync or async) a model backend.

    ``messages`` is the tuple of :class:`~medsafe.schema.Message` s to answer and ``params``
    the :class:`~medsafe.schema.ModelParams`. On a class with an async ``complete(request)``
    method, the class is registered as it is (built with no arguments when named by a spec).
    The backend is registered as ``name`` (usable as ``model=name``); ``model_id`` says which
    version of it answers and enters every request's cache key, so a backend whose
    ``model_id`` changed is asked again instead of being served an older one's answers.
    """
    _check_name(name, "backend")
    if not isinstance(model_id, str) or not model_id:
        raise ValueError("model_id must be a non-empty string (e.g. 'my-model-v1')")
    return _BackendDecorator(name, model_id, max_concurrency, replace_builtin)


__all__ = [
    "FunctionBackend",
    "FunctionScorer",
    "backend",
    "compare",
    "evaluate",
    "evaluate_async",
    "load_results",
    "run_options",
    "run_sync",
    "scorer",
    "write_report",
]
