"""medsafe generate against the loopback mock with a scripted generator and validator."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from medsafe.authoring.corpus import load_sections, sample_corpus
from medsafe.cli import app
from medsafe.store.sqlite import Store
from medsafe.suites import load_items
from medsafe.testing.mock_openai import MockConfig, MockOpenAIServer, ThreadedMockServer
from tests.test_authoring_support import PARAPHRASE_EN, respond

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def mock() -> Iterator[MockOpenAIServer]:
    with ThreadedMockServer(MockConfig(responder=respond)) as server:
        yield server


def _corpus(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "docs"
    shutil.copytree(sample_corpus(), folder)
    db = tmp_path / "m.db"
    assert invoke("corpus", "add", str(folder), "--corpus", "s", "--db", str(db))[0] == 0
    return folder, db


def _generate(db: Path, out: Path, mock: MockOpenAIServer, *extra: str) -> tuple[int, str]:
    return invoke(
        "generate",
        "--corpus",
        "s",
        "--model",
        "openai/gen",
        "--validator",
        "openai/val",
        "--base-url",
        mock.base_url,
        "--db",
        str(db),
        "-o",
        str(out),
        *extra,
    )


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_generate_release_rules_items_validation_dedup_and_rerun(
    tmp_path: Path, mock: MockOpenAIServer
) -> None:
    _, db = _corpus(tmp_path)
    code, output = _generate(db, tmp_path / "r1", mock)
    assert code == 0, output
    r1 = tmp_path / "r1"
    manifest = json.loads((r1 / "manifest.json").read_text(encoding="utf-8"))
    rules = _lines(r1 / "rules.jsonl")
    with Store(db) as store:
        sections = {s.ref: s for s in load_sections(store.connection, "s")}
    assert len(rules) == 43  # one per section and the planted second rule
    for rule in rules:  # every kept rule quotes its section exactly, offsets included
        section = sections[str(rule["section_ref"])]
        assert section.text[int(rule["start"]) : int(rule["end"])] == rule["quote"]
        assert rule["deontic"] in ("must", "must_not", "may") and rule["actors"]
    rejected = _lines(r1 / "rejected.jsonl")
    reasons = Counter(str(r["stage"]) for r in rejected)
    assert any("not found verbatim" in str(r["reason"]) for r in rejected)
    assert reasons["validate"] == 9  # 3 social-media sections x 3 kinds, with the reason
    assert all(
        "does not test the rule" in str(r["reason"]) for r in rejected if r["stage"] == "validate"
    )
    removed = _lines(r1 / "dedup.jsonl")
    assert {(r["stage"], str(r["id"]).rsplit("-", 1)[1]) for r in removed} == {
        ("minhash", "mcq"),
        ("minhash", "redteam"),
        ("embedding", "open"),
    }
    items = _lines(r1 / "suite.jsonl")
    assert PARAPHRASE_EN not in {
        str(i["messages"][-1]["content"]) for i in items if "messages" in i
    }
    assert sum("messages" in i for i in items) == 39
    counts = manifest["counts"]
    assert counts["kind"] == {"mcq": 39, "open": 39, "redteam": 39}
    assert counts["language"] == {"en": 39, "ja": 39, "zh": 39}
    assert set(manifest["prompts"]) == {"rules", "items", "validate"}
    assert manifest["generator"] == "openai/gen" and manifest["validator"] == "openai/val"
    mcq = next(i for i in items if i["kind"] == "mcq")
    assert mcq["answer"] == "AC" and mcq["metadata"]["rationale"]
    assert mcq["labels"] == [{"framework": "medes", "category": mcq["category"]}]
    loaded = load_items(str(r1 / "suite.jsonl"))  # a suite medsafe run reads as it is
    assert len(loaded) == 78 and {i.kind for i in loaded} == {"open", "mcq"}
    assert next(i for i in loaded if i.kind == "mcq").answer == "AC"
    seeds = _lines(r1 / "seeds.jsonl")
    assert {"id", "prompt", "category", "language"} <= set(seeds[0])

    asked = mock.state.requests
    code, output = _generate(db, tmp_path / "r2", mock)
    assert code == 0, output
    assert mock.state.requests == asked  # an unchanged corpus asks nothing again
    assert (
        json.loads((tmp_path / "r2" / "manifest.json").read_text())["release"]
        == manifest["release"]
    )


def test_changed_section_regenerates_only_its_items_and_diff_lists_them(
    tmp_path: Path, mock: MockOpenAIServer
) -> None:
    folder, db = _corpus(tmp_path)
    assert _generate(db, tmp_path / "old", mock)[0] == 0
    asked = mock.state.requests
    en = folder / "sample-en.md"
    en.write_text(
        en.read_text(encoding="utf-8").replace(
            "10. A physician must not prescribe a drug",
            "10. A physician must never prescribe a drug",
        ),
        encoding="utf-8",
    )
    code, output = invoke("corpus", "add", str(folder), "--corpus", "s", "--db", str(db))
    assert "1 changed" in output
    assert _generate(db, tmp_path / "new", mock)[0] == 0
    assert mock.state.requests - asked == 1 + 1 + 3  # its rules, its items, their validation
    code, output = invoke(
        "generate", "diff", str(tmp_path / "old"), str(tmp_path / "new"), "--json"
    )
    assert code == 0, output
    diff = json.loads(output)
    assert len(diff["changed_sections"]) == 1 and diff["changed_sections"][0].endswith("/10")
    old_items = _lines(tmp_path / "old" / "suite.jsonl") + _lines(tmp_path / "old" / "seeds.jsonl")
    expected = {
        str(i["id"])
        for i in old_items
        if i["metadata"]["section_ref"] == diff["changed_sections"][0]
    }
    assert set(diff["stale_items"]) == expected and len(expected) == 3
    code, output = invoke("generate", "diff", str(tmp_path / "old"), str(tmp_path / "new"))
    assert "1 changed" in output and "(source changed)" in output
    old_suite = str(tmp_path / "old" / "suite.jsonl")
    code, output = _generate(db, tmp_path / "vs", mock, "--against", old_suite,
                             "--paraphrase-threshold", "0")  # fmt: skip
    assert code == 0, output
    removed = _lines(tmp_path / "vs" / "dedup.jsonl")
    # every open and MCQ item is in the old release: 38 unchanged sections x 2, the planted
    # copy of an MCQ, and the changed section's two (one word differs: Jaccard >= 0.8); the
    # planted seed copy duplicates a new seed (seeds are not in a suite)
    vs_old = [r for r in removed if str(r["duplicate_of"]).startswith(old_suite + ":")]
    assert len(vs_old) == 79 and len(removed) == 80
    assert "near-duplicate of " + old_suite in str(removed[0]["reason"])


def test_kill_minus_9_then_rerun_repeats_no_answered_request(tmp_path: Path) -> None:
    _, db = _corpus(tmp_path)
    config = MockConfig(responder=respond, latency_s=0.04)
    with ThreadedMockServer(config) as server:
        cmd = [
            sys.executable,
            "-m",
            "medsafe.cli",
            "generate",
            "--corpus",
            "s",
            "--model",
            "openai/gen",
            "--base-url",
            server.base_url,
            "--db",
            str(db),
            "-o",
            str(tmp_path / "r"),
            "--concurrency",
            "2",
            "--paraphrase-threshold",
            "0",
        ]
        env = {**os.environ, "OPENAI_API_KEY": "k"}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(server.state.answered) < 46 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        first = list(server.state.answered)
        assert 46 <= len(first) < 42 + 43  # killed in the items stage
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        again = server.state.answered[len(first) :]
        repeated = Counter(first) & Counter(again)
        assert sum(repeated.values()) <= 2  # at most the calls in flight at the kill
        assert len(set(server.state.answered)) == 42 + 43
    assert (tmp_path / "r" / "manifest.json").exists()


def test_generate_needs_options_and_a_corpus(tmp_path: Path) -> None:
    code, output = invoke("generate", "--corpus", "x")
    assert code == 2 and "--model" in output
    code, output = invoke("generate", "--corpus", "x", "--model", "openai/g", "--base-url",
                          "http://127.0.0.1:9/v1", "-o", str(tmp_path / "o"),
                          "--db", str(tmp_path / "none.db"))  # fmt: skip
    assert code == 2 and "no such store" in output and not (tmp_path / "none.db").exists()
    assert (
        invoke("corpus", "add", "@sample", "--corpus", "s", "--db", str(tmp_path / "m.db"))[0] == 0
    )
    code, output = invoke(
        "generate",
        "--corpus",
        "x",
        "--model",
        "openai/g",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "-o",
        str(tmp_path / "o"),
        "--db",
        str(tmp_path / "m.db"),
    )
    assert code == 2 and "no corpus 'x'" in output
    code, output = invoke("generate", "diff", str(tmp_path), str(tmp_path))
    assert code == 2 and "manifest.json" in output
    (tmp_path / "file").write_text("x")
    code, output = invoke("generate", "--corpus", "x", "--model", "openai/g", "--base-url",
                          "http://127.0.0.1:9/v1", "-o", str(tmp_path / "file"))  # fmt: skip
    assert code == 2 and "is not a folder" in output
    _, db = _corpus(tmp_path)
    with ThreadedMockServer(MockConfig(responder=respond)) as server:
        assert _generate(db, tmp_path / "rel", server, "--paraphrase-threshold", "0")[0] == 0
    (tmp_path / "rel" / "seeds.jsonl").unlink()
    code, output = invoke("generate", "diff", str(tmp_path / "rel"), str(tmp_path / "rel"))
    assert code == 2 and "seeds.jsonl" in output and "a release needs it" in output


def test_dead_endpoint_exits_3_and_bad_options_exit_2(tmp_path: Path) -> None:
    _, db = _corpus(tmp_path)
    common = [
        "generate",
        "--corpus",
        "s",
        "--model",
        "openai/g",
        "--db",
        str(db),
        "-o",
        str(tmp_path / "o"),
    ]
    code, output = invoke(*common, "--base-url", "http://127.0.0.1:9/v1", "--retries", "0")
    assert code == 3 and "every rules request failed" in output
    assert not (tmp_path / "o" / "manifest.json").exists()
    code, output = invoke(*common, "--base-url", "http://127.0.0.1:9/v1", "--languages", "fr")
    assert code == 2 and "'fr'" in output
    code, output = invoke(*common, "--base-url", "http://127.0.0.1:9/v1", "--taxonomy", "nope")
    assert code == 2 and "nope" in output


def test_items_in_other_languages_are_checked_by_script(
    tmp_path: Path, mock: MockOpenAIServer
) -> None:
    _, db = _corpus(tmp_path)
    code, output = invoke(
        "generate",
        "--corpus",
        "s",
        "--model",
        "openai/gen",
        "--base-url",
        mock.base_url,
        "--db",
        str(db),
        "-o",
        str(tmp_path / "r"),
        "--languages",
        "en,ja",
        "--paraphrase-threshold",
        "0",
    )
    assert code == 0, output
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text(encoding="utf-8"))
    rejected = _lines(tmp_path / "r" / "rejected.jsonl")
    wrong = [r for r in rejected if "not en" in str(r["reason"])]
    # the scripted model keeps the quote's language: a zh quote in an "en" item is caught
    assert wrong and all(str(r["id"]).split("-")[2] == "en" for r in wrong)
    assert set(manifest["counts"]["language"]) == {"en", "ja"}


def test_validator_failures_routed_to_review_and_restored(
    tmp_path: Path, mock: MockOpenAIServer
) -> None:
    _, db = _corpus(tmp_path)
    out = tmp_path / "r"
    assert _generate(db, out, mock, "--on-fail", "review", "--paraphrase-threshold", "0")[0] == 0
    review = out / "validation.review.jsonl"
    lines = _lines(review)
    assert lines[0]["format"] == "medsafe-review/1"
    assert lines[0]["label_schema"]["fields"][0]["name"] == "keep"
    units = [x for x in lines if x["type"] == "unit"]
    assert (
        len(units) == 9
        and "Validator: validator: not faithful" in units[0]["messages"][1]["content"]
    )
    keep, drop = str(units[0]["item_id"]), str(units[1]["item_id"])
    with review.open("a", encoding="utf-8") as fh:
        for item, choice in ((keep, "keep"), (drop, "drop")):
            fh.write(
                json.dumps(
                    {
                        "type": "label",
                        "item_id": item,
                        "reviewer": "ann",
                        "values": {"keep": choice},
                        "rationale": "checked",
                    }
                )
                + "\n"
            )
    asked = mock.state.requests
    assert _generate(db, out, mock, "--on-fail", "review", "--paraphrase-threshold", "0")[0] == 0
    assert mock.state.requests == asked
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["restored"] == 1 and manifest["counts"]["awaiting_review"] == 8
    released = _lines(out / "suite.jsonl") + _lines(out / "seeds.jsonl")
    restored = next(x for x in released if x["id"] == keep)
    assert restored["metadata"]["validation"].startswith("kept by ann after validator")
    assert drop not in {x["id"] for x in released}
    again = _lines(review)
    assert len([x for x in again if x["type"] == "unit"]) == 8  # the kept one left the file
    assert [x["item_id"] for x in again if x["type"] == "label"] == [drop]
    rejected = {str(r["id"]): str(r["reason"]) for r in _lines(out / "rejected.jsonl")}
    assert rejected[drop].endswith("dropped by a reviewer")


def test_identifiers_are_not_sent_to_a_remote_generator(tmp_path: Path) -> None:
    doc = tmp_path / "d.txt"
    doc.write_text("1. Call Zhang Wei at zhang.wei@example.com before surgery.\n", encoding="utf-8")
    db = str(tmp_path / "m.db")
    assert invoke("corpus", "add", str(doc), "--corpus", "p", "--db", db)[0] == 0
    code, output = invoke("generate", "--corpus", "p", "--model", "openai/g", "--base-url",
                          "http://192.0.2.1/v1", "--db", db, "-o", str(tmp_path / "o"))  # fmt: skip
    assert code == 2 and "personal identifiers" in output and "nothing was sent" in output
