"""A loopback mock of an OpenAI-compatible chat-completions server, for tests and benchmarks.

Written on raw asyncio streams so that it costs almost no CPU: latency is a sleep, not work.
It can inject faults (HTTP 500, 429 with ``Retry-After``, hangs) at fixed rates from a seeded
RNG, and records every prompt it answered so that tests can check what was asked twice.

Run it standalone::

    python -m medsafe.testing.mock_openai --port 8000 --latency 0.1

``GET /_stats`` returns ``{"requests": N, "answered": [last user message, ...]}``;
``POST /_reset`` clears the record.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Responder = Callable[[list[dict[str, Any]]], str]
RequestResponder = Callable[[dict[str, Any]], str]


def letter_responder(messages: list[dict[str, Any]]) -> str:
    """Default answer: 'Answer: X' with X picked from A-D by a hash of the last message."""
    last = str(messages[-1].get("content", "")) if messages else ""
    digest = hashlib.sha256(last.encode("utf-8")).digest()
    return f"I have considered the options.\nAnswer: {'ABCD'[digest[0] % 4]}"


@dataclass
class MockConfig:
    """Behaviour of the mock server."""

    latency_s: float = 0.0
    fail_500: float = 0.0
    fail_429: float = 0.0
    retry_after: str = "0.05"
    hang: float = 0.0
    hang_s: float = 3600.0
    seed: int = 0
    record: bool = True
    responder: Responder = letter_responder
    request_responder: RequestResponder | None = None
    """When set, gets the whole request body (model, messages, response_format...) instead."""


@dataclass
class MockState:
    """What the server has seen."""

    requests: int = 0
    answered: list[str] = field(default_factory=list)
    authorization: set[str] = field(default_factory=set)
    images: list[bytes] = field(default_factory=list)
    """Decoded bytes of every ``image_url`` data-URI part received (when recording)."""


class MockOpenAIServer:
    """Serve chat completions on 127.0.0.1 (HTTP/1.1, keep-alive)."""

    def __init__(self, config: MockConfig | None = None, port: int = 0) -> None:
        self.config = config or MockConfig()
        self.state = MockState()
        self._rng = random.Random(self.config.seed)
        self._port = port
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        """Bind and start serving."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self._port)

    async def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.close()
            for task in list(self._handlers):
                task.cancel()
            if self._handlers:
                await asyncio.gather(*self._handlers, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    key = name.strip().lower()
                    if key == "content-length":
                        length = int(value.strip())
                    elif key == "authorization":
                        self.state.authorization.add(value.strip())
                body = await reader.readexactly(length) if length else b""
                status, payload, extra = await self._route(method, path, body)
                data = json.dumps(payload).encode("utf-8")
                headers = [
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'ERR'}",
                    "Content-Type: application/json",
                    f"Content-Length: {len(data)}",
                    *extra,
                ]
                writer.write(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if task is not None:
                self._handlers.discard(task)

    async def _route(self, method: str, path: str, body: bytes) -> tuple[int, Any, list[str]]:
        if path.endswith("/_stats"):
            return 200, {"requests": self.state.requests, "answered": self.state.answered}, []
        if path.endswith("/_reset"):
            self.state = MockState()
            return 200, {"ok": True}, []
        if method != "POST" or not path.endswith("/chat/completions"):
            return 404, {"error": {"message": f"no route {method} {path}"}}, []
        self.state.requests += 1
        cfg = self.config
        roll = self._rng.random()
        if roll < cfg.fail_500:
            return 500, {"error": {"message": "injected server error"}}, []
        if roll < cfg.fail_500 + cfg.fail_429:
            return 429, {"error": {"message": "rate limited"}}, [f"Retry-After: {cfg.retry_after}"]
        if roll < cfg.fail_500 + cfg.fail_429 + cfg.hang:
            await asyncio.sleep(cfg.hang_s)
        if cfg.latency_s:
            await asyncio.sleep(cfg.latency_s)
        request = json.loads(body)
        messages = request.get("messages", [])
        try:
            images = [part for m in messages for part in content_images(m.get("content"))]
        except ValueError as exc:
            return 400, {"error": {"message": str(exc)}}, []
        text = cfg.request_responder(request) if cfg.request_responder else cfg.responder(messages)
        if cfg.record:
            self.state.answered.append(message_text(messages[-1]) if messages else "")
            self.state.images.extend(images)
        return (
            200,
            {
                "id": "mock",
                "object": "chat.completion",
                "model": request.get("model", "mock"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            },
            [],
        )


def message_text(message: dict[str, Any]) -> str:
    """The text of a message: its content, or the text parts of a content-part list."""
    content = message.get("content", "")
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return str(content)


_DATA_URI = re.compile(r"^data:(image/png|image/jpeg);base64,([A-Za-z0-9+/=]+)$")
_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}


def content_images(content: Any) -> list[bytes]:
    """The decoded images of a content-part list, checked as OpenAI's API would: text parts
    hold text, ``image_url`` parts a PNG or JPEG data URI whose bytes match its media type."""
    if not isinstance(content, list):
        return []
    images = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            continue
        if kind != "image_url":
            raise ValueError(f"content[{i}]: unknown part type {kind!r}")
        url = (part.get("image_url") or {}).get("url", "")
        match = _DATA_URI.match(url) if isinstance(url, str) else None
        if match is None:
            raise ValueError(f"content[{i}]: image_url must be a PNG or JPEG base64 data URI")
        data = base64.b64decode(match.group(2), validate=True)
        if not data.startswith(_MAGIC[match.group(1)]):
            raise ValueError(f"content[{i}]: bytes are not {match.group(1)}")
        images.append(data)
    return images


class ThreadedMockServer:
    """Run a :class:`MockOpenAIServer` in a background thread (for synchronous tests)."""

    def __init__(self, config: MockConfig | None = None) -> None:
        self.server = MockOpenAIServer(config)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.server.start())
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> MockOpenAIServer:
        self._thread.start()
        self._ready.wait(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (less CPU per request), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: serve until killed; prints the port on the first line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--fail-500", type=float, default=0.0)
    parser.add_argument("--fail-429", type=float, default=0.0)
    parser.add_argument("--retry-after", default="0.05")
    parser.add_argument("--hang", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    config = MockConfig(
        latency_s=args.latency,
        fail_500=args.fail_500,
        fail_429=args.fail_429,
        retry_after=args.retry_after,
        hang=args.hang,
        seed=args.seed,
        record=not args.no_record,
    )

    async def serve() -> None:
        server = MockOpenAIServer(config, port=args.port)
        await server.start()
        print(server.port, flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=loop_factory()) as r:
        r.run(serve())


if __name__ == "__main__":
    main()
