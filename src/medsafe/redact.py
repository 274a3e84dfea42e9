"""Remove credentials from text before it is printed, stored or logged.

:func:`redact` replaces the ``user:password@`` part of any URL (``https://u:KEY@host/v1``,
``postgresql://user:pw@host/db``) by ``***@`` and the values of ``key=``, ``api_key=``,
``token=``, ``password=``... parameters, their JSON forms (``"api_key": "..."``) and
``Authorization: Bearer ...`` tokens by ``***``. :func:`has_credentials` tells whether a URL
carries any of them.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["MASK", "has_credentials", "redact", "redact_url"]

MASK = "***"

_NAMES = (
    r"api[_-]?key|access[_-]?token|refresh[_-]?token|auth[_-]?token|client[_-]?secret"
    r"|key|token|secret|password|passwd|pwd"
)
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")
_PARAM = re.compile(rf"(?i)(?P<name>\b(?:{_NAMES}))(?P<sep>\s*=\s*)[^&\s\"',;)]+")
_JSON = re.compile(rf"(?i)(?P<name>\"(?:{_NAMES})\"\s*:\s*\")[^\"]*(?=\")")
_BEARER = re.compile(r"(?i)(?P<name>\bbearer\s+)[A-Za-z0-9._~+/=-]+")


def redact(text: str) -> str:
    """``text`` with URL userinfo, secret-named parameters and bearer tokens masked."""
    text = _USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    text = _PARAM.sub(rf"\g<name>\g<sep>{MASK}", text)
    text = _JSON.sub(rf"\g<name>{MASK}", text)
    return _BEARER.sub(rf"\g<name>{MASK}", text)


def redact_url(url: str) -> str:
    """A URL safe to show: userinfo and secret-named query values masked."""
    return redact(url)


def has_credentials(url: str) -> bool:
    """Whether ``url`` has a ``user[:password]@`` part or a secret-named query value."""
    try:
        netloc = urlsplit(url.strip()).netloc
    except ValueError:
        return True
    return "@" in netloc or redact(url) != url
