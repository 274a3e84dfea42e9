"""Shared fixtures: items, a store with a run, and a loopback mock OpenAI server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from medsafe.schema import Item, ModelParams, RunSpec
from medsafe.store import Store
from medsafe.suites.prompting import mcq_messages
from medsafe.testing.mock_openai import MockConfig, MockOpenAIServer, ThreadedMockServer

SHARED_DATA = Path(
    os.environ.get("MEDSAFE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
"""Real third-party data for tests (../shared/data beside the repository; never copied in)."""


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
