"""The workbench's FastAPI application: ``create_app(db)``.

Server-rendered pages (Jinja2) with htmx from ``/static/``; every route but the login page
and the static files requires a live session and checks the user's role on the server.
The interactive API docs (``/docs``, ``/redoc``, ``/openapi.json``) are off.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from medsafe.store.sqlite import Store
from medsafe.web.auth import IDLE_TIMEOUT_S
from medsafe.web.deps import ConnectionPool, LoginRequired
from medsafe.web.templating import render

STATIC = Path(__file__).with_name("static")
ROUTERS = ("routes_auth", "routes_browse", "routes_review")
"""Route modules, included in this order; one that does not exist yet is skipped."""


def api_routes(routes: Sequence[BaseRoute]) -> list[APIRoute]:
    """Every API route of ``routes``, looking inside included routers (FastAPI keeps an
    included router as one entry that holds the router's own routes)."""
    out: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append(route)
        inner = getattr(route, "original_router", None)
        if inner is not None:
            out.extend(api_routes(inner.routes))
    return out


def _include_routers(app: FastAPI) -> None:
    for name in ROUTERS:
        try:
            module = importlib.import_module(f"medsafe.web.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"medsafe.web.{name}":
                raise
            continue
        app.include_router(module.router)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        from urllib.parse import quote

        return RedirectResponse(f"/login?next={quote(exc.next_url, safe='')}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        if request.url.path.startswith("/api/") or request.url.path.startswith("/static/"):
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=headers
            )
        return render(
            request,
            "error.html",
            {"status": exc.status_code, "detail": str(exc.detail)},
            status_code=exc.status_code,
        )


def create_app(
    db: str | Path,
    *,
    secure_cookies: bool = False,
    idle_timeout: float = IDLE_TIMEOUT_S,
    warm_results: bool = False,
) -> FastAPI:
    """The workbench on the store ``db`` (created and migrated here if needed).

    ``secure_cookies`` marks cookies Secure (serve behind TLS); ``idle_timeout`` ends a
    session after that many seconds without a request; ``warm_results`` computes every run's
    results in a background thread at start-up, so that the first page views are fast.
    """
    path = Path(db)
    with Store(path):
        pass  # migrates once, here, so that requests only read the schema

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        worker = None
        if warm_results:
            from medsafe.web.results_cache import warm_all

            worker = threading.Thread(
                target=warm_all, args=(path, stop), name="medsafe-warm", daemon=True
            )
            worker.start()
        yield
        stop.set()
        app.state.pool.close()
        if worker is not None:
            worker.join(timeout=5)

    app = FastAPI(
        title="medsafe workbench",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.db = path
    app.state.pool = ConnectionPool(path)
    app.state.secure_cookies = secure_cookies
    app.state.idle_timeout = idle_timeout
    _errors(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _include_routers(app)

    from medsafe.web.security import SecurityHeaders

    app.add_middleware(SecurityHeaders)

    return app
