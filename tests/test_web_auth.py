"""Workbench accounts and sessions: login, logout, CSRF, expiry, back-off and audit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from medsafe.store.sqlite import Store
from medsafe.web import auth
from medsafe.web.deps import SESSION_COOKIE
from tests.web_support import CHEAP_HASHER, PASSWORD, Client, login, login_form_token, make_app


def _actions(db: Path) -> list[tuple[str, str, str]]:
    with Store(db) as store:
        rows = store.connection.execute(
            "SELECT actor, action, target FROM audit_log ORDER BY seq"
        ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def test_login_sets_a_strict_httponly_cookie_and_logout_invalidates(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = Client(app, base_url="http://127.0.0.1", follow_redirects=False)
    token = login_form_token(client)
    response = client.post(
        "/login",
        data={"username": "viewer", "password": PASSWORD, "csrf_token": token, "next": "/account"},
    )
    assert response.status_code == 303 and response.headers["location"] == "/account"
    cookie = next(c for c in response.headers.get_list("set-cookie") if SESSION_COOKIE in c)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    stolen = client.cookies[SESSION_COOKIE]
    client = login(app, "viewer")
    assert client.get("/account").status_code == 200
    me = client.get("/api/me").json()
    assert me == {"username": "viewer", "roles": ["viewer"], "language": "en"}
    assert client.post_form("/logout").status_code == 303
    assert client.get("/account").status_code == 303  # to /login
    # a copy of a logged-out cookie opens nothing either
    other = Client(app, base_url="http://127.0.0.1", follow_redirects=False)
    other.cookies.set(SESSION_COOKIE, stolen)
    assert other.get("/account").status_code == 200  # first session still live
    assert ("viewer", "logout", "viewer") in _actions(tmp_path / "web.db")


def test_secure_cookies_option(tmp_path: Path) -> None:
    app = make_app(tmp_path, secure_cookies=True)
    client = Client(app, base_url="https://127.0.0.1", follow_redirects=False)
    token = login_form_token(client)
    response = client.post(
        "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    assert all("Secure" in c for c in response.headers.get_list("set-cookie"))


def test_wrong_password_unknown_user_and_missing_csrf_are_refused(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = Client(app, base_url="http://127.0.0.1", follow_redirects=False)
    token = login_form_token(client)
    bad = client.post("/login", data={"username": "viewer", "password": "x", "csrf_token": token})
    ghost = client.post("/login", data={"username": "ghost", "password": "x", "csrf_token": token})
    assert bad.status_code == ghost.status_code == 401
    assert bad.text.count("Wrong user name or password") == 1
    no_csrf = client.post("/login", data={"username": "viewer", "password": PASSWORD})
    assert no_csrf.status_code == 403 and SESSION_COOKIE not in client.cookies
    actions = _actions(tmp_path / "web.db")
    assert ("viewer", "login.failed", "viewer") in actions
    assert ("ghost", "login.failed", "ghost") in actions


def test_next_is_kept_on_this_site(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = Client(app, base_url="http://127.0.0.1", follow_redirects=False)
    token = login_form_token(client)
    response = client.post(
        "/login",
        data={"username": "viewer", "password": PASSWORD, "csrf_token": token,
              "next": "//evil.example/x"},
    )  # fmt: skip
    assert response.headers["location"] == "/"


def test_state_changing_requests_need_the_session_csrf_token(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = login(app, "viewer")
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.post("/account/language", data={"lang": "zh"}).status_code == 403
    assert client.get("/account").status_code == 200  # still logged in
    assert client.post("/logout", headers={"X-CSRF-Token": client.csrf}).status_code == 303


def test_language_is_stored_per_user(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = login(app, "reviewer")
    response = client.post_form("/account/language", {"lang": "zh", "next": "/account"})
    assert response.status_code == 303 and response.headers["location"] == "/account"
    assert "我的账户" in client.get("/account").text
    again = login(app, "reviewer")
    assert "我的账户" in again.get("/account").text
    assert "Your account" in login(app, "viewer").get("/account").text
    client.post_form("/account/language", {"lang": "klingon"})
    assert "我的账户" in client.get("/account").text


def test_sessions_expire_when_idle(tmp_path: Path) -> None:
    app = make_app(tmp_path, idle_timeout=0.0)
    client = Client(app, base_url="http://127.0.0.1", follow_redirects=False)
    token = login_form_token(client)
    client.post("/login", data={"username": "viewer", "password": PASSWORD, "csrf_token": token})
    response = client.get("/account")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert client.get("/api/me").status_code == 401


def test_absolute_expiry_and_disabled_accounts(tmp_path: Path) -> None:
    db = tmp_path / "web.db"
    make_app(tmp_path)
    with Store(db) as store:
        conn = store.connection
        result = auth.login(conn, "viewer", PASSWORD, "127.0.0.1", now=1000.0)
        assert result.token is not None
        assert auth.session_for(conn, result.token, now=1001.0) is not None
        late = 1000.0 + auth.SESSION_TTL_S + 1
        assert auth.session_for(conn, result.token, now=late, idle_timeout=1e9) is None
        fresh = auth.login(conn, "viewer", PASSWORD, "127.0.0.1")
        assert fresh.token is not None
        auth.set_disabled(conn, "viewer", True, actor="admin")
        assert auth.session_for(conn, fresh.token) is None
        assert auth.login(conn, "viewer", PASSWORD, "127.0.0.1").token is None


def test_back_off_per_user_and_per_address(tmp_path: Path) -> None:
    db = tmp_path / "web.db"
    make_app(tmp_path)
    with Store(db) as store:
        conn = store.connection
        now = 5000.0
        for _ in range(auth.USER_THRESHOLD):
            assert auth.login(conn, "admin", "wrong", "10.0.0.1", now=now).retry_after == 0
        refused = auth.login(conn, "admin", PASSWORD, "10.0.0.2", now=now)
        assert refused.token is None and refused.retry_after > 0  # even the right password
        later = now + refused.retry_after + 0.01
        assert auth.login(conn, "admin", PASSWORD, "10.0.0.2", now=later).token is not None
        # the next failure after a success starts counting again
        assert auth.login(conn, "admin", "wrong", "10.0.0.2", now=later).retry_after == 0
        for i in range(auth.ADDRESS_THRESHOLD):
            auth.login(conn, f"nobody{i}", "wrong", "10.9.9.9", now=now)
        by_address = auth.login(conn, "viewer", PASSWORD, "10.9.9.9", now=now)
        assert by_address.token is None and by_address.retry_after > 0
        assert auth.login(conn, "viewer", PASSWORD, "10.9.9.8", now=now).token is not None


def test_back_off_answers_429_with_retry_after(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = Client(app, base_url="http://127.0.0.1", follow_redirects=False)
    token = login_form_token(client)
    for _ in range(auth.USER_THRESHOLD):
        client.post("/login", data={"username": "admin", "password": "x", "csrf_token": token})
    response = client.post(
        "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1


def test_tokens_are_stored_hashed(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = login(app, "viewer")
    token = client.cookies[SESSION_COOKIE]
    conn = sqlite3.connect(tmp_path / "web.db")
    stored = [r[0] for r in conn.execute("SELECT token_hash FROM web_sessions")]
    hashes = [r[0] for r in conn.execute("SELECT password_hash FROM users")]
    conn.close()
    assert token not in stored and auth.token_hash(token) in stored
    assert all(h.startswith("$argon2id$") for h in hashes)


def test_account_errors(tmp_path: Path) -> None:
    make_app(tmp_path)
    with Store(tmp_path / "web.db") as store:
        conn = store.connection
        with pytest.raises(auth.AccountError, match="exists already"):
            auth.add_user(conn, "viewer", "pw", ["viewer"], actor="t", hasher=CHEAP_HASHER)
        with pytest.raises(auth.AccountError, match="unknown role 'root'"):
            auth.add_user(conn, "x", "pw", ["root"], actor="t")
        with pytest.raises(auth.AccountError, match="bad user name"):
            auth.add_user(conn, "a b", "pw", ["viewer"], actor="t")
        with pytest.raises(auth.AccountError, match="empty"):
            auth.add_user(conn, "y", "", ["viewer"], actor="t")
        with pytest.raises(auth.AccountError, match="no user 'z'"):
            auth.reset_user(conn, "z", actor="t", password="pw", hasher=CHEAP_HASHER)
        assert (
            conn.execute("SELECT COUNT(*) FROM users WHERE username IN ('x','y')").fetchone()[0]
            == 0
        )


def test_connection_pool_reuses_and_rolls_back(tmp_path: Path) -> None:
    from medsafe.web.deps import ConnectionPool

    make_app(tmp_path)
    pool = ConnectionPool(tmp_path / "web.db", keep=1)
    first = pool.take()
    first.execute("BEGIN")
    first.execute("UPDATE users SET language='ja' WHERE username='viewer'")
    pool.give(first)  # an open transaction is rolled back, not kept
    again = pool.take()
    assert again is first and not again.in_transaction
    language = again.execute("SELECT language FROM users WHERE username='viewer'").fetchone()
    assert language == ("en",)
    extra = pool.take()
    assert extra is not first
    pool.give(again)
    pool.give(extra)  # over ``keep``: closed
    with pytest.raises(sqlite3.ProgrammingError):
        extra.execute("SELECT 1")
    pool.close()
    with pytest.raises(sqlite3.ProgrammingError):
        first.execute("SELECT 1")


def test_cookies_are_secure_over_tls_without_the_flag(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = Client(app, base_url="https://127.0.0.1", follow_redirects=False)
    token = login_form_token(client)
    response = client.post(
        "/login", data={"username": "viewer", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    assert all("Secure" in c for c in response.headers.get_list("set-cookie"))


def test_login_activity_keeps_the_audit_chain_valid(tmp_path: Path) -> None:
    from medsafe.audit.chain import verify

    app = make_app(tmp_path)
    client = login(app, "auditor")
    client.post_form("/logout")
    bad = Client(app, base_url="http://127.0.0.1", follow_redirects=False)
    token = login_form_token(bad)
    bad.post("/login", data={"username": "auditor", "password": "no", "csrf_token": token})
    db = tmp_path / "web.db"
    actions = _actions(db)
    assert [a for a in actions if a[1].startswith(("login", "logout"))] == [
        ("auditor", "login", "auditor"),
        ("auditor", "logout", "auditor"),
        ("auditor", "login.failed", "auditor"),
    ]
    with Store(db) as store:
        assert verify(store.connection).ok
        payloads = [p for (p,) in store.connection.execute("SELECT payload FROM audit_log")]
    assert all(PASSWORD not in p and "password" not in p for p in payloads)
