"""``--executor ray``: a run's model calls spread over a pool of Ray actors.

:class:`RayPoolBackend` is a :class:`~medsafe.models.base.Backend` like any other, so the
runner keeps its one code path: the driver process still reads pending items, looks answers up
in the request cache, journals each fresh answer and has the one store writer; only the model
calls travel. Each actor (:class:`PoolWorker`) builds the real backend from the model spec in its
own process, with its own client and concurrency. A request goes to the live actor with the
fewest requests in flight. When an actor dies (its process killed, its node lost), every request
that was in flight on it is sent again to a surviving actor, and the run goes on; when none is
left, the run stops with :class:`~medsafe.errors.ExecutorError` and what was answered is kept.

Whether a provider processed a request whose worker died before answering cannot be known, so
such a request is asked again (the same guarantee as ``kill -9`` of a single process); an answer
that reached the driver is journaled and never asked again.

Ray is imported lazily (``pip install 'medsafe[ray]'``). Its usage statistics, and those of the
engines the actors start (Hugging Face, vLLM), are turned off before it is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medsafe.errors import BackendError, ConfigError, ExecutorError, MedsafeError
from medsafe.models.base import (
    Backend,
    BackendOptions,
    ChatRequest,
    ChatResponse,
    create_backend,
    model_key,
)
from medsafe.redact import redact

if TYPE_CHECKING:
    from types import ModuleType

LOOPBACK = "127.0.0.1"
PHONE_HOME_OFF = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
"""Usage statistics of Ray and of the engines its actors start: always off."""
OFFLINE_DEFAULTS = {"HF_HUB_OFFLINE": "1"}
"""Offline flags: set unless the user set them explicitly."""
LOCAL_KINDS = frozenset({"hf", "embedded", "vllm"})
"""Backends that run the model in their own process: one actor per GPU where there are GPUs."""
START_TIMEOUT_S = 120.0
"""How long the actors of an API model may take to start before the run gives up (not enough
CPUs or GPUs in the cluster for them, say)."""
LOCAL_START_TIMEOUT_S = 1800.0
"""The same for a local model, whose actors each load the model first."""
CLOSE_TIMEOUT_S = 10.0


def worker_env() -> dict[str, str]:
    """The environment variables every actor gets: phone-home off, offline by default."""
    env = dict(PHONE_HOME_OFF)
    for name, value in OFFLINE_DEFAULTS.items():
        env[name] = os.environ.get(name, value)
    return env


def _phone_home_off() -> None:
    os.environ.update(PHONE_HOME_OFF)
    for name, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(name, value)


def is_loopback_address(address: str) -> bool:
    """Whether a Ray address (``HOST:PORT``) names this machine's loopback interface."""
    host = address.rpartition(":")[0] or address
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def import_ray(*, local: bool) -> ModuleType:
    """Ray, imported with its usage statistics off (ConfigError naming the extra if absent).

    ``local``: Ray runs on this machine's loopback interface (an instance it is about to start,
    or a head started with ``--node-ip-address 127.0.0.1``), so every address it picks (node,
    GCS, workers) is the loopback one; Ray reads that flag when it is imported. Where a Ray
    token exists (Ray's default token authentication) and ``RAY_AUTH_MODE`` is unset, the token
    mode is set before the import too, so that a driver joining a running cluster sends it.
    """
    _phone_home_off()
    if "ray" not in sys.modules:
        if local:
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # node address: 127.0.0.1
        token = os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token"
        if os.environ.get("RAY_AUTH_TOKEN") or Path(token).is_file():
            os.environ.setdefault("RAY_AUTH_MODE", "token")
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--executor ray needs Ray: pip install 'medsafe[ray]' (or pip install 'ray>=2.40')"
        ) from None
    return ray


def start_local(num_cpus: int, num_gpus: int | None = None) -> None:
    """Start a Ray instance on this machine bound to 127.0.0.1, or fail without leaving one.

    Raises ConfigError if Ray would listen or connect anywhere but the loopback address (Ray
    already imported without the loopback flag, for instance).
    """
    ray = import_ray(local=True)
    ray.init(
        address="local",
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        include_dashboard=False,
        _node_ip_address=LOOPBACK,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": worker_env()},
    )
    node_ip = ray.util.get_node_ip_address()
    if node_ip != LOOPBACK:
        ray.shutdown()
        raise ConfigError(
            f"the local Ray instance took address {node_ip}, not {LOOPBACK}; import medsafe's "
            "Ray executor before Ray itself, or start a cluster with ray start and pass "
            "--ray-address"
        )


@dataclass
class _LocalInstance:
    """The Ray instance medsafe started in this process (if any) and the pools using it: the
    target's and each judge's; it is stopped when the last of them closes."""

    running: bool = False
    pools: int = 0

    def release(self, ray: Any) -> None:
        self.pools -= 1
        if self.pools <= 0 and self.running:
            self.running, self.pools = False, 0
            ray.shutdown()


_LOCAL = _LocalInstance()


@dataclass(frozen=True)
class WorkerInfo:
    """What an actor says about itself once its backend is built."""

    pid: int
    node_ip: str
    model_id: str
    key: str
    """:func:`~medsafe.models.base.model_key` of the backend (the run's cache key)."""
    max_concurrency: int | None
    base_url: str | None
    notice: str | None
    name: str | None
    env: dict[str, str | None]
    """The phone-home and offline variables as the actor's process sees them."""


@dataclass(frozen=True)
class RemoteFailure:
    """A failed call, as the actor saw it (raised again in the driver as a BackendError)."""

    message: str
    retryable: bool = False
    retry_after: float | None = None
    status_code: int | None = None


class PoolWorker:
    """One Ray actor: the real backend, built in the actor's own process."""

    def __init__(self, spec: str, options: BackendOptions) -> None:
        _phone_home_off()
        self._error: str | None = None
        try:
            self._backend = create_backend(spec, options)
            self._key = model_key(spec, self._backend)
        except MedsafeError as exc:  # reported by describe(), as the same message in-process
            self._error = str(exc)
        except Exception as exc:  # e.g. a local model's package missing on this node
            self._error = redact(f"{type(exc).__name__}: {exc}")

    def describe(self) -> WorkerInfo | str:
        """This actor's process, address and backend; or why its backend could not be built."""
        if self._error is not None:
            return self._error
        backend = self._backend
        ray = sys.modules["ray"]
        names = (*PHONE_HOME_OFF, *OFFLINE_DEFAULTS)
        return WorkerInfo(
            pid=os.getpid(),
            node_ip=str(ray.util.get_node_ip_address()),
            model_id=backend.model_id,
            key=self._key,
            max_concurrency=backend.max_concurrency,
            base_url=_str_or_none(getattr(backend, "base_url", None)),
            notice=_str_or_none(getattr(backend, "notice", None)),
            name=_str_or_none(getattr(backend, "name", None)),
            env={name: os.environ.get(name) for name in names},
        )

    async def complete(self, request: ChatRequest) -> ChatResponse | RemoteFailure:
        """Ask the backend; a failure comes back as a value, never as a Ray task error."""
        try:
            return await self._backend.complete(request)
        except BackendError as exc:
            return RemoteFailure(str(exc), exc.retryable, exc.retry_after, exc.status_code)
        except Exception as exc:  # a backend bug fails the item with its cause, as in-process
            return RemoteFailure(f"{type(exc).__name__}: {exc}")

    async def aclose(self) -> None:
        """Release the backend's connections or model memory."""
        await self._backend.aclose()


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass
class WorkerDeath:
    """An actor the pool lost, and the requests that were in flight on it at that moment."""

    index: int
    pid: int
    cause: str
    in_flight: tuple[ChatRequest, ...]


@dataclass
class _Slot:
    index: int
    actor: Any
    info: WorkerInfo
    in_flight: dict[int, ChatRequest] = field(default_factory=dict)
    alive: bool = True
    sent: int = 0


@dataclass(frozen=True)
class PoolConfig:
    """How to build a pool: the model, where Ray runs, how many actors."""

    spec: str
    options: BackendOptions
    workers: int | None
    """Actors to start; None: one per GPU of the cluster for a local model where there are
    GPUs, else one per CPU of the cluster (of this machine for a local instance)."""
    concurrency: int
    """The run's requests in flight, over the whole pool (the driver's limit)."""
    address: str | None = None
    """A running cluster (``auto`` or ``HOST:PORT``); None starts a local one on 127.0.0.1."""


class RayPoolBackend:
    """A backend whose calls are answered by a pool of Ray actors (see the module docstring).

    Build it with :meth:`start`; :meth:`aclose` stops the actors, and the Ray instance medsafe
    started once no pool uses it (a Ray instance started otherwise, or a cluster, is left
    running). An API model's actors reserve no CPU (they wait on the network), so the target's
    and the judges' pools share the CPUs; a local model's take one GPU each, or one CPU.
    """

    def __init__(self, config: PoolConfig, slots: list[_Slot], owns_ray: bool) -> None:
        first = slots[0].info
        self.config = config
        self.model_id = first.model_id
        self.key = first.key
        self.pinned_key = first.key
        self.name = first.name
        self.base_url = first.base_url
        self.notice = first.notice
        caps = [slot.info.max_concurrency for slot in slots]
        self.max_concurrency: int | None = None
        if all(cap is not None for cap in caps):
            self.max_concurrency = sum(cap for cap in caps if cap is not None)
        self.executor: dict[str, Any] = {
            "kind": "ray",
            "workers": len(slots),
            "cluster": "local" if config.address is None else "address",
        }
        """Recorded in the run's provenance (the address itself is not: it may hold a token)."""
        self.deaths: list[WorkerDeath] = []
        self._slots = slots
        self._owns_ray = owns_ray
        self._tokens = itertools.count()
        self._turn = itertools.count()

    @classmethod
    def start(cls, config: PoolConfig) -> RayPoolBackend:
        """Connect to (or start) Ray, start ``config.workers`` actors, wait until each has
        built its backend; ConfigError if one cannot (its cause) or they do not start in time."""
        if config.workers is not None and config.workers < 1:
            raise ConfigError(f"--workers must be at least 1, not {config.workers}")
        cpus = max(1, os.cpu_count() or 1)
        local_model = config.spec.partition("/")[0] in LOCAL_KINDS
        on_loopback = config.address is None or is_loopback_address(config.address)
        ray = import_ray(local=on_loopback)
        if not ray.is_initialized():
            if config.address is None:
                start_local(num_cpus=config.workers or cpus)
                _LOCAL.running = True
            else:
                ray.init(
                    address=config.address,
                    log_to_driver=False,
                    configure_logging=False,
                    runtime_env={"env_vars": worker_env()},
                )
        owns_ray = _LOCAL.running  # a pool of the instance medsafe started: counted
        _LOCAL.pools += owns_ray
        try:
            resources = ray.cluster_resources()
            gpus = int(resources.get("GPU", 0)) if local_model else 0
            count = config.workers or gpus or max(1, int(resources.get("CPU", 1)))
            actor_class = ray.remote(PoolWorker)
            per_actor = max(1, config.concurrency)
            actors = [
                actor_class.options(
                    max_concurrency=per_actor,
                    num_cpus=1 if local_model and not gpus else 0,  # an API client: I/O only
                    num_gpus=1 if gpus else 0,
                    scheduling_strategy="SPREAD",
                    runtime_env={"env_vars": worker_env()},
                ).remote(config.spec, config.options)
                for _ in range(count)
            ]
            timeout_s = LOCAL_START_TIMEOUT_S if local_model else START_TIMEOUT_S
            infos = _wait_started(ray, actors, timeout_s)
            try:
                check_same_model(config.spec, infos)
            except ConfigError:
                for actor in actors:
                    ray.kill(actor)
                raise
        except BaseException:
            if owns_ray:
                _LOCAL.release(ray)
            raise
        pairs = enumerate(zip(actors, infos, strict=True))
        slots = [_Slot(i, actor, info) for i, (actor, info) in pairs]
        return cls(config, slots, owns_ray)

    @property
    def workers(self) -> list[WorkerInfo]:
        """Every actor the pool started (live or dead), in order."""
        return [slot.info for slot in self._slots]

    @property
    def alive(self) -> int:
        """How many actors are still answering."""
        return sum(slot.alive for slot in self._slots)

    def in_flight(self, index: int) -> tuple[ChatRequest, ...]:
        """The requests actor ``index`` is answering now."""
        return tuple(self._slots[index].in_flight.values())

    def sent(self, index: int) -> int:
        """How many requests were sent to actor ``index`` so far."""
        return self._slots[index].sent

    def _pick(self) -> _Slot:
        live = [slot for slot in self._slots if slot.alive]
        if not live:
            causes = "; ".join(f"worker {d.index} (pid {d.pid}): {d.cause}" for d in self.deaths)
            raise ExecutorError(
                f"every Ray worker died ({causes}); what was answered is stored: resume the "
                "run with the same --run-id"
            )
        fewest = min(len(slot.in_flight) for slot in live)
        candidates = [slot for slot in live if len(slot.in_flight) == fewest]
        return candidates[next(self._turn) % len(candidates)]

    def _bury(self, slot: _Slot, exc: BaseException) -> None:
        if not slot.alive:
            return
        slot.alive = False
        cause = redact(f"{type(exc).__name__}: {exc}".splitlines()[0])
        self.deaths.append(
            WorkerDeath(slot.index, slot.info.pid, cause, tuple(slot.in_flight.values()))
        )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Send ``request`` to the least busy live actor; again to another if that one dies."""
        ray = sys.modules["ray"]
        lost = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)
        while True:
            slot = self._pick()
            token = next(self._tokens)
            slot.in_flight[token] = request
            slot.sent += 1
            ref = slot.actor.complete.remote(request)
            try:
                outcome = await ref
            except lost as exc:
                self._bury(slot, exc)
                continue
            except asyncio.CancelledError:  # the runner's timeout: stop the actor's call too
                _cancel(ray, ref)
                raise
            finally:
                slot.in_flight.pop(token, None)
            if isinstance(outcome, RemoteFailure):
                raise BackendError(
                    outcome.message,
                    retryable=outcome.retryable,
                    retry_after=outcome.retry_after,
                    status_code=outcome.status_code,
                )
            if not isinstance(outcome, ChatResponse):
                raise BackendError(f"a Ray worker answered a {type(outcome).__name__}")
            return outcome

    async def aclose(self) -> None:
        """Close every live actor's backend, stop the actors, and the Ray instance if ours."""
        ray = sys.modules["ray"]
        live = [slot for slot in self._slots if slot.alive]
        closing = [slot.actor.aclose.remote() for slot in live]
        if closing:
            await asyncio.wait(
                [asyncio.ensure_future(ref) for ref in closing], timeout=CLOSE_TIMEOUT_S
            )
        for slot in self._slots:
            slot.alive = False
            with contextlib.suppress(Exception):  # already gone
                ray.kill(slot.actor)
        if self._owns_ray:
            self._owns_ray = False
            _LOCAL.release(ray)


def _cancel(ray: Any, ref: Any) -> None:
    with contextlib.suppress(Exception):  # the call already finished or its actor is gone
        ray.cancel(ref)


def check_same_model(spec: str, infos: list[WorkerInfo]) -> None:
    """ConfigError unless every worker built the same model (one cache key): another checkpoint
    under the same path on another node must not answer under this one's key."""
    keys = sorted({info.key for info in infos})
    if len(keys) > 1:
        raise ConfigError(
            f"the Ray workers built different models from {spec!r}: {', '.join(keys)}; "
            "every node needs the same model"
        )


def _wait_started(ray: Any, actors: list[Any], timeout_s: float) -> list[WorkerInfo]:
    """Each actor's :class:`WorkerInfo` once it has built its backend."""
    refs = [actor.describe.remote() for actor in actors]
    ready, pending = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
    if pending:
        for actor in actors:
            ray.kill(actor)
        raise ConfigError(
            f"only {len(ready)} of {len(actors)} Ray workers started within "
            f"{timeout_s:g} s: the cluster lacks CPUs/GPUs for them (see ray status)"
        )
    try:
        described: list[WorkerInfo | str] = ray.get(refs)
    except ray.exceptions.RayActorError as exc:
        described = [redact(str(exc).splitlines()[0])]
    infos = [info for info in described if isinstance(info, WorkerInfo)]
    if len(infos) < len(actors):
        for actor in actors:
            ray.kill(actor)
        cause = next(info for info in described if isinstance(info, str))
        raise ConfigError(cause)
    return infos


def pool_backend(
    spec: str,
    options: BackendOptions,
    *,
    workers: int | None,
    concurrency: int,
    address: str | None,
) -> Backend:
    """Start a :class:`RayPoolBackend` for ``spec`` (the pipeline's ``--executor ray``)."""
    return RayPoolBackend.start(PoolConfig(spec, options, workers, concurrency, address))
