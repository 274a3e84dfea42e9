"""The floor for ``bench_runner``: the least any aiohttp client can do on the same workload.

Run by ``python -m bench.bench_runner --floor`` as its own child process. It reads the same MCQ
suite and sends user messages of the same shape (instruction, stem, one line per option;
medsafe's renderer is not imported, so pydantic's import time is not counted). It keeps
``--concurrency`` requests in flight over one pooled aiohttp session on uvloop, as medsafe does,
and parses each answer's JSON, but stores, caches, scores and retries nothing. Its wall time
(start-up included) is what the mock server, aiohttp and Python start-up cost by themselves;
medsafe's wall time minus this one is medsafe's own overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import aiohttp
import uvloop

INSTRUCTION = (
    "Answer the following multiple-choice question. Exactly one option is correct. "
    "End your reply with a line of the form 'Answer: X'."
)


def prompts(suite: Path) -> list[str]:
    """Each item's user message: instruction, stem, then ``X. text`` per option."""
    out: list[str] = []
    with suite.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            options = [f"{key}. {text}" for key, text in sorted(row["options"].items())]
            out.append("\n".join([INSTRUCTION, "", row["question"], "", *options]))
    return out


async def ask_all(base_url: str, texts: list[str], concurrency: int) -> int:
    """Ask every prompt with ``concurrency`` workers; return how many got a 200 answer."""
    pending = iter(texts)
    answered = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:

        async def worker() -> None:
            nonlocal answered
            for text in pending:
                body = {
                    "model": "mock",
                    "messages": [{"role": "user", "content": text}],
                    "temperature": 0.0,
                    "max_tokens": 512,
                }
                async with session.post(f"{base_url}/chat/completions", json=body) as response:
                    data = json.loads(await response.read())
                if response.status == 200 and data["choices"][0]["message"]["content"]:
                    answered += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answered


def main() -> None:
    """Ask the suite's prompts and print ``{"n", "ok"}``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("suite", type=Path)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    texts = prompts(args.suite)
    ok = uvloop.run(ask_all(args.base_url, texts, args.concurrency))
    print(json.dumps({"n": len(texts), "ok": ok}))


if __name__ == "__main__":
    main()
