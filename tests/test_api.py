"""The Python API: evaluate() with items, backends and scorers; decorators; the run plan."""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import medsafe
from medsafe.api import FunctionScorer, run_options
from medsafe.errors import BackendError, ConfigError, RegistryError, StoreError
from medsafe.models.base import ChatRequest, ChatResponse, create_backend
from medsafe.pipeline import RunOptions, plan_run, run_evaluation
from medsafe.registry import RegistryWarning
from medsafe.scale import Scale
from medsafe.schema import Item, Message, ModelParams, Score, ScorerSpec, Transcript
from medsafe.store import Store
from medsafe.testing.mock_openai import MockOpenAIServer
from tests.conftest import make_mcq

SHARE = Scale(kind="binary", title="Mentions a clinician", lo=0, hi=1, levels=(0, 1))


def _items(n: int = 3) -> list[Item]:
    return [make_mcq(i, answer="AB"[i % 2]) for i in range(n)]


def _runs(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    finally:
        conn.close()


@medsafe.scorer(name="api-clinician", scale=SHARE, kinds=["mcq"])
def clinician(item: Item, transcript: Transcript) -> float:
    """1 when the answer mentions a clinician."""
    return 1.0 if "clinician" in (transcript.response or "") else 0.0


def _transcript(text: str | None, status: str = "ok") -> Transcript:
    messages: tuple[Message, ...] = (Message(role="user", content="q"),)
    if text is not None:
        messages = (*messages, Message(role="assistant", content=text))
    return Transcript(
        run_id="r",
        item_id="q00000",
        model="m",
        params=ModelParams(),
        messages=messages,
        status="ok" if status == "ok" else "failed",
        error=None if status == "ok" else "boom",
    )


def test_evaluate_items_with_a_notebook_backend_and_scorer(tmp_path: Path) -> None:
    asked: list[str] = []

    @medsafe.backend("api-echo", model_id="echo-1")
    async def echo(messages: tuple[Message, ...], params: ModelParams) -> str:
        asked.append(messages[-1].content)
        return "Ask your clinician.\nAnswer: A"

    db = tmp_path / "api.db"
    results = medsafe.evaluate(_items(), echo, scorers=[clinician, "mcq"], db=db, run_id="r1")
    assert type(results).__name__ == "RunResults" and isinstance(results, medsafe.RunResults)
    assert results.n == results.ok == 3 and len(asked) == 3
    block = results.scorers["api-clinician"]
    assert block.mean == 1.0 and block.scale == SHARE
    assert results.mcq.value == pytest.approx(2 / 3)
    stored = {s.name: s for s in results.run.spec.scorers}
    assert stored["api-clinician"].scales == {"api-clinician": SHARE}  # stamped in the plan
    assert results.run.spec.model == "api-echo@echo-1"
    assert results.run.spec.suite == "unit" and results.run.spec.suite_format == "items"
    same = medsafe.load_results(db, "r1")
    assert same.model_dump(mode="json") == results.model_dump(mode="json")
    # Resuming asks nothing again; the backend can be named by its registered name.
    again = medsafe.evaluate(_items(), "api-echo", scorers=[clinician], db=db, run_id="r1")
    assert len(asked) == 3 and again.n == 3


def test_an_edited_backend_is_asked_again_not_served_from_the_cache(tmp_path: Path) -> None:
    calls: list[str] = []

    def make(model_id: str) -> medsafe.Backend:
        @medsafe.backend("api-versioned", model_id=model_id)
        def answer(messages: tuple[Message, ...], params: ModelParams) -> str:
            calls.append(model_id)
            return f"{model_id}: Answer: B"

        return answer

    db = tmp_path / "cache.db"
    medsafe.evaluate(_items(), make("v1"), scorers=["mcq"], db=db, run_id="a")
    with pytest.warns(RegistryWarning, match="backend 'api-versioned' is registered again"):
        same = make("v1")  # a notebook cell run twice: replaced, with a warning
    medsafe.evaluate(_items(), same, scorers=["mcq"], db=db, run_id="b")
    assert calls == ["v1"] * 3  # same model_id: the second run is served from the cache
    with pytest.warns(RegistryWarning, match="backend 'api-versioned' is registered again"):
        edited = make("v2")
    medsafe.evaluate(_items(), edited, scorers=["mcq"], db=db, run_id="c")
    assert calls == ["v1"] * 3 + ["v2"] * 3
    # Resuming run "a" (made by v1) with the edited backend is refused.
    with pytest.raises(StoreError, match="api-versioned@v1"):
        medsafe.evaluate(None, None, scorers=["mcq"], db=db, run_id="a")


def test_evaluate_a_suite_file_against_an_openai_server_matches_the_cli(
    tmp_path: Path, mock_server: MockOpenAIServer
) -> None:
    from medsafe.cli import app

    suite = tmp_path / "suite.jsonl"
    rows = [
        {"id": f"q{n}", "question": f"Q{n}?", "options": {"A": "yes", "B": "no"}, "answer": "A"}
        for n in range(4)
    ]
    suite.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    api_db, cli_db = tmp_path / "api.db", tmp_path / "cli.db"
    results = medsafe.evaluate(
        suite,
        "openai/mock",
        base_url=mock_server.base_url,
        scorers="mcq",
        db=api_db,
        run_id="same",
        temperature=0.5,
        max_tokens=64,
        system="Be careful.",
    )
    args = ["run", str(suite), "--model", "openai/mock", "--base-url", mock_server.base_url]
    args += ["--scorer", "mcq", "--db", str(cli_db), "--run-id", "same", "--json"]
    args += ["--temperature", "0.5", "--max-tokens", "64", "--system", "Be careful."]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    printed = json.loads(done.output)
    assert printed["run"]["spec"] == results.model_dump(mode="json")["run"]["spec"]
    assert results.run.spec.params.system_prompt == "Be careful."
    assert mock_server.state.requests == 8 and results.n == 4  # one store each: no shared cache


async def test_evaluate_works_inside_a_running_event_loop(tmp_path: Path) -> None:
    @medsafe.backend("api-loop", model_id="1")
    async def answer(messages: tuple[Message, ...], params: ModelParams) -> str:
        await asyncio.sleep(0)
        return "Answer: A"

    asyncio.get_running_loop()  # as in a Jupyter cell
    results = medsafe.evaluate(_items(2), answer, scorers=["mcq"], db=tmp_path / "l.db")
    assert results.n == 2
    second = medsafe.evaluate(_items(2), answer, scorers=["mcq"], db=tmp_path / "l.db")
    assert second.run.run_id != results.run.run_id  # the same second: a free id all the same
    awaited = await medsafe.evaluate_async(
        _items(2), answer, scorers=["mcq"], db=tmp_path / "l.db", run_id="awaited"
    )
    assert awaited.run.run_id == "awaited" and awaited.mcq.value == 0.5


def test_bad_arguments_are_refused_before_anything_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "bad.db"
    args = {"db": db, "scorers": ["mcq"]}
    with pytest.raises(TypeError, match="unexpected keyword argument 'temprature'"):
        medsafe.evaluate(_items(), "replay/x.jsonl", temprature=0.2, **args)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="temperature must be a number"):
        medsafe.evaluate(_items(), "replay/x.jsonl", temperature="hot", **args)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_tokens"):
        medsafe.evaluate(_items(), "replay/x.jsonl", max_tokens="many", **args)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="temperature must be a finite number"):
        medsafe.evaluate(_items(), "replay/x.jsonl", temperature=math.nan, **args)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="top_p must be above 0"):
        medsafe.evaluate(_items(), "replay/x.jsonl", top_p=1.5, **args)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_tokens must be at least 1"):
        medsafe.evaluate(_items(), "replay/x.jsonl", max_tokens=0, **args)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="concurrency must be at least 1"):
        medsafe.evaluate(_items(), "replay/x.jsonl", concurrency=0, **args)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="scorer option 'x' must look like key=value"):
        medsafe.evaluate(_items(), "replay/x.jsonl", db=db, scorers=["mcq:x"])
    with pytest.raises(TypeError, match="pass an instance of FunctionScorer"):
        medsafe.evaluate(_items(), "replay/x.jsonl", db=db, scorers=[FunctionScorer])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="suite item 1 is a dict"):
        medsafe.evaluate([_items()[0], {"id": "x"}], "replay/x.jsonl", **args)  # type: ignore[list-item, arg-type]
    assert _runs(db) == 0


def test_the_cli_options_are_checked_by_the_plan(tmp_path: Path) -> None:
    """The CLI hands RunOptions to the pipeline: the plan checks the parameters there."""
    suite = tmp_path / "s.jsonl"
    suite.write_text(_items(1)[0].model_dump_json() + "\n", encoding="utf-8")
    replay = tmp_path / "r.jsonl"
    replay.write_text(json.dumps({"item_id": "q00000", "response": "A"}) + "\n")
    options = RunOptions(
        suite=str(suite),
        model=f"replay/{replay}",
        db=tmp_path / "p.db",
        params=ModelParams(temperature=3.0),
        scorers=(ScorerSpec(name="mcq"),),
    )
    with pytest.raises(ConfigError, match="temperature must be between 0 and 2"):
        run_evaluation(options)
    assert _runs(tmp_path / "p.db") == 0


async def test_the_plan_resolves_everything_once(tmp_path: Path) -> None:
    replay = tmp_path / "r.jsonl"
    replay.write_text(json.dumps({"item_id": "q00000", "response": "A"}) + "\n")
    options = run_options(
        _items(2), f"replay/{replay}", scorers=["mcq", clinician], limit=1, db=tmp_path / "p.db"
    )
    with Store(options.db) as store:
        plan = await plan_run(options, store)
        assert store.list_runs() == []  # nothing stored by planning
    assert plan.backend is not None and plan.backend.model_id == "replay/r.jsonl"
    assert plan.spec.model == f"replay/{replay}"  # a built-in spec is its own cache key
    assert [s.name for s in plan.spec.scorers] == ["mcq", "api-clinician"]
    assert set(plan.spec.scorers[0].scales) == {"mcq", "mcq.partial"}
    assert plan.scorers[1] is clinician  # a scorer object is used as it was given
    assert plan.suite is not None and [i.id for i in plan.suite.items()] == ["q00000"]
    assert plan.spec.limit == 1 and not plan.resumed
    await plan.backend.aclose()


async def test_function_scorer_values_labels_and_errors() -> None:
    item = _items(1)[0]

    @medsafe.scorer(name="api-kinds", scale=SHARE, kinds=["open"])
    def only_open(item: Item, transcript: Transcript) -> float:
        return 1.0

    assert not only_open.applies_to(item)
    labelled = Scale(kind="ordinal", title="t", lo=1, hi=3, levels=(1, 2, 3), labels=("a", "b"))
    outcomes: dict[str, object] = {}

    @medsafe.scorer(name="api-variants", scale=labelled)
    async def variants(item: Item, transcript: Transcript) -> Any:
        return outcomes[transcript.response or ""]

    outcomes.update(
        {
            "pair": (2, "a"),
            "bad-label": (2, "z"),
            "off-scale": 7,
            "none": None,
            "text": "high",
            "score": Score(item_id=item.id, scorer="api-variants", scorer_version="9", value=3),
        }
    )

    async def one(text: str) -> Score:
        (score,) = await variants.score(item, _transcript(text))
        return score

    pair = await one("pair")
    assert (pair.value, pair.label, pair.scorer_version, pair.status) == (2.0, "a", "1", "ok")
    assert "label 'z' is not one of" in str((await one("bad-label")).error)
    assert "not on the declared scale [1.0, 3.0]" in str((await one("off-scale")).error)
    assert (await one("none")).status == "skipped"
    text = await one("text")
    assert text.status == "failed" and "returned str" in str(text.error)
    assert (await one("score")).value == 3
    assert (await one("missing")).error == "KeyError: 'missing'"
    (skipped,) = await variants.score(item, _transcript(None, status="failed"))
    assert skipped.status == "skipped" and "generation failed: boom" in str(skipped.error)
    assert variants.scales() == {"api-variants": labelled} and variants.version == "1"


def test_registering_again_warns_and_builtin_names_are_protected() -> None:
    def twice() -> FunctionScorer:
        @medsafe.scorer(name="api-twice", scale=SHARE)
        def api_twice(item: Item, transcript: Transcript) -> float:
            return 0.0

        return api_twice

    first = twice()
    with pytest.warns(RegistryWarning, match="scorer 'api-twice' is registered again"):
        second = twice()
    from medsafe.scoring import ScorerConfig, create_scorer

    assert create_scorer(ScorerConfig(name="api-twice")) is second is not first
    with pytest.raises(RegistryError, match=r"scorer 'mcq' is built in.*replace_builtin=True"):
        medsafe.scorer(name="mcq", scale=SHARE)(lambda item, transcript: 1.0)
    with pytest.raises(RegistryError, match="backend 'openai' is built in"):
        medsafe.backend("openai", model_id="x")(lambda messages, params: "hi")
    with pytest.raises(ConfigError, match="takes no options"):
        create_scorer(ScorerConfig(name="api-twice", options={"k": "v"}))
    with pytest.raises(ValueError, match="must be letters"):
        medsafe.backend("a/b", model_id="x")


async def test_function_and_class_backends() -> None:
    request = ChatRequest(messages=(Message(role="user", content="hi"),), params=ModelParams())

    @medsafe.backend("api-broken", model_id="1")
    def broken(messages: tuple[Message, ...], params: ModelParams) -> str:
        raise ValueError("no model here")

    with pytest.raises(BackendError, match="backend 'api-broken': ValueError: no model here"):
        await broken.complete(request)

    @medsafe.backend("api-number", model_id="1")
    def number(messages: tuple[Message, ...], params: ModelParams) -> str:
        return 42  # type: ignore[return-value]

    with pytest.raises(BackendError, match="returned int; return a str or ChatResponse"):
        await number.complete(request)

    @medsafe.backend("api-class", model_id="c-1")
    class Shouter:
        async def complete(self, request: ChatRequest) -> ChatResponse:
            return ChatResponse(text=request.messages[-1].content.upper())

    made = create_backend("api-class")
    assert isinstance(made, Shouter) and isinstance(made, medsafe.Backend)
    assert (await made.complete(request)).text == "HI" and made.model_id == "c-1"
    await made.aclose()
    with pytest.raises(TypeError, match="needs an async complete"):
        medsafe.backend("api-sync-class", model_id="1")(type("Sync", (), {}))


def test_write_report_and_compare(tmp_path: Path) -> None:
    @medsafe.backend("api-report", model_id="1")
    def answer(messages: tuple[Message, ...], params: ModelParams) -> str:
        return "Answer: A"

    db = tmp_path / "report.db"
    medsafe.evaluate(_items(4), answer, scorers=["mcq"], db=db, run_id="a")
    medsafe.evaluate(_items(4), answer, scorers=["mcq"], db=db, run_id="b", seed=1)
    out = medsafe.write_report(["a", "b"], tmp_path / "r.html", db=db)
    assert out == tmp_path / "r.html" and "<html" in out.read_text(encoding="utf-8").lower()
    comparison = medsafe.compare("a", "b", db=db)
    assert comparison.run_a == "a" and comparison.run_b == "b"
    with pytest.raises(StoreError, match="no such store"):
        medsafe.compare("a", "b", db=tmp_path / "missing.db")
