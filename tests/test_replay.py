"""``replay/PATH``: prompt matching (normalised or exact), duplicates, missing answers."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest

from medsafe.errors import ConfigError, SuiteError
from medsafe.models.base import BackendOptions, ChatRequest, create_backend
from medsafe.models.replay import ReplayBackend, normalise_prompt
from medsafe.models.retry import RetryPolicy, call_with_retries
from medsafe.schema import Item, ModelParams
from tests.conftest import make_mcq


def _jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _ask(backend: ReplayBackend, item: Item) -> str:
    request = ChatRequest(messages=item.messages, params=ModelParams(), item=item)
    return asyncio.run(backend.complete(request)).text


def test_normalise_prompt() -> None:
    assert normalise_prompt("  a\r\nb\rc \n\t") == "a\nb\nc"
    assert normalise_prompt("e\u0301") == "\u00e9"  # NFC


def test_prompts_differing_by_whitespace_and_line_endings_match(tmp_path: Path) -> None:
    items = [make_mcq(i) for i in range(3)]
    rows = [
        {"prompt": items[0].last_user_text() + "  \n", "response": "Answer: A"},
        {"prompt": items[1].last_user_text().replace("\n", "\r\n"), "response": "Answer: B"},
        {"prompt": "\n" + items[2].last_user_text(), "response": "Answer: C"},
    ]
    backend = ReplayBackend(str(_jsonl(tmp_path / "a.jsonl", rows)), BackendOptions())
    assert [_ask(backend, item) for item in items] == ["Answer: A", "Answer: B", "Answer: C"]
    assert backend.unanswered(items) == []
    assert backend.preflight(items) is None


def test_nfc_equivalent_prompts_match(tmp_path: Path) -> None:
    item = make_mcq(0).model_copy(
        update={"messages": (make_mcq(0).messages[0].model_copy(update={"content": "caf\u00e9"}),)}
    )
    path = _jsonl(tmp_path / "a.jsonl", [{"prompt": "cafe\u0301", "response": "Answer: D"}])
    assert _ask(ReplayBackend(str(path), BackendOptions()), item) == "Answer: D"


@pytest.mark.parametrize("how", ["spec", "option"])
def test_exact_mode_needs_identical_text(tmp_path: Path, how: str) -> None:
    item = make_mcq(0)
    path = _jsonl(tmp_path / "a.jsonl", [{"prompt": item.last_user_text() + " ", "response": "A"}])
    if how == "spec":
        backend = create_backend(f"replay/{path}?match=exact")
    else:
        backend = create_backend(f"replay/{path}", BackendOptions(extra={"match": "exact"}))
    assert isinstance(backend, ReplayBackend) and backend.match == "exact"
    assert backend.model_id == "replay/a.jsonl"
    assert backend.unanswered([item]) == [item.id]


def test_bad_match_option_is_a_config_error(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "a.jsonl", [{"item_id": "x", "response": "A"}])
    with pytest.raises(ConfigError, match="match must be 'exact' or 'normalised'"):
        create_backend(f"replay/{path}?match=fuzzy")
    with pytest.raises(ConfigError, match="unknown option 'mode=exact'"):
        create_backend(f"replay/{path}?mode=exact")


def test_duplicate_prompts_with_equal_responses_pair_with_every_item(tmp_path: Path) -> None:
    first, second = make_mcq(0), make_mcq(0).model_copy(update={"id": "other"})
    rows = [{"prompt": first.last_user_text(), "response": "Answer: B"}] * 2
    backend = ReplayBackend(str(_jsonl(tmp_path / "a.jsonl", rows)), BackendOptions())
    assert _ask(backend, first) == _ask(backend, second) == "Answer: B"


def test_duplicate_prompts_with_different_responses_are_refused_with_lines(
    tmp_path: Path,
) -> None:
    prompt = make_mcq(0).last_user_text()
    rows = [
        {"item_id": "z", "response": "x"},
        {"prompt": prompt, "response": "Answer: B"},
        {"prompt": prompt + "\n", "response": "Answer: C"},
    ]
    path = _jsonl(tmp_path / "a.jsonl", rows)
    with pytest.raises(SuiteError, match="same prompt as line 2") as err:
        ReplayBackend(str(path), BackendOptions())
    assert "a.jsonl:3" in str(err.value) and "prompt" in str(err.value)
    # in exact mode the two prompts differ, so both rows are usable
    assert ReplayBackend(f"{path}?match=exact", BackendOptions()).match == "exact"


def test_missing_answers_are_announced_once_and_fail_without_retry(tmp_path: Path) -> None:
    items = [make_mcq(i) for i in range(8)]
    path = _jsonl(tmp_path / "a.jsonl", [{"item_id": items[0].id, "response": "Answer: A"}])
    backend = ReplayBackend(str(path), BackendOptions())
    assert backend.unanswered(items) == [item.id for item in items[1:]]
    notice = backend.preflight(items)
    assert notice is not None
    assert notice.startswith("7 of 8 items have no replayed answer")
    assert "'q00001', 'q00002', 'q00003', 'q00004', 'q00005', ..." in notice
    assert "q00006" not in notice

    item = items[1]
    request = ChatRequest(messages=item.messages, params=ModelParams(), item=item)
    record = asyncio.run(
        call_with_retries(
            backend, request, "h", timeout_s=5, policy=RetryPolicy(), rng=random.Random(0)
        )
    )
    assert record.status == "failed" and record.attempts == 1
    assert record.error is not None and record.error.startswith("no replayed answer")


def test_replay_csv_keeps_quoted_newlines_and_rejects_an_unclosed_quote(tmp_path: Path) -> None:
    item = make_mcq(0)
    path = tmp_path / "a.csv"
    quoted = item.last_user_text().replace('"', '""')
    path.write_text(f'prompt,response\n"{quoted}",Answer: C\n', encoding="utf-8")
    assert _ask(ReplayBackend(str(path), BackendOptions()), item) == "Answer: C"
    path.write_text('prompt,response\n"open,Answer: C\nq,Answer: D\n', encoding="utf-8")
    with pytest.raises(SuiteError, match="unclosed quote") as err:
        ReplayBackend(str(path), BackendOptions())
    assert "a.csv:2" in str(err.value)


def test_a_run_says_once_which_items_have_no_replayed_answer(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from medsafe.cli import app

    items = [make_mcq(i) for i in range(3)]
    suite = tmp_path / "suite.jsonl"
    suite.write_text(
        "".join(i.model_dump_json(exclude={"question"}) + "\n" for i in items), "utf-8"
    )
    replies = _jsonl(tmp_path / "r.jsonl", [{"item_id": items[0].id, "response": "Answer: A"}])
    argv = ["run", str(suite), "--model", f"replay/{replies}", "--db", str(tmp_path / "db"),
            "--run-id", "r", "--scorer", "mcq", "--no-progress"]  # fmt: skip
    out = CliRunner().invoke(app, argv)
    assert out.exit_code == 0, out.output
    assert out.stderr.count("have no replayed answer") == 1
    assert "2 of 3 items" in out.stderr and repr(items[1].id) in out.stderr
    from medsafe.results import load_results

    results = load_results(tmp_path / "db", "r")
    assert results.failed == 2 and results.ok == 1
