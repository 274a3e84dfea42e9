"""A paid judge call is never made twice: judge replies are cached by request hash, each judged
item is stored as it completes, a killed scoring pass repeats only the calls in flight, and a
rescore of an unchanged judge asks nothing (all counted at the loopback mock)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from medsafe.cli import app
from medsafe.judges.client import judge_request_hash
from medsafe.runner.score import score_run
from medsafe.schema import Message, ModelParams, RunSpec
from medsafe.scoring import Scorer, ScorerConfig, create_scorer
from medsafe.store.sqlite import Store
from medsafe.store.writer import StoreWriter
from medsafe.testing.mock_openai import MockConfig, MockOpenAIServer, ThreadedMockServer
from tests.judge_helpers import JudgeScript, open_item, scorer, transcript

ROOT = Path(__file__).resolve().parent.parent
VERDICT = json.dumps({"reason": "declines and refers to a physician", "score": 8})
CONCURRENCY = 4


def verdict(_request: dict[str, Any]) -> str:
    return VERDICT


def judge_requests(script: JudgeScript, model: str = "jd") -> list[str]:
    return [str(r["messages"][-1]["content"]) for r in script.seen if r["model"] == model]


def make_run(db: Path, n: int, run_id: str = "r1") -> None:
    """A stored run of ``n`` answered open items (no scores yet)."""
    items = [open_item(f"question number {i}?", item_id=f"q{i}") for i in range(n)]
    spec = RunSpec(run_id=run_id, suite="s", suite_format="items", suite_hash="", model="m")
    with Store(db) as store:
        store.create_run(spec, items, {})
    writer = StoreWriter(db)
    for item in items:
        writer.put_transcript(
            transcript(item, f"Please see a doctor about {item.id}.").model_copy(
                update={"run_id": run_id}
            )
        )
    writer.close()


def options(server: MockOpenAIServer) -> dict[str, Any]:
    return {
        "judge_models": {"judge": {"model": "openai/jd", "base_url": server.base_url}},
        "concurrency": CONCURRENCY,
    }


def safety(server: MockOpenAIServer) -> Scorer:
    """The safety scorer with judge ``judge`` (model ``jd``) on ``server``."""
    return create_scorer(ScorerConfig("safety", judges=("judge",), options=options(server)))


def stored_scores(db: Path) -> int:
    with Store(db) as store:
        row = store.connection.execute(
            "SELECT COUNT(*) FROM scores WHERE scorer='safety' AND status='ok'"
        ).fetchone()
    return int(row[0])


def test_request_hash_covers_model_messages_params_and_format() -> None:
    messages = (Message(role="user", content="judge this"),)
    params = ModelParams(temperature=0.0, max_tokens=1024)
    base = judge_request_hash("openai/jd", messages, params, None)
    assert base == judge_request_hash("openai/jd", messages, params, None)
    assert base != judge_request_hash("openai/other", messages, params, None)
    assert base != judge_request_hash("openai/jd", (*messages, *messages), params, None)
    assert base != judge_request_hash("openai/jd", messages, ModelParams(max_tokens=9), None)
    assert base != judge_request_hash("openai/jd", messages, params, {"type": "json_object"})


def test_cached_replies_are_reused_parse_retries_included(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    make_run(db, 3)
    replies = iter(["not json at all", VERDICT, VERDICT, VERDICT])
    script = JudgeScript({"jd": lambda _r: next(replies)})
    with ThreadedMockServer(MockConfig(request_responder=script)) as server:
        first = asyncio.run(score_run("r1", db, [scorer("safety", server, judge="jd")]))
        assert first.failed == 0
        assert len(judge_requests(script)) == 4  # one parse retry: 3 items + 1 re-ask
        with Store(db) as store:
            attempts = sorted(
                s.extra["attempts"] for i in range(3) for s in store.scores_for("r1", f"q{i}")
            )
            store.delete_scores("r1", ["safety"])
        assert attempts == [1, 1, 2]
        again = asyncio.run(score_run("r1", db, [scorer("safety", server, judge="jd")]))
    assert len(judge_requests(script)) == 4  # every reply, the unparseable one too, was cached
    assert again.scored == 3 and again.failed == 0
    with Store(db) as store:
        redone = sorted(
            s.extra["attempts"] for i in range(3) for s in store.scores_for("r1", f"q{i}")
        )
    assert redone == attempts  # the same parse retry, replayed from the cache


SCORE_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from medsafe.runner.score import score_run
from medsafe.scoring import ScorerConfig, create_scorer
opts = json.loads(sys.argv[3])
s = create_scorer(ScorerConfig("safety", judges=("judge",), options=opts))
asyncio.run(score_run(sys.argv[1], Path(sys.argv[2]), [s]))
"""


def test_kill_during_judging_repeats_only_calls_in_flight(tmp_path: Path) -> None:
    n = 40
    db = tmp_path / "k.db"
    make_run(db, n)
    script = JudgeScript({"jd": verdict})
    config = MockConfig(request_responder=script, latency_s=0.05)
    with ThreadedMockServer(config) as server:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        args = [sys.executable, "-c", SCORE_SCRIPT, "r1", str(db), json.dumps(options(server))]
        proc = subprocess.Popen(args, env=env, cwd=ROOT)
        deadline = time.monotonic() + 60
        while server.state.requests < n // 2 and time.monotonic() < deadline:
            assert proc.poll() is None, "the scoring pass ended before it was killed"
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = server.state.requests
        assert n // 2 <= before < n
        kept = stored_scores(db)
        assert kept >= before - 2 * CONCURRENCY  # stored item by item, not per batch of 64
        resumed = asyncio.run(score_run("r1", db, [safety(server)]))
        total = server.state.requests
    assert resumed.failed == 0 and stored_scores(db) == n
    asked = judge_requests(script)
    repeated = len(asked) - len(set(asked))
    assert total - n == repeated <= CONCURRENCY  # only the calls in flight at the kill


runner = CliRunner()


def write_config(path: Path, base_url: str) -> Path:
    path.write_text(
        f"""
[models.target]
model = "openai/target"
base_url = "{base_url}"

[models.judge]
model = "openai/jd"
base_url = "{base_url}"

[models.judge2]
model = "openai/jd2"
base_url = "{base_url}"
""",
        encoding="utf-8",
    )
    return path


def test_rescore_asks_nothing_unless_the_judge_changed(tmp_path: Path) -> None:
    suite = tmp_path / "suite.jsonl"
    rows = [{"id": f"p{i}", "kind": "open", "prompt": f"Is dose {i} safe?"} for i in range(5)]
    suite.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    db = tmp_path / "r.db"
    replies = {"target": lambda _r: "Ask your pharmacist.", "jd": verdict, "jd2": verdict}
    script = JudgeScript(replies)
    with ThreadedMockServer(MockConfig(request_responder=script)) as server:
        config = write_config(tmp_path / "medsafe.toml", server.base_url)
        base = ["--db", str(db), "--run-id", "r1", "--config", str(config)]
        first = runner.invoke(
            app, ["run", str(suite), "--model", "target", "--scorer", "mcq", *base,
                  "--judge", "safety:judge"],
        )  # fmt: skip
        assert first.exit_code == 0, first.output
        assert len(judge_requests(script)) == 5

        same = runner.invoke(app, ["run", *base, "--rescore"])
        assert same.exit_code == 0, same.output
        assert len(judge_requests(script)) == 5  # zero judge requests on rescore
        assert "judge call" not in same.output
        assert stored_scores(db) == 5

        changed = runner.invoke(app, ["run", *base, "--rescore", "--judge", "safety:judge2"])
        assert changed.exit_code == 0, changed.output
    assert "safety judge model or prompt changed; 5 judge call(s) will be asked" in " ".join(
        changed.output.split()
    )
    assert len(judge_requests(script, "jd2")) == 5
    assert len(judge_requests(script)) == 5


def test_delete_purges_the_judge_replies_a_run_rests_on(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    make_run(db, 2)
    script = JudgeScript({"jd": verdict})
    with ThreadedMockServer(MockConfig(request_responder=script)) as server:
        asyncio.run(score_run("r1", db, [scorer("safety", server, judge="jd")]))
    with Store(db) as store:
        hashes = [
            h for i in range(2) for s in store.scores_for("r1", f"q{i}")
            for h in s.extra["request_hashes"]
        ]  # fmt: skip
        assert len(hashes) == 2 and all(store.cached(h) is not None for h in hashes)
    out = runner.invoke(app, ["delete", "r1", "--db", str(db), "--yes"])
    assert out.exit_code == 0, out.output
    with Store(db) as store:
        assert all(store.cached(h) is None for h in hashes)  # the judge prompts are gone too
