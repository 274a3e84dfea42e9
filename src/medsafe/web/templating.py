"""Server-side rendering: one Jinja2 environment with autoescaping on for every template.

Every template gets ``user`` (None on the login page), ``csrf_token``, ``t`` (the translation
function of the user's language), ``lang`` and ``request``. Printed values lose their C0
control characters (HTML forbids them; a model's output must not smuggle them in).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from medsafe.web.i18n import translator

TEMPLATES = Path(__file__).with_name("templates")
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _finalize(value: object) -> object:
    if isinstance(value, Markup):
        return Markup(_CONTROLS.sub("", value))
    if isinstance(value, str):
        return _CONTROLS.sub("", value)
    return value


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json_text"] = _json_text
    return env


def _json_text(value: object) -> str:
    """A value as readable JSON text (non-ASCII kept; escaped on output like any text)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


ENV = _environment()


def render(
    request: Request,
    template_name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render ``template_name`` for ``request`` with the common context."""
    session = getattr(request.state, "session", None)
    user = session.user if session is not None else None
    lang = user.language if user is not None else _login_language(request)
    values: dict[str, Any] = {
        "request": request,
        "user": user,
        "csrf_token": session.csrf_token if session is not None else "",
        "t": translator(lang),
        "lang": lang,
    }
    values.update(context or {})
    html = ENV.get_template(template_name).render(values)
    return HTMLResponse(html, status_code=status_code)


def _login_language(request: Request) -> str:
    """Before login: the ``lang`` query parameter, else the browser's first of en/zh/ja."""
    asked = request.query_params.get("lang", "")
    if asked in ("en", "zh", "ja"):
        return asked
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in ("en", "zh", "ja"):
            return code
    return "en"
