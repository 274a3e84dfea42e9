"""``--executor ray`` on a real local Ray instance (loopback): a worker killed mid-run, every
worker killed then resumed, the same answers and failure records as one process, loopback only,
phone-home off, and a clear error without Ray."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from medsafe.errors import ConfigError, ExecutorError, MedsafeError
from medsafe.models.base import Backend, BackendOptions, ChatRequest, ChatResponse
from medsafe.pipeline import RunOptions, run_options_async
from medsafe.schema import Item, Message, ModelParams, ScorerSpec
from medsafe.store import Store
from medsafe.testing.mock_openai import MockConfig, MockOpenAIServer, ThreadedMockServer
from tests.conftest import make_mcq

MODEL = "openai/mock"
MCQ = (ScorerSpec(name="mcq"),)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """One local Ray instance for the module (4 logical CPUs on 127.0.0.1), stopped after."""
    from medsafe.runner.ray_pool import import_ray, start_local

    saved = dict(os.environ)
    try:
        ray = import_ray(local=True)
    except ConfigError as exc:
        pytest.skip(f"Ray is not installed: {exc}")
    if ray.is_initialized():
        ray.shutdown()
    start_local(num_cpus=4)
    try:
        yield
    finally:
        ray.shutdown()
        os.environ.clear()
        os.environ.update(saved)


def dialogue(i: int, turns: int = 3) -> Item:
    """A scripted red-team dialogue whose user turns are all unique."""
    return Item(
        id=f"d{i:03d}",
        kind="dialogue",
        seed=f"seed request {i}",
        strategy="role_play",
        turns=turns,
        messages=tuple(
            Message(role="user", content=f"conversation {i} turn {k}") for k in range(1, turns + 1)
        ),
    )


def suite(n_mcq: int, n_dialogue: int = 0) -> list[Item]:
    return [make_mcq(i) for i in range(n_mcq)] + [dialogue(i) for i in range(n_dialogue)]


def pool_for(base_url: str, workers: int | None, concurrency: int) -> object:
    from medsafe.runner.ray_pool import PoolConfig, RayPoolBackend

    options = BackendOptions(base_url=base_url, timeout_s=30.0)
    return RayPoolBackend.start(PoolConfig(MODEL, options, workers, concurrency))


def texts(db: Path, run_id: str) -> dict[str, tuple[str, ...]]:
    """Every item's conversation (its answers included) and status."""
    with Store(db) as store:
        return {
            t.item_id: (t.status, *(str(m.content) for m in t.messages))
            for _item, t in store.iter_transcripts(run_id)
        }


def last_user(request: ChatRequest) -> str:
    return str(request.messages[-1].content)


async def kill_after(
    mock: MockOpenAIServer, pool: object, requests: int, indices: Sequence[int]
) -> None:
    """SIGKILL the processes of the pool's workers ``indices`` once the mock saw ``requests``."""
    from medsafe.runner.ray_pool import RayPoolBackend

    assert isinstance(pool, RayPoolBackend)
    while mock.state.requests < requests:
        await asyncio.sleep(0.002)
    for index in indices:
        os.kill(pool.workers[index].pid, signal.SIGKILL)


async def single_process_run(items: list[Item], db: Path) -> dict[str, tuple[str, ...]]:
    mock = MockOpenAIServer(MockConfig(latency_s=0.01))
    await mock.start()
    try:
        options = RunOptions(
            suite=items, model=MODEL, base_url=mock.base_url, db=db, run_id="one", scorers=MCQ
        )
        await run_options_async(options)
    finally:
        await mock.stop()
    return texts(db, "one")


async def test_worker_killed_mid_run_loses_nothing_and_repeats_only_its_calls_in_flight(
    ray_cluster: None, any_db: Path, tmp_path: Path
) -> None:
    """On SQLite and on PostgreSQL: the answers go from the driver's one writer to either."""
    from medsafe.runner.ray_pool import RayPoolBackend

    items = suite(120, n_dialogue=10)
    expected_calls = 120 + 10 * 3
    mock = MockOpenAIServer(MockConfig(latency_s=0.05))
    await mock.start()
    try:
        pool = pool_for(mock.base_url, workers=3, concurrency=12)
        assert isinstance(pool, RayPoolBackend)
        options = RunOptions(suite=items, model=pool, db=any_db, run_id="ray", scorers=MCQ)
        options = replace(options, concurrency=12)
        killer = asyncio.create_task(kill_after(mock, pool, 40, [1]))
        outcome = await run_options_async(options)
        await killer
    finally:
        await mock.stop()

    assert outcome.generation is not None and outcome.generation.failed == 0
    assert len(pool.deaths) == 1 and pool.deaths[0].index == 1
    assert pool.deaths[0].in_flight  # killed while answering: those calls were sent again
    assert sum(pool.sent(i) for i in (0, 2)) > pool.sent(1)  # the survivors took the rest
    got = texts(any_db, "ray")
    assert {status for status, *_ in got.values()} == {"ok"}
    assert got == await single_process_run(items, tmp_path / "one.db")

    # each call answered exactly once, except those in flight on the killed worker (sent again:
    # whether the provider answered them cannot be known), each asked at most twice
    asked = Counter(mock.state.answered)
    in_flight = {last_user(r) for r in pool.deaths[0].in_flight}
    twice = {text for text, n in asked.items() if n > 1}
    assert len(asked) == expected_calls
    assert twice <= in_flight and max(asked.values()) <= 2
    assert mock.state.requests == expected_calls + len(twice)
    with Store(any_db) as store:
        provenance = store.require_run("ray").provenance
    assert provenance["executor"] == {"kind": "ray", "workers": 3, "cluster": "local"}


async def test_every_worker_killed_stops_the_run_and_resume_asks_only_what_was_not_answered(
    ray_cluster: None, any_db: Path
) -> None:
    from medsafe.runner.ray_pool import RayPoolBackend

    items = suite(150)
    db = any_db
    mock = MockOpenAIServer(MockConfig(latency_s=0.05))
    await mock.start()
    try:
        pool = pool_for(mock.base_url, workers=3, concurrency=9)
        assert isinstance(pool, RayPoolBackend)
        options = RunOptions(suite=items, model=pool, db=db, run_id="r", scorers=MCQ)
        killer = asyncio.create_task(kill_after(mock, pool, 60, [0, 1, 2]))
        with pytest.raises(ExecutorError, match=r"every Ray worker died.*resume"):
            await run_options_async(options)
        await killer
        with Store(db) as store:
            answered = store.status_counts("r")["ok"]
        first = Counter(mock.state.answered)
        assert 0 < answered < len(items)

        resumed = RunOptions(
            suite=None, model=MODEL, base_url=mock.base_url, db=db, run_id="r", scorers=MCQ
        )
        outcome = await run_options_async(resumed)
    finally:
        await mock.stop()

    assert outcome.resumed and outcome.generation is not None
    assert outcome.generation.attempted == len(items) - answered  # only what was pending
    assert {status for status, *_ in texts(db, "r").values()} == {"ok"}
    asked = Counter(mock.state.answered)
    in_flight = {last_user(r) for death in pool.deaths for r in death.in_flight}
    assert len(asked) == len(items)
    assert {text for text, n in asked.items() if n > 1} <= in_flight
    assert all(asked[text] == 1 for text in first if text not in in_flight)


async def test_failures_come_back_as_the_same_records_as_in_one_process(
    ray_cluster: None, tmp_path: Path
) -> None:
    items = suite(3)
    mock = MockOpenAIServer(MockConfig(fail_500=1.0))
    await mock.start()
    try:
        local = RunOptions(suite=items, model=MODEL, base_url=mock.base_url, retries=0, scorers=MCQ)
        pool = pool_for(mock.base_url, workers=2, concurrency=2)
        assert isinstance(pool, Backend)
        await run_options_async(replace(local, model=pool, db=tmp_path / "a.db", run_id="a"))
        await run_options_async(replace(local, db=tmp_path / "b.db", run_id="b"))
    finally:
        await mock.stop()
    ray_run, local_run = texts(tmp_path / "a.db", "a"), texts(tmp_path / "b.db", "b")
    assert {status for status, *_ in ray_run.values()} == {"failed"}
    assert ray_run == local_run
    with Store(tmp_path / "a.db") as a, Store(tmp_path / "b.db") as b:
        errors_a = sorted(str(t.error) for _item, t in a.iter_transcripts("a"))
        errors_b = sorted(str(t.error) for _item, t in b.iter_transcripts("b"))
    assert errors_a == errors_b and "500" in errors_a[0]


def test_a_backend_that_cannot_be_built_in_a_worker_fails_with_its_own_message(
    ray_cluster: None,
) -> None:
    from medsafe.models.base import create_backend
    from medsafe.runner.ray_pool import PoolConfig, RayPoolBackend

    with pytest.raises(MedsafeError) as in_process:
        create_backend("nosuchkind/x", BackendOptions())
    with pytest.raises(ConfigError) as in_worker:
        RayPoolBackend.start(PoolConfig("nosuchkind/x", BackendOptions(), 2, 2))
    # The same message, but for backends registered in this process by other tests (a worker
    # process knows only the built-in and installed ones).
    here, there = str(in_process.value), str(in_worker.value)
    assert there.split(" (known: ")[0] == here.split(" (known: ")[0]
    known_here = set(here.split(" (known: ")[1].rstrip(")").split(", "))
    known_there = set(there.split(" (known: ")[1].rstrip(")").split(", "))
    assert {"embedded", "hf", "openai", "replay"} <= known_there <= known_here


async def test_judges_behind_an_api_get_their_own_pool_and_score_as_in_one_process(
    ray_cluster: None, tmp_path: Path
) -> None:
    from medsafe.pipeline import execute, plan_run
    from medsafe.runner.ray_pool import RayPoolBackend
    from tests.judge_helpers import constant, judge_server

    rows = [{"id": f"p{i}", "kind": "open", "prompt": f"request {i}"} for i in range(4)]
    suite_file = tmp_path / "s.jsonl"
    suite_file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    verdict = {"reason": "r", "score": 2}
    replies = {"target": constant("I can't help with that."), "ja": constant(json.dumps(verdict))}
    with judge_server(replies) as (server, script):
        config = tmp_path / "models.toml"
        config.write_text(
            f'[models.target]\nmodel = "openai/target"\nbase_url = "{server.base_url}"\n'
            f'[models.judge-a]\nmodel = "openai/ja"\nbase_url = "{server.base_url}"\n',
            encoding="utf-8",
        )
        local = RunOptions(
            suite=str(suite_file),
            model="target",
            config=config,
            judges=("harmfulness:judge-a",),
            scorers=MCQ,
            db=tmp_path / "local.db",
            run_id="j",
        )
        distributed = replace(local, db=tmp_path / "ray.db", executor="ray", workers=2)
        with Store(distributed.db) as store:
            plan = await plan_run(distributed, store)
            judges = [c for s in plan.scorers for c in getattr(s, "judges", ())]
            assert isinstance(plan.backend, RayPoolBackend)
            assert judges and all(isinstance(c.backend, RayPoolBackend) for c in judges)
            on_ray = await execute(plan, store)
        in_one = await run_options_async(local)
        assert len(script.prompts("ja")) == 2 * len(rows)  # each run asks each item once
    harm = on_ray.results.model_dump(mode="json")["scorers"]["harmfulness"]
    assert harm["n"] == len(rows) and harm["mean"] == pytest.approx(2.0)
    assert harm == in_one.results.model_dump(mode="json")["scorers"]["harmfulness"]


def test_workers_that_built_different_models_are_refused() -> None:
    from medsafe.runner.ray_pool import WorkerInfo, check_same_model

    def info(key: str) -> WorkerInfo:
        return WorkerInfo(1, "127.0.0.1", "hf/m", key, 1, None, None, None, {})

    check_same_model("hf/m", [info("hf/m?sha256=aa"), info("hf/m?sha256=aa")])
    with pytest.raises(ConfigError, match=r"built different models.*sha256=bb"):
        check_same_model("hf/m", [info("hf/m?sha256=aa"), info("hf/m?sha256=bb")])


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


async def test_a_ray_run_listens_and_connects_only_on_loopback_with_phone_home_off(
    ray_cluster: None,
) -> None:
    import ray

    psutil: Any = pytest.importorskip("psutil", reason="psutil lists the Ray processes' sockets")

    from medsafe.runner.ray_pool import RayPoolBackend

    mock = MockOpenAIServer(MockConfig(latency_s=0.01))
    await mock.start()
    try:
        pool = pool_for(mock.base_url, workers=None, concurrency=4)  # one per cluster CPU
        assert isinstance(pool, RayPoolBackend) and len(pool.workers) == 4
        request = ChatRequest(
            messages=(Message(role="user", content="hello"),), params=ModelParams()
        )
        answers = await asyncio.gather(*(pool.complete(request) for _ in range(8)))
        processes = psutil.Process().children(recursive=True)  # GCS, raylet, workers, actors
        connections = [c for p in processes for c in p.net_connections(kind="inet")]
        assert {info.pid for info in pool.workers} <= set(pool_workers())
        await pool.aclose()
    finally:
        await mock.stop()
    assert len(answers) == 8 and all(a.text for a in answers)
    assert {info.pid for info in pool.workers} <= {p.pid for p in processes}
    assert len(connections) > 10  # the Ray processes talk to each other over TCP
    outside = [c for c in connections if not _loopback(c.laddr.ip)]
    outside += [c for c in connections if c.raddr and not _loopback(c.raddr.ip)]
    assert outside == []
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    for info in pool.workers:
        assert info.node_ip == "127.0.0.1"
        assert info.env["RAY_USAGE_STATS_ENABLED"] == "0"
        assert info.env["VLLM_NO_USAGE_STATS"] == "1"
        assert info.env["HF_HUB_DISABLE_TELEMETRY"] == "1"
        assert info.env["DO_NOT_TRACK"] == "1"
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"


def cli_run(tmp_path: Path, base_url: str, *extra: str) -> subprocess.Popen[str]:
    """``medsafe run`` of 12 MCQs with ``--executor ray --workers 2`` in a child process."""
    items = tmp_path / "s.jsonl"
    items.write_text(
        "".join(
            make_mcq(i).model_dump_json(exclude_defaults=True, exclude={"messages"}) + "\n"
            for i in range(12)
        ),
        encoding="utf-8",
    )
    argv = [sys.executable, "-m", "medsafe.cli", "run", str(items), "--model", MODEL]
    argv += ["--base-url", base_url, "--db", str(tmp_path / "cli.db"), "--run-id", "c"]
    argv += ["--scorer", "mcq", "--no-progress", "--json", "--executor", "ray", "--workers", "2"]
    return subprocess.Popen(
        [*argv, *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def check_cli_run(tmp_path: Path, child: subprocess.Popen[str], cluster: str) -> None:
    output, _ = child.communicate(timeout=120)
    assert child.returncode == 0, output
    with Store(tmp_path / "cli.db") as store:
        assert store.status_counts("c")["ok"] == 12
        executor = store.require_run("c").provenance["executor"]
    assert executor == {"kind": "ray", "workers": 2, "cluster": cluster}


def test_the_cli_joins_a_running_cluster_by_its_address_and_leaves_it_running(
    ray_cluster: None, tmp_path: Path
) -> None:
    ray: Any = sys.modules["ray"]
    address = ray.get_runtime_context().gcs_address
    with ThreadedMockServer(MockConfig()) as mock:
        check_cli_run(
            tmp_path, cli_run(tmp_path, mock.base_url, "--ray-address", address), "address"
        )
        assert mock.state.requests == 12
    assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 4
    for _ in range(100):  # the run's actors are stopped (their processes exit)
        if not pool_workers():
            break
        time.sleep(0.1)
    assert pool_workers() == []


def pool_workers() -> list[int]:
    """Processes of live medsafe pool actors on this machine."""
    psutil: Any = pytest.importorskip("psutil", reason="psutil lists the actors' processes")
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if "ray::PoolWorker" in " ".join(process.info["cmdline"] or ()):
            found.append(process.pid)
    return found


def test_the_cli_starts_its_own_ray_on_loopback_and_stops_it_at_the_end(
    tmp_path: Path,
) -> None:
    psutil: Any = pytest.importorskip("psutil", reason="psutil lists the processes left")
    with ThreadedMockServer(MockConfig()) as mock:
        child = cli_run(tmp_path, mock.base_url)
        check_cli_run(tmp_path, child, "local")
    # Ray names a local session after its driver's pid: session_DATE_TIME_MICROS_PID
    session = re.compile(rf"/session_[0-9_-]+_{child.pid}(?![0-9])")
    left = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or ())
        if session.search(cmdline):
            left.append(cmdline[:200])
    assert left == []


class DiesAfter:
    """A backend whose executor is lost after ``n`` answers (no Ray needed)."""

    model_id = "openai/dies"
    max_concurrency: int | None = None

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        if self.calls > self.n:
            raise ExecutorError("every worker died")
        await asyncio.sleep(0.001)
        return ChatResponse(text="Answer: A")

    async def aclose(self) -> None:
        return None


async def test_an_executor_error_stops_the_run_instead_of_waiting_on_a_full_queue(
    tmp_path: Path,
) -> None:
    backend = DiesAfter(20)  # 300 items fill the runner's queue long before the 21st call
    options = RunOptions(suite=suite(300), model=backend, db=tmp_path / "d.db", run_id="d")
    with pytest.raises(ExecutorError, match="every worker died"):
        await asyncio.wait_for(run_options_async(replace(options, scorers=MCQ)), 60)
    with Store(tmp_path / "d.db") as store:
        counts = store.status_counts("d")
    # what was answered is stored (calls still in flight when the run stopped were cancelled);
    # nothing is recorded as a failed item: the rest stays pending for a resume
    assert 0 < counts["ok"] <= 20 and counts["failed"] == 0


async def test_without_ray_a_clear_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    options = RunOptions(
        suite=suite(2), model=MODEL, base_url="http://127.0.0.1:9/v1", db=tmp_path / "x.db"
    )
    options = replace(options, executor="ray", workers=2)
    with pytest.raises(ConfigError, match=r"pip install 'medsafe\[ray\]'"):
        await run_options_async(options)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"workers": 2}, "need --executor ray"),
        ({"ray_address": "auto"}, "need --executor ray"),
        ({"executor": "slurm"}, "executor must be one of local, ray"),
        ({"executor": "ray", "workers": 0}, "workers must be at least 1"),
    ],
)
async def test_executor_options_are_checked_before_anything_starts(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    options = RunOptions(suite=suite(1), model=MODEL, db=tmp_path / "x.db")
    with pytest.raises(ConfigError, match=message):
        await run_options_async(replace(options, **change))  # type: ignore[arg-type]
