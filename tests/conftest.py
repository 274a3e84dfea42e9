"""Shared fixtures: items, a store with a run, and a loopback mock OpenAI server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from medsafe.schema import Item, ModelParams, RunSpec
from medsafe.store import Store
from medsafe.suites.prompting import mcq_messages
from medsafe.testing.mock_openai import MockConfig, MockOpenAIServer, ThreadedMockServer
from tests.pg_support import any_db, pg_server, pg_url  # noqa: F401  (fixtures)

SHARED_DATA = Path(
    os.environ.get("MEDSAFE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
"""Real third-party data for tests (../shared/data beside the repository; never copied in)."""


def shared_data(*parts: str) -> Path:
    """``SHARED_DATA/parts...``; skips the calling test, saying why, when it is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data {path} is not here (set MEDSAFE_SHARED_DATA to its folder)")
    return path


def make_mcq(i: int, answer: str = "A", category: str = "ama-1") -> Item:
    """A small MCQ item with four options."""
    options = {"A": f"first {i}", "B": f"second {i}", "C": f"third {i}", "D": f"fourth {i}"}
    question = f"Question number {i}: which option is right?"
    return Item(
        id=f"q{i:05d}",
        suite="unit",
        kind="mcq",
        question=question,
        options=options,
        answer=answer,
        category=category,
        messages=mcq_messages(question, options, "en", multi=len(answer) > 1),
    )


def make_spec(run_id: str, model: str, base_url: str | None = None, **kw: object) -> RunSpec:
    """A run spec for tests."""
    return RunSpec(
        run_id=run_id,
        suite="unit",
        suite_format="jsonl",
        suite_hash="",
        model=model,
        base_url=base_url,
        params=ModelParams(),
        **kw,
    )


EMBEDDED_PROBE = """
import asyncio
from medsafe.models.base import BackendOptions, ChatRequest
from medsafe.models.embedded import embedded_backend
from medsafe.schema import Message, ModelParams
backend = embedded_backend("smollm2", BackendOptions())
request = ChatRequest(
    messages=(Message(role="user", content="Hello"),), params=ModelParams(max_tokens=2)
)
print(asyncio.run(backend.complete(request)).text)
"""


@pytest.fixture(scope="session")
def embedded_runtime() -> None:
    """Skip without llama-cpp-python; fail clearly if its build cannot run on this CPU.

    A library compiled for another CPU's instructions (AMX, AVX-512) kills the process that
    loads it with SIGILL, which would end the whole test session without a report. The model
    is therefore first asked one short question in a child process.
    """
    pytest.importorskip("llama_cpp")
    probe = subprocess.run(
        [sys.executable, "-c", EMBEDDED_PROBE], capture_output=True, text=True, timeout=300
    )
    if probe.returncode < 0:
        name = signal.Signals(-probe.returncode).name
        pytest.fail(
            f"the embedded model's runtime (llama-cpp-python) died with {name}: it was built "
            "for another CPU. Rebuild it: rm -rf .venv ~/.cache/medsafe/llama-wheels && make "
            "test (scripts/llama-wheel.sh)."
        )
    assert probe.returncode == 0, probe.stderr[-2000:]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A fresh store path."""
    return tmp_path / "store.db"


@pytest.fixture
def mock_server() -> Iterator[MockOpenAIServer]:
    """A mock OpenAI-compatible server on 127.0.0.1 with no faults."""
    with ThreadedMockServer(MockConfig()) as server:
        yield server


def create_run(db: Path, spec: RunSpec, items: list[Item]) -> RunSpec:
    """Store a run with ``items``."""
    with Store(db) as store:
        return store.create_run(spec, items, {"test": True})
