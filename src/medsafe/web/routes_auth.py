"""Login, logout and the user's interface language."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from medsafe.web.auth import LANGUAGES, Session, login, logout, same_token, set_language
from medsafe.web.deps import SESSION_COOKIE, Conn, current_session, verify_csrf
from medsafe.web.templating import render

router = APIRouter()

LOGIN_CSRF_COOKIE = "medsafe_login_csrf"
"""The login form's CSRF token (no session yet): a double-submit cookie, Strict, HttpOnly."""


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only (never ``//host`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _login_page(request: Request, token: str, next_url: str, error: str, status: int) -> Response:
    response = render(
        request,
        "login.html",
        {"login_csrf": token, "next_url": next_url, "error": error},
        status_code=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure(request),
        path="/login",
    )
    return response


def secure(request: Request) -> bool:
    """Whether cookies are marked Secure: ``--secure-cookies``, or the request came over TLS
    (directly, or through the local proxy's ``X-Forwarded-Proto``, which the server trusts
    from 127.0.0.1 only)."""
    return bool(request.app.state.secure_cookies) or request.url.scheme == "https"


def _forget(request: Request, response: Response, name: str, path: str) -> None:
    """Delete a cookie with the same attributes it was set with."""
    response.delete_cookie(
        name, path=path, secure=secure(request), httponly=True, samesite="strict"
    )


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    """The login form."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    return _login_page(request, token, safe_next(next), "", 200)


@router.post("/login")
def login_submit(
    request: Request,
    conn: Conn,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the password; on success open a session and go on to ``next``."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if cookie is None or not same_token(csrf_token, cookie):
        fresh = secrets.token_urlsafe(32)
        return _login_page(request, fresh, safe_next(next), "login.error.csrf", 403)
    result = login(conn, username, password, _client(request))
    if result.token is None:
        if result.retry_after > 0:
            response = _login_page(request, cookie, safe_next(next), "login.error.wait", 429)
            response.headers["Retry-After"] = str(int(result.retry_after) + 1)
            return response
        return _login_page(request, cookie, safe_next(next), "login.error.bad", 401)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        result.token,
        httponly=True,
        samesite="strict",
        secure=secure(request),
        path="/",
    )
    _forget(request, response, LOGIN_CSRF_COOKIE, "/login")
    return response


@router.post("/logout", dependencies=[Depends(verify_csrf)])
def logout_submit(
    request: Request, conn: Conn, session: Annotated[Session, Depends(current_session)]
) -> Response:
    """End the session (its cookie opens nothing afterwards)."""
    logout(conn, session)
    response = RedirectResponse("/login", status_code=303)
    _forget(request, response, SESSION_COOKIE, "/")
    return response


@router.post("/account/language", dependencies=[Depends(verify_csrf)])
def choose_language(
    conn: Conn,
    session: Annotated[Session, Depends(current_session)],
    lang: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Store the user's interface language (en, zh or ja)."""
    for choice in LANGUAGES:
        if lang == choice:
            set_language(conn, session.user.username, choice)
            break
    return RedirectResponse(safe_next(next), status_code=303)


@router.get("/account")
def account(request: Request, session: Annotated[Session, Depends(current_session)]) -> Response:
    """The signed-in user's name, roles and interface language."""
    return render(request, "account.html", {"roles": sorted(session.user.roles)})


@router.get("/api/me")
def me(session: Annotated[Session, Depends(current_session)]) -> dict[str, object]:
    """The signed-in user as JSON (401 without a session)."""
    user = session.user
    return {"username": user.username, "roles": sorted(user.roles), "language": user.language}


@router.get("/")
def home(request: Request, session: Annotated[Session, Depends(current_session)]) -> Response:
    """Where a user starts: the runs list, or the review queue for a reviewer only."""
    user = session.user
    if user.has("admin", "viewer", "auditor", "adjudicator"):
        return RedirectResponse("/runs", status_code=303)
    from medsafe.web.app import api_routes

    paths = {route.path for route in api_routes(request.app.routes)}
    return RedirectResponse("/review" if "/review" in paths else "/account", status_code=303)
