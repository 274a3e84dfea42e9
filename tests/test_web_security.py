"""The workbench's access rules, over every route the app has (review routes included):
login required, roles checked on the server, CSRF on every state-changing request, security
headers, escaping, and complete translations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount

from medsafe.web.app import api_routes
from medsafe.web.deps import RoleCheck
from medsafe.web.i18n import LANGUAGES, LOCALES, catalogs
from tests.web_support import HOSTILE, ROLE_USERS, Client, browse_store, login, make_app

ANY_USER = frozenset(ROLE_USERS)
PUBLIC = {("GET", "/login"), ("POST", "/login")}
"""Routes open without a session (and static files)."""
EVERY_SIGNED_IN_USER = {
    ("GET", "/"),
    ("GET", "/account"),
    ("GET", "/api/me"),
    ("POST", "/logout"),
    ("POST", "/account/language"),
}
"""Routes every signed-in user may use whatever their role; every other route must declare
its roles with ``require_roles`` (the test fails for a route that does neither)."""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    tmp = tmp_path_factory.mktemp("web")
    db = tmp / "web.db"
    ids = browse_store(db)
    app = make_app(tmp, db=db)
    app.state.test_ids = ids
    return app


@pytest.fixture(scope="module")
def clients(app: FastAPI) -> dict[str, Client]:
    return {role: login(app, role) for role in ROLE_USERS}


def _routes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    out: list[tuple[str, str, APIRoute]] = []
    for route in api_routes(app.routes):
        out.extend((method, route.path, route) for method in sorted(route.methods or ()))
    assert len(out) >= 10, "the routes were not found"
    return out


def _allowed(route: APIRoute, method: str) -> frozenset[str] | None:
    """The roles a route admits: from its RoleCheck dependency; ANY_USER for the listed
    routes; None for a route that declares nothing (a test failure)."""
    found: list[RoleCheck] = []

    def walk(dependant: object) -> None:
        for dep in getattr(dependant, "dependencies", []):
            if isinstance(dep.call, RoleCheck):
                found.append(dep.call)
            walk(dep)

    walk(route.dependant)
    if found:
        roles = frozenset.intersection(*(check.roles for check in found))
        return roles
    if (method, route.path) in EVERY_SIGNED_IN_USER:
        return ANY_USER
    return None


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_requires_login_and_declares_its_roles(app: FastAPI) -> None:
    anonymous = Client(app, base_url="http://127.0.0.1", follow_redirects=False)
    undeclared = []
    for method, path, route in _routes(app):
        if (method, path) in PUBLIC:
            continue
        if _allowed(route, method) is None:
            undeclared.append(f"{method} {path}")
        response = anonymous.request(method, _url(path))
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path, response.status_code)
        elif method == "GET":
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"].startswith("/login?next=")
        else:
            assert response.status_code in (303, 401, 403), (method, path)
    assert not undeclared, f"routes without require_roles: {undeclared}"


def test_role_by_route_matrix(app: FastAPI, clients: dict[str, Client]) -> None:
    checked = 0
    for method, path, route in _routes(app):
        if (method, path) in PUBLIC:
            continue
        allowed = _allowed(route, method)
        assert allowed is not None
        for role, client in clients.items():
            if method == "GET":
                response = client.get(_url(path))
            else:  # with the CSRF token: only the role decides
                response = client.request(method, _url(path), headers={"X-CSRF-Token": client.csrf})
            if role in allowed:
                assert response.status_code not in (401, 403), (role, method, path)
                location = response.headers.get("location", "")
                if (method, path) != ("POST", "/logout"):  # which does send you to /login
                    assert not location.startswith("/login"), (role, method, path)
            else:
                assert response.status_code == 403, (role, method, path, response.status_code)
            checked += 1
        if method == "POST" and path == "/logout":
            clients.update({role: login(app, role) for role in ROLE_USERS})
    assert checked >= 5 * 10


def test_browse_pages_give_200_to_their_roles(app: FastAPI, clients: dict[str, Client]) -> None:
    ids = app.state.test_ids
    pages = ["/runs", f"/run?id={ids['base']}", "/run/items?id=base", "/item?run=base&id=o00090",
             "/compare?a=base&b=tuned", "/api/runs", "/api/run?id=base"]  # fmt: skip
    expected = {"admin": 200, "viewer": 200, "auditor": 200, "adjudicator": 200, "reviewer": 403}
    for role, client in clients.items():
        for page in pages:
            assert client.get(page).status_code == expected[role], (role, page)


def test_state_changing_routes_refuse_a_missing_or_foreign_csrf_token(
    app: FastAPI, clients: dict[str, Client]
) -> None:
    admin, viewer = clients["admin"], clients["viewer"]
    for method, path, _route in _routes(app):
        if method == "GET" or (method, path) in PUBLIC:
            continue
        assert admin.request(method, _url(path)).status_code == 403, (method, path)
        forged = {"X-CSRF-Token": viewer.csrf}  # another session's token
        assert admin.request(method, _url(path), headers=forged).status_code == 403, path
    assert admin.get("/account").status_code == 200


def test_headers_docs_off_and_csp_without_inline_script(
    app: FastAPI, clients: dict[str, Client]
) -> None:
    client = clients["admin"]
    response = client.get("/runs")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 404
    assert client.get("/static/htmx-2.0.11.min.js").status_code == 200
    for page in ("/runs", "/run?id=talks", "/login"):
        html = client.get(page).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), page  # no inline script
        assert " style=" not in html and "<style" not in html, page  # no inline style
        assert not re.search(r"<[a-z][^<>]*\son[a-z]+=", html), page  # no handler attribute


def test_hostile_text_is_escaped_everywhere(app: FastAPI, clients: dict[str, Client]) -> None:
    from urllib.parse import urlencode

    run = app.state.test_ids["hostile"]
    client = clients["viewer"]
    pages = ["/runs", "/run?" + urlencode({"id": run}), "/run/items?" + urlencode({"id": run}),
             "/item?" + urlencode({"run": run, "id": "o00001"}),
             "/run/items?" + urlencode({"id": run, "q": HOSTILE[0]})]  # fmt: skip
    for page in pages:
        html = client.get(page).text
        assert "<script>alert" not in html and "<img src=x" not in html, page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, page
        assert "{{7*7}}" in html or page.startswith("/runs"), page
    transcript = client.get(pages[3]).text
    for part in ("answer ", "rationale ", "raw ", "prompt "):
        assert part + "&lt;script&gt;" in transcript


def test_catalogs_have_every_key_in_every_language() -> None:
    merged = catalogs()
    keys = set().union(*(set(table) for table in merged.values()))
    for lang in LANGUAGES:
        assert not keys - set(merged[lang]), (lang, sorted(keys - set(merged[lang]))[:5])
    for path in LOCALES.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        domain, _, lang = path.stem.rpartition(".")
        for other in LANGUAGES:
            sibling = LOCALES / f"{domain}.{other}.json"
            assert sibling.exists(), f"{path.name} has no {sibling.name}"
            assert set(json.loads(sibling.read_text(encoding="utf-8"))) == set(data), sibling


@pytest.mark.parametrize("prefix", ["core", "review"])
def test_every_template_key_is_translated(prefix: str) -> None:
    templates = Path(__file__).parents[1] / "src/medsafe/web/templates"
    review = prefix == "review"
    if review and not (LOCALES / "review.en.json").exists():
        pytest.skip("the review pages have no catalog yet")
    used: set[str] = set()  # keys ending in "." are prefixes of computed keys (t("a." ~ x))
    for path in templates.glob("*.html"):
        if path.name.startswith("review_") == review:
            used |= set(re.findall(r"""\bt\(["']([a-z_]+\.[a-z_.]+)["']""", path.read_text()))
    missing = sorted(k for k in used if k not in catalogs()["en"] and not k.endswith("."))
    assert not missing, missing


def test_static_and_mounts(app: FastAPI) -> None:
    mounts = [r for r in app.routes if isinstance(r, Mount)]
    assert [m.path for m in mounts] == ["/static"]
