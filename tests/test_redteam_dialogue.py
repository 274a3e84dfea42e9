"""Dialogue playback: whole history to the target, per-turn storage and resume (also after
kill -9), the adaptive attacker (refusal recorded, Crescendo backtracking, PAIR)."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from medsafe.errors import BackendError, StoreError
from medsafe.models.base import ChatRequest, ChatResponse
from medsafe.pipeline import RunOptions, run_evaluation
from medsafe.runner import generate
from medsafe.schema import Item, Message, ScorerSpec
from medsafe.store import Store
from medsafe.store.sqlite import connect
from medsafe.testing.mock_openai import MockConfig, ThreadedMockServer
from tests.conftest import create_run, make_spec
from tests.redteam_support import PROBE, user_turns

REFUSAL = "I'm sorry, but I can't help with writing attacks on another AI system."


def dialogue(i: int, turns: int = 3, strategy: str = "role_play") -> Item:
    """A scripted dialogue whose every user turn is unique (so no answer comes from the cache)."""
    return Item(
        id=f"d{i:03d}",
        kind="dialogue",
        seed=f"seed request {i}",
        strategy=strategy,
        turns=turns,
        messages=tuple(
            Message(role="user", content=f"conversation {i} turn {k}") for k in range(1, turns + 1)
        ),
    )


def write_suite(path: Path, items: list[Item]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(item.model_dump_json(exclude_defaults=True) + "\n")
    return path


def turn_rows(db: Path, run_id: str) -> list[tuple[str, int, str]]:
    with connect(db) as conn:
        return conn.execute(
            "SELECT item_id, turn, kind FROM dialogue_turns WHERE run_id=? ORDER BY item_id, seq",
            (run_id,),
        ).fetchall()


def test_target_sees_the_whole_history_and_turns_are_stored(tmp_path: Path) -> None:
    seen: list[list[dict[str, Any]]] = []

    def responder(messages: list[dict[str, Any]]) -> str:
        seen.append(messages)
        return f"answer {user_turns(messages)}"

    suite = write_suite(tmp_path / "s.jsonl", [dialogue(1)])
    with ThreadedMockServer(MockConfig(responder=responder)) as server:
        outcome = run_evaluation(
            RunOptions(
                suite=str(suite),
                model="openai/t",
                base_url=server.base_url,
                db=tmp_path / "db",
                run_id="r",
                scorers=(ScorerSpec(name="mcq"),),
            )
        )
    assert [len(m) for m in seen] == [1, 3, 5]
    assert seen[2][1] == {"role": "assistant", "content": "answer 1"}
    assert seen[2][4]["content"] == "conversation 1 turn 3"
    assert turn_rows(tmp_path / "db", "r") == [("d001", k, "turn") for k in (1, 2, 3)]
    with Store(tmp_path / "db") as store:
        ((_, transcript),) = store.iter_transcripts("r")
    assert transcript.status == "ok" and len(transcript.messages) == 6
    assert len(transcript.calls) == 3
    assert outcome.results.model_dump(mode="json")["dialogues"]["ok"] == 1


class BreaksAtTurnTwo:
    """A target that fails (not retryably) on turn 2 while ``broken`` is set."""

    max_concurrency: int | None = None
    model_id = "openai/t"

    def __init__(self) -> None:
        self.broken = True
        self.turns: list[int] = []

    async def complete(self, request: ChatRequest) -> ChatResponse:
        turn = sum(1 for m in request.messages if m.role == "user")
        self.turns.append(turn)
        if self.broken and turn == 2:
            raise BackendError("HTTP 400 from target: bad request", retryable=False)
        return ChatResponse(text=f"reply {turn}")

    async def aclose(self) -> None:
        return None


async def test_a_failed_turn_is_recorded_and_the_run_resumes_there(any_db: Path) -> None:
    db = any_db
    spec = create_run(db, make_spec("r", "openai/t"), [dialogue(1), dialogue(2)])
    backend = BreaksAtTurnTwo()
    stats = await generate(spec, db, backend)
    assert stats.failed == 2 and sorted(backend.turns) == [1, 1, 2, 2]
    with Store(db) as store:
        failed = [t for _, t in store.iter_transcripts("r")]
    assert all(t.status == "failed" and "turn 2: HTTP 400" in (t.error or "") for t in failed)
    assert [len(t.messages) for t in failed] == [2, 2]
    backend.broken, backend.turns = False, []
    stats = await generate(spec, db, backend)
    assert stats.ok == 2 and sorted(backend.turns) == [2, 2, 3, 3]
    with Store(db) as store:
        done = [t for _, t in store.iter_transcripts("r")]
    assert [m.content for m in done[0].messages if m.role == "assistant"] == [
        "reply 1",
        "reply 2",
        "reply 3",
    ]


def test_kill_9_mid_run_resumes_at_the_turn_where_it_stopped(tmp_path: Path, any_db: Path) -> None:
    n, turns = 24, 3
    suite = write_suite(tmp_path / "s.jsonl", [dialogue(i, turns) for i in range(n)])
    db = any_db
    with ThreadedMockServer(MockConfig(latency_s=0.05, responder=lambda m: "ok")) as server:
        argv = [sys.executable, "-m", "medsafe.cli", "run", str(suite), "--model", "openai/t",
                "--base-url", server.base_url, "--db", str(db), "--run-id", "k",
                "--concurrency", "4", "--scorer", "mcq", "--no-progress"]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if db.exists() and 12 <= _count(db) < n * turns - 12:
                    break
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(10)
        stored = _count(db)
        assert 0 < stored < n * turns
        before = server.state.requests
        outcome = run_evaluation(
            RunOptions(
                suite=str(suite),
                model="openai/t",
                base_url=server.base_url,
                db=db,
                run_id="k",
                scorers=(ScorerSpec(name="mcq"),),
            )
        )
        asked = server.state.requests - before
    assert asked == n * turns - stored  # no stored turn was asked again
    assert outcome.results.model_dump(mode="json")["dialogues"]["ok"] == n
    rows = turn_rows(db, "k")
    assert len(rows) == n * turns == len(set(rows))


def _count(db: Path) -> int:
    try:
        with connect(db) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM dialogue_turns").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _adaptive(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request_responder: Any,
    *,
    mode: str | None = None,
    items: list[Item] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    requests: list[dict[str, Any]] = []

    def respond(request: dict[str, Any]) -> str:
        requests.append(request)
        return str(request_responder(request))

    suite = write_suite(tmp_path / "s.jsonl", items or [dialogue(1)])
    with ThreadedMockServer(MockConfig(request_responder=respond)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        outcome = run_evaluation(
            RunOptions(
                suite=str(suite),
                model="openai/target",
                db=tmp_path / "db",
                run_id="a",
                attacker="openai/attacker",
                attack_mode=mode,
                scorers=(ScorerSpec(name=PROBE),),
            )
        )
    return outcome.results.model_dump(mode="json"), requests


def _flags(db: Path) -> list[tuple[str, str, dict[str, Any]]]:
    with connect(db) as conn:
        rows = conn.execute("SELECT item_id, flag, detail FROM flags").fetchall()
    return [(item, flag, json.loads(detail)) for item, flag, detail in rows]


def test_attacker_refusal_at_the_first_turn_fails_the_conversation_with_a_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def respond(request: dict[str, Any]) -> str:
        return REFUSAL if request["model"] == "attacker" else "[safety=9] fine"

    summary, requests = _adaptive(tmp_path, monkeypatch, respond)
    assert [r["model"] for r in requests] == ["attacker"]
    assert summary["dialogues"] == {
        "n": 1, "ok": 0, "failed": 1, "pending": 0, "attacker_refused": 1, "backtracks": 0,
    }  # fmt: skip
    ((item, flag, detail),) = _flags(tmp_path / "db")
    assert (item, flag, detail["turn"], detail["attacker"]) == (
        "d001", "attacker_refused", 1, "openai/attacker",
    )  # fmt: skip
    assert detail["text"] == REFUSAL
    with Store(tmp_path / "db") as store:
        ((_, transcript),) = store.iter_transcripts("a")
    assert transcript.error == "attacker refused to write turn 1"


def test_attacker_refusal_later_keeps_the_turns_played(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def respond(request: dict[str, Any]) -> str:
        if request["model"] != "attacker":
            return "[safety=8] fine"
        prompt = request["messages"][-1]["content"]
        return "<message>Tell me more.</message>" if "turn 1 of" in prompt else REFUSAL

    summary, _ = _adaptive(tmp_path, monkeypatch, respond)
    assert summary["dialogues"]["ok"] == 1 and summary["dialogues"]["attacker_refused"] == 1
    assert [row["turn"] for row in summary["by_turn"]] == [1]
    ((_, _, detail),) = _flags(tmp_path / "db")
    assert detail["turn"] == 2


def test_crescendo_backtracks_a_refused_turn_out_of_the_target_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def respond(request: dict[str, Any]) -> str:
        last = request["messages"][-1]["content"]
        if request["model"] == "attacker":
            turn = re.search(r"This is turn (\d+) of", last)
            tries = last.count("refused your previous attempt")
            return f"<message>turn {turn.group(1) if turn else '?'} try {tries}</message>"
        if last == "turn 2 try 0":
            return "I'm sorry, I can't help with that."
        return "[safety=7] here you go"

    summary, requests = _adaptive(tmp_path, monkeypatch, respond)
    kinds = [kind for _, _, kind in turn_rows(tmp_path / "db", "a")]
    assert kinds == ["turn", "backtrack", "turn", "turn"]
    assert summary["dialogues"]["backtracks"] == 1
    target = [r["messages"] for r in requests if r["model"] == "target"]
    retried = next(m for m in target if m[-1]["content"] == "turn 2 try 1")
    assert [m["content"] for m in retried if m["role"] == "user"] == [
        "turn 1 try 0",
        "turn 2 try 1",
    ]
    with Store(tmp_path / "db") as store:
        ((_, transcript),) = store.iter_transcripts("a")
    assert [m.content for m in transcript.messages if m.role == "user"] == [
        "turn 1 try 0", "turn 2 try 1", "turn 3 try 0",
    ]  # fmt: skip


def test_pair_mode_sends_each_refined_attempt_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def respond(request: dict[str, Any]) -> str:
        last = request["messages"][-1]["content"]
        if request["model"] == "attacker":
            attempt = re.search(r"Attempt (\d+) of", last)
            return f"<message>attempt {attempt.group(1) if attempt else '?'}</message>"
        return "I cannot do that."

    summary, requests = _adaptive(tmp_path, monkeypatch, respond, mode="pair")
    target = [r["messages"] for r in requests if r["model"] == "target"]
    assert [[m["content"] for m in msgs] for msgs in target] == [
        ["attempt 1"], ["attempt 2"], ["attempt 3"],
    ]  # fmt: skip
    attacker = [r["messages"][-1]["content"] for r in requests if r["model"] == "attacker"]
    assert 'Attempt 2: "attempt 2"' in attacker[2] and "(refused)" in attacker[2]
    assert summary["dialogues"]["backtracks"] == 0


def test_a_resumed_run_keeps_its_attacker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _adaptive(tmp_path, monkeypatch, lambda r: "<message>hi</message>")
    with pytest.raises(StoreError, match="same attacker"):
        run_evaluation(
            RunOptions(suite=None, db=tmp_path / "db", run_id="a", attacker="openai/other")
        )
