"""The egress policy of ``medsafe run``: items with identifiers never reach a non-loopback
endpoint unless --allow-phi. The "remote" host is a made-up name that a patched resolver sends
to the loopback mock server, so a request that got through would be seen there."""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp.resolver
import pytest
from typer.testing import CliRunner

import medsafe
from medsafe.cli import app
from medsafe.dataethics.egress import EgressRefused, check_egress, is_loopback
from medsafe.errors import ConfigError
from medsafe.schema import Item, Message
from medsafe.store import Store
from medsafe.testing.mock_openai import MockConfig, MockOpenAIServer, ThreadedMockServer

runner = CliRunner()
REMOTE_HOST = "phi-test.example"


@pytest.fixture
def remote(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MockOpenAIServer, str]]:
    """The mock server, and a non-loopback URL whose host name resolves to it."""
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == REMOTE_HOST:
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    # uvloop resolves natively (not through socket.getaddrinfo): patch aiohttp's resolver too
    threaded = aiohttp.resolver.ThreadedResolver.resolve

    async def resolve_async(self: Any, host: str, *args: Any, **kwargs: Any) -> Any:
        return await threaded(self, "127.0.0.1" if host == REMOTE_HOST else host, *args, **kwargs)

    monkeypatch.setattr(aiohttp.resolver.ThreadedResolver, "resolve", resolve_async)
    with ThreadedMockServer(MockConfig()) as server:
        yield server, f"http://{REMOTE_HOST}:{server.port}/v1"


def write_suite(path: Path, prompts: list[str]) -> Path:
    rows = [{"id": f"q{i}", "prompt": text, "category": "ama-1"} for i, text in enumerate(prompts)]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return path


def run(suite: Path, db: Path, url: str, *extra: str) -> tuple[int, str]:
    head = ["run", str(suite), "--model", "openai/mock", "--base-url", url, "--db", str(db)]
    tail = ["--run-id", "r1", "--scorer", "mcq", "--no-progress"]
    result = runner.invoke(app, [*head, *tail, *extra])
    return result.exit_code, result.output


PHI_PROMPTS = ["What is a normal resting heart rate?", "患者电话13812345678，请回电。"]


def test_refused_before_any_request(tmp_path: Path, remote: tuple[MockOpenAIServer, str]) -> None:
    server, url = remote
    suite = write_suite(tmp_path / "s.jsonl", PHI_PROMPTS)
    code, output = run(suite, tmp_path / "m.db", url)
    assert code == 2, output
    flat = " ".join(output.split())
    assert "1 of 2 items contain personal identifiers" in flat
    assert "phone 1" in flat and "q1" in flat
    assert f"non-loopback endpoint http://{REMOTE_HOST}" in flat and "nothing was sent" in flat
    assert "13812345678" not in output
    assert server.state.requests == 0
    with Store(tmp_path / "m.db") as store:
        assert store.get_run("r1") is None


def test_a_clean_suite_reaches_the_patched_host(
    tmp_path: Path, remote: tuple[MockOpenAIServer, str]
) -> None:
    """The resolver patch works: without identifiers the same URL is asked."""
    server, url = remote
    suite = write_suite(tmp_path / "s.jsonl", ["What is a normal resting heart rate?"])
    code, output = run(suite, tmp_path / "m.db", url)
    assert code == 0, output
    assert server.state.requests == 1


def test_allow_phi_sends_and_records(tmp_path: Path, remote: tuple[MockOpenAIServer, str]) -> None:
    server, url = remote
    suite = write_suite(tmp_path / "s.jsonl", PHI_PROMPTS)
    db = tmp_path / "m.db"
    code, output = run(suite, db, url, "--allow-phi")
    assert code == 0, output
    assert "items with personal identifiers are sent" in " ".join(output.split())
    assert server.state.requests == 2
    with Store(db) as store:
        record = store.require_run("r1").provenance["egress"]
    assert record == {
        "phi_check": "block",
        "remote_endpoints": [url],
        "items_scanned": 2,
        "findings_by_type": {"phone": 1},
        "items_with_identifiers": 1,
        "items_with_names": 0,
        "allow_phi": True,
    }
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT target, payload FROM audit_log WHERE action='allow_phi'"
        ).fetchall()
    finally:
        conn.close()
    assert len(rows) == 1 and rows[0][0] == "r1"
    assert json.loads(rows[0][1]) == record


def test_warn_mode_and_names_only_warn(
    tmp_path: Path, remote: tuple[MockOpenAIServer, str]
) -> None:
    server, url = remote
    suite = write_suite(tmp_path / "s.jsonl", PHI_PROMPTS)
    code, output = run(suite, tmp_path / "a.db", url, "--phi-check", "warn")
    assert code == 0 and "--phi-check warn" in output
    names = write_suite(tmp_path / "n.jsonl", ["Dr. Smith asks about aspirin."])
    code, output = run(names, tmp_path / "b.db", url)
    assert code == 0, output
    assert "look like person names" in " ".join(output.split())
    code, output = run(suite, tmp_path / "c.db", url, "--phi-check", "off")
    assert code == 0 and "identifiers" not in output
    assert server.state.requests == 5
    code, output = run(suite, tmp_path / "d.db", url, "--phi-check", "maybe")
    assert code == 2 and "off, warn or block" in output


def test_loopback_literal_is_not_checked(
    tmp_path: Path, remote: tuple[MockOpenAIServer, str]
) -> None:
    server, _ = remote
    suite = write_suite(tmp_path / "s.jsonl", PHI_PROMPTS)
    code, output = run(suite, tmp_path / "m.db", server.base_url)
    assert code == 0, output
    assert server.state.requests == 2


def test_python_api_applies_the_same_policy(
    tmp_path: Path, remote: tuple[MockOpenAIServer, str]
) -> None:
    server, url = remote
    items = [
        Item(id="a", kind="open", messages=(Message(role="user", content="My DOB is 1980-02-03"),))
    ]
    with pytest.raises(EgressRefused, match="date_of_birth 1"):
        medsafe.evaluate(items, "openai/mock", base_url=url, db=tmp_path / "m.db", scorers=[])
    assert server.state.requests == 0
    results = medsafe.evaluate(
        items, "openai/mock", base_url=url, db=tmp_path / "m.db", scorers=[], allow_phi=True
    )
    assert results.n == 1 and server.state.requests == 1


def test_loopback_means_a_literal_address() -> None:
    assert is_loopback("http://127.0.0.1:8000/v1") and is_loopback("http://127.9.9.9/v1")
    assert is_loopback("http://[::1]:8000/v1") and is_loopback("http://LOCALHOST/v1")
    assert not is_loopback(f"http://{REMOTE_HOST}/v1")
    assert not is_loopback("http://localhost.example.com/v1")
    assert not is_loopback("http://10.0.0.1/v1") and not is_loopback("not a url")


def test_check_egress_decisions() -> None:
    items = [Item(id="x", kind="open", messages=(Message(role="user", content="a@example.com"),))]
    remote = ["https://api.example.com/v1"]
    assert not check_egress(items, remote).allowed
    assert check_egress(items, remote, allow_phi=True).allowed
    assert check_egress(items, ["http://127.0.0.1:1/v1"]).mode == "off"
    assert check_egress(items, remote, "warn").allowed
    with pytest.raises(ConfigError):
        check_egress(items, remote, "loud")  # type: ignore[arg-type]


def test_the_system_prompt_is_checked_too(
    tmp_path: Path, remote: tuple[MockOpenAIServer, str]
) -> None:
    server, url = remote
    suite = write_suite(tmp_path / "s.jsonl", ["What is a normal resting heart rate?"])
    system = "You are assisting patient Zhang Wei, phone 138-1234-5678."
    code, output = run(suite, tmp_path / "m.db", url, "--system", system)
    assert code == 2 and "(system prompt)" in output
    assert server.state.requests == 0


def test_a_resumed_run_checks_what_it_still_has_to_send(
    tmp_path: Path, remote: tuple[MockOpenAIServer, str]
) -> None:
    server, url = remote
    suite = write_suite(tmp_path / "s.jsonl", PHI_PROMPTS)
    db = tmp_path / "m.db"
    with ThreadedMockServer(MockConfig(fail_500=1.0)) as failing:  # loopback: no check
        code, output = run(suite, db, failing.base_url, "--retries", "0")
    assert code == 3, output  # every call failed: both items are still to send
    code, output = run(suite, db, url, "--retries", "0")
    assert code == 2 and "1 of 2 items contain personal identifiers" in " ".join(output.split())
    assert server.state.requests == 0
    code, output = run(suite, db, url, "--allow-phi")
    assert code == 0 and server.state.requests == 2
    code, output = run(suite, db, url)  # nothing left to send: nothing to refuse
    assert code == 0, output
    assert server.state.requests == 2
