"""``medsafe users`` and ``medsafe serve`` from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsafe.cli import app
from medsafe.cli.serve import is_loopback
from medsafe.store.accounts import get_user, list_users
from medsafe.store.sqlite import Store
from tests.web_support import free_port

runner = CliRunner()


def _users(db: Path, *args: str, password: str | None = "s3cret pw") -> tuple[int, str]:
    result = runner.invoke(app, ["users", *args, "--db", str(db)], input=password)
    return result.exit_code, result.output


def test_users_add_list_disable_enable_reset(tmp_path: Path) -> None:
    db = tmp_path / "u.db"
    code, text = _users(db, "add", "alice", "--role", "reviewer", "--role", "auditor",
                        "--password-stdin", "--language", "ja")  # fmt: skip
    assert code == 0 and "added alice (auditor, reviewer)" in text
    code, text = _users(db, "list")
    assert code == 0 and "alice" in text and "auditor, reviewer" in text and "ja" in text
    assert _users(db, "disable", "alice")[0] == 0
    with Store(db) as store:
        row = get_user(store.connection, "alice")
        assert row is not None and row.disabled
        first_hash = row.password_hash
    assert _users(db, "enable", "alice")[0] == 0
    code, _ = _users(db, "reset", "alice", "--password-stdin", password="another pw")
    assert code == 0
    code, _ = _users(db, "reset", "alice", "--role", "viewer", "--keep-password")
    assert code == 0
    with Store(db) as store:
        row = get_user(store.connection, "alice")
        assert row is not None and not row.disabled and row.roles == {"viewer"}
        assert row.password_hash != first_hash
        actions = [a for (a,) in store.connection.execute("SELECT action FROM audit_log")]
    assert actions == ["user.add", "user.disable", "user.enable", "user.reset", "user.reset"]


def test_users_bad_input_exits_2(tmp_path: Path) -> None:
    db = tmp_path / "u.db"
    code, text = _users(db, "add", "bob", "--role", "root", "--password-stdin")
    assert code == 2 and "unknown role 'root'" in text
    code, text = _users(db, "add", "bob", "--role", "viewer", "--password-stdin", password="")
    assert code == 2 and "stdin held no password" in text
    code, text = _users(db, "add", "bob", "--role", "viewer")  # no terminal for a prompt
    assert code == 2 and "--password-stdin" in text
    assert _users(db, "add", "bob", "--role", "viewer", "--password-stdin")[0] == 0
    code, text = _users(db, "add", "bob", "--role", "viewer", "--password-stdin")
    assert code == 2 and "exists already" in text
    code, text = _users(db, "disable", "carol")
    assert code == 2 and "no user 'carol'" in text
    code, text = _users(db, "reset", "bob", "--keep-password")
    assert code == 2 and "changes nothing without --role" in text
    code, text = _users(
        db, "add", "eve", "--role", "viewer", "--password-stdin", "--language", "fr"
    )
    assert code == 2 and "--language 'fr'" in text
    code, text = _users(tmp_path / "none.db", "list")
    assert code == 2 and "no such store" in text
    with Store(db) as store:
        assert [u.username for u in list_users(store.connection)] == ["bob"]


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("127.8.0.1") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert not is_loopback("example.org")


def test_serve_refuses_a_missing_store(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and "no such store" in result.output


def test_serve_binds_loopback_and_says_so(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    assert _users(db, "add", "a", "--role", "viewer", "--password-stdin")[0] == 0
    port = free_port()
    exe = Path(sys.executable).with_name("medsafe")
    proc = subprocess.Popen(
        [str(exe), "serve", "--db", str(db), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as r:
                    assert r.status == 200
                    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"serve did not start: {proc.stderr.read() if proc.stderr else ''}")
                time.sleep(0.2)
        with pytest.raises(urllib.error.HTTPError) as docs:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=2)
        assert docs.value.code in (303, 401, 404)
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}/" in err
    assert "bound to loopback" in err and "TLS reverse proxy" in err


def test_serve_warns_off_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    db = tmp_path / "s.db"
    assert _users(db, "add", "a", "--role", "viewer", "--password-stdin")[0] == 0
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))  # binds nothing
    result = runner.invoke(app, ["serve", "--db", str(db), "--host", "0.0.0.0", "--port", "9"])
    assert result.exit_code == 0, result.output
    assert "warning: bound to 0.0.0.0, not loopback" in result.output
    assert calls == [{"host": "0.0.0.0", "port": 9, "log_level": "warning"}]
