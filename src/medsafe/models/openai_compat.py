"""``openai/NAME``: any OpenAI-compatible chat-completions server.

vLLM, Ollama, SGLang, llama.cpp server, DeepSeek, DashScope... The base URL comes from
``--base-url`` or ``OPENAI_BASE_URL``; there is no default, so nothing leaves the machine unless
a URL is named (``https://api.openai.com/v1`` for OpenAI itself). The key comes from the
environment variable named by ``BackendOptions.api_key_env`` (``OPENAI_API_KEY`` by default); it
is sent as a bearer token and never stored, logged or put in an error message. A URL carrying
credentials (``http://user:KEY@host/v1``) is refused, and error messages are redacted.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from typing import Any

import aiohttp

from medsafe.errors import BackendError, ConfigError
from medsafe.imaging.media import DEFAULT_MAX_SIDE
from medsafe.models.base import BackendOptions, ChatRequest, ChatResponse, backends
from medsafe.models.config import check_url
from medsafe.redact import redact
from medsafe.schema import Usage

PUBLIC_BASE_URL = "https://api.openai.com/v1"
"""OpenAI's own endpoint: used only when named explicitly."""
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def resolve_base_url(base_url: str | None) -> str:
    """The base URL to call: ``base_url``, else ``$OPENAI_BASE_URL``; never a silent default."""
    if base_url:
        return check_url(base_url)
    from_env = os.environ.get("OPENAI_BASE_URL")
    if from_env:
        return check_url(from_env, "OPENAI_BASE_URL")
    raise ConfigError(
        "an openai/NAME model needs a base URL: pass --base-url http://HOST:PORT/v1 (or set "
        "OPENAI_BASE_URL, or base_url in the --config model); medsafe does not call the public "
        f"OpenAI endpoint unless asked, with --base-url {PUBLIC_BASE_URL}"
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAICompatBackend:
    """Chat completions over HTTP with one pooled ``aiohttp.ClientSession``."""

    max_concurrency: int | None = None

    def __init__(self, name: str, options: BackendOptions) -> None:
        self.model_id = f"openai/{name}"
        self.name = name
        self.base_url = resolve_base_url(options.base_url).rstrip("/")
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(options.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._key = key
        self._headers = headers
        self._timeout = aiohttp.ClientTimeout(total=options.timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._max_side = int(options.extra.get("image_max_side", DEFAULT_MAX_SIDE))

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily inside the running event loop, as aiohttp requires.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                trust_env=False,
            )
        return self._session

    def _scrub(self, text: str) -> str:
        """``text`` redacted, and without the key itself should a server echo it back."""
        if self._key:
            text = text.replace(self._key, "***")
        return redact(text)

    def payload(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body for a request."""
        params = request.params
        body: dict[str, Any] = {
            "model": self.name,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if params.temperature is not None:
            body["temperature"] = params.temperature
        if params.max_tokens is not None:
            body["max_tokens"] = params.max_tokens
        if params.top_p is not None:
            body["top_p"] = params.top_p
        if params.seed is not None:
            body["seed"] = params.seed
        if request.response_format is not None:
            body["response_format"] = request.response_format
        return body

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """POST ``/chat/completions``; map HTTP and protocol failures to BackendError."""
        url = f"{self.base_url}/chat/completions"
        sent = self.payload(request)
        if request.item is not None and request.item.attachments:
            from medsafe.imaging.media import with_images

            try:
                sent["messages"] = await with_images(
                    sent["messages"], request.item.attachments, self._max_side
                )
            except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
                raise BackendError(f"image attachment: {exc}", retryable=False) from exc
        try:
            async with self._client().post(url, json=sent) as response:
                status = response.status
                body = await response.read()
                retry_after = response.headers.get("Retry-After")
        except TimeoutError as exc:
            raise BackendError("HTTP timeout", retryable=True) from exc
        except aiohttp.ClientError as exc:
            raise BackendError(
                self._scrub(f"connection error to {self.base_url}: {type(exc).__name__}: {exc}"),
                retryable=True,
            ) from exc
        if status != 200:
            excerpt = body.decode("utf-8", errors="replace")[:300].replace("\n", " ")
            raise BackendError(
                self._scrub(f"HTTP {status} from {self.base_url}: {excerpt}"),
                retryable=status in RETRYABLE_STATUS,
                retry_after=parse_retry_after(retry_after),
                status_code=status,
            )
        try:
            data = json.loads(body)
            choice = data["choices"][0]
            text = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            text_body = body.decode("utf-8", errors="replace")
            raise BackendError(
                self._scrub(f"malformed chat completion from {self.base_url}: {text_body[:200]!r}"),
                retryable=True,
            ) from exc
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        usage = data.get("usage") or {}
        return ChatResponse(
            text=text,
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            ),
            finish_reason=choice.get("finish_reason"),
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._session is not None and not self._session.closed:
            await self._session.close()


@backends.register("openai")
def _factory(name: str, options: BackendOptions) -> OpenAICompatBackend:
    return OpenAICompatBackend(name, options)
