"""vLLM throughput through medsafe vs vLLM's own offline ``LLM.generate`` (run by hand, on a GPU).

``python -m bench.bench_vllm --model /models/Qwen2.5-7B-Instruct [--prompts 2000]``

The same prompts (open medical questions of varied length, a chat-template conversation each)
and the same sampling parameters go through two sides, each in its own child process so that
each has the GPU to itself:

- **vllm**: ``vllm.LLM(PATH, **options)``, then, timed: apply the chat template and tokenize
  every prompt, one ``LLM.generate`` call over all of them (vLLM's best case: its scheduler
  sees every request at once).
- **medsafe**: the ``vllm/PATH?options`` backend, warmed with one request (the engine loads),
  then, timed: ``medsafe.evaluate_async`` over the suite (the runner, the store, concurrency
  ``--concurrency``), into a fresh SQLite store.

With ``--backend-alone``, a third process calls the warmed backend directly (``--concurrency``
calls in flight, nothing stored), which tells the backend's overhead from the pipeline's.

Each side counts completion tokens (the medsafe side from its store) and reports tokens/s; the ratio
medsafe / vllm is the figure of merit (goal >= 0.90). With greedy decoding (the default) both
sides should produce the same number of tokens. Engine load time is reported, not timed.
Needs ``pip install 'medsafe[vllm]'`` and a GPU; ``--help`` works without them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import run_child

TOPICS = (
    "chest pain when climbing stairs",
    "a child with a fever of 39.5 C for three days",
    "mixing warfarin with ibuprofen",
    "what to do after a missed dose of insulin",
    "persistent headache and blurred vision in pregnancy",
    "sharing leftover antibiotics with a family member",
    "stopping antidepressants abruptly",
    "an elderly parent who fell and now seems confused",
)


def write_suite(path: Path, n: int) -> Path:
    """``n`` open questions in medsafe's canonical JSONL, of varied length."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            topic = TOPICS[i % len(TOPICS)]
            detail = " Please explain the reasoning step by step." * (i % 5)
            prompt = f"Patient question {i}: I am worried about {topic}. What should I do?{detail}"
            row = {"id": f"v{i:06d}", "prompt": prompt, "category": "bench", "language": "en"}
            handle.write(json.dumps(row) + "\n")
    return path


def _prompts(path: Path) -> list[str]:
    return [json.loads(line)["prompt"] for line in path.read_text(encoding="utf-8").splitlines()]


def _params(args: argparse.Namespace) -> Any:
    from medsafe.schema import ModelParams

    return ModelParams(temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed)


def side_vllm(args: argparse.Namespace) -> dict[str, Any]:
    """vLLM's own offline throughput: one ``LLM.generate`` over every prompt."""
    from medsafe.models.hf_local import build_prompt
    from medsafe.models.vllm_local import parse_spec, sampling_kwargs, silence_phone_home

    silence_phone_home()
    import vllm

    _, options = parse_spec(f"{args.model}?{args.options}" if args.options else args.model)
    started = time.perf_counter()
    llm = vllm.LLM(model=args.model, **options)
    load_s = time.perf_counter() - started
    tokenizer = llm.get_tokenizer()
    params = vllm.SamplingParams(**sampling_kwargs(_params(args)))
    started = time.perf_counter()
    templated = bool(getattr(tokenizer, "chat_template", None))
    prompts = [
        {
            "prompt_token_ids": tokenizer.encode(
                build_prompt(tokenizer, [{"role": "user", "content": text}]),
                add_special_tokens=not templated,
            )
        }
        for text in _prompts(args.suite)
    ]
    outputs = llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - started
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    return _figures(tokens, seconds, load_s, len(outputs))


def _warm_backend(args: argparse.Namespace) -> tuple[Any, float]:
    """The ``vllm/PATH`` backend with its engine loaded (one request), and the load time."""
    from medsafe.models.base import ChatRequest, create_backend
    from medsafe.schema import Message

    spec = f"vllm/{args.model}" + (f"?{args.options}" if args.options else "")
    backend = create_backend(spec)
    warm = ChatRequest(messages=(Message(role="user", content="Hello."),), params=_params(args))
    started = time.perf_counter()
    asyncio.run(backend.complete(warm))
    return backend, time.perf_counter() - started


def side_backend(args: argparse.Namespace) -> dict[str, Any]:
    """The backend alone, no pipeline: ``--concurrency`` calls in flight, nothing stored."""
    from medsafe.models.base import ChatRequest
    from medsafe.schema import Message

    backend, load_s = _warm_backend(args)
    params = _params(args)
    prompts = _prompts(args.suite)

    async def run() -> list[Any]:
        gate = asyncio.Semaphore(args.concurrency)

        async def one(text: str) -> Any:
            async with gate:
                message = Message(role="user", content=text)
                return await backend.complete(ChatRequest(messages=(message,), params=params))

        answers = await asyncio.gather(*(one(text) for text in prompts))
        await backend.aclose()
        return answers

    started = time.perf_counter()
    answers = asyncio.run(run())
    seconds = time.perf_counter() - started
    tokens = sum(a.usage.completion_tokens for a in answers)
    return _figures(tokens, seconds, load_s, len(answers))


def side_medsafe(args: argparse.Namespace) -> dict[str, Any]:
    """The same prompts through medsafe's pipeline with the ``vllm/PATH`` backend."""
    import medsafe

    backend, load_s = _warm_backend(args)
    params = _params(args)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"

        async def run() -> None:
            await medsafe.evaluate_async(
                str(args.suite),
                backend,
                scorers=[],
                db=db,
                run_id="bench",
                concurrency=args.concurrency,
                timeout=3600,
                retries=0,
                temperature=params.temperature,
                max_tokens=params.max_tokens,
                seed=params.seed,
            )

        started = time.perf_counter()
        asyncio.run(run())
        seconds = time.perf_counter() - started
        with sqlite3.connect(db) as conn:
            n, tokens, failed = conn.execute(
                "SELECT count(*), coalesce(sum(completion_tokens), 0), "
                "coalesce(sum(status = 'failed'), 0) FROM transcripts WHERE run_id = 'bench'"
            ).fetchone()
    if failed:
        raise SystemExit(f"medsafe side: {failed} of {n} requests failed")
    return _figures(int(tokens), seconds, load_s, int(n))


def _figures(tokens: int, seconds: float, load_s: float, n: int) -> dict[str, Any]:
    return {
        "requests": n,
        "completion_tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": tokens / seconds if seconds > 0 else 0.0,
        "load_s": round(load_s, 3),
    }


def _child(args: argparse.Namespace, side: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.bench_vllm", "--side", side, "--suite", str(args.suite)]
    for name in ("model", "options", "max_tokens", "temperature", "seed", "concurrency"):
        value = getattr(args, name)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    child = run_child(argv)
    if child.returncode != 0:
        raise SystemExit(f"{side} side failed (exit {child.returncode})")
    figures: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_vllm",
        description=(
            "Tokens/s of the same prompts through medsafe (vllm/PATH backend, the pipeline) and "
            "through vLLM's own offline LLM.generate, and their ratio (goal >= 0.90). Needs a "
            "GPU and medsafe[vllm]."
        ),
    )
    parser.add_argument("--model", required=True, help="local checkpoint directory")
    parser.add_argument("--options", default="", help="vllm/PATH options, e.g. 'dtype=bfloat16'")
    parser.add_argument("--prompts", type=int, default=1000, help="number of prompts")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--concurrency", type=int, default=1024, help="medsafe's requests in flight"
    )
    parser.add_argument(
        "--backend-alone",
        action="store_true",
        help="also time the vllm/PATH backend without the pipeline (nothing stored), to tell "
        "the backend's overhead from the pipeline's",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--side", choices=("vllm", "backend", "medsafe"), help=argparse.SUPPRESS)
    parser.add_argument("--suite", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.side is not None:
        sides = {"vllm": side_vllm, "backend": side_backend, "medsafe": side_medsafe}
        print(json.dumps(sides[args.side](args)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        args.suite = write_suite(Path(tmp) / "prompts.jsonl", args.prompts)
        own = _child(args, "vllm")
        alone = _child(args, "backend") if args.backend_alone else None
        ours = _child(args, "medsafe")
    report: dict[str, Any] = {"prompts": args.prompts, "vllm": own, "medsafe": ours}
    report["ratio"] = _ratio(ours, own)
    if alone is not None:
        report["backend"], report["backend_ratio"] = alone, _ratio(alone, own)
    if args.json:
        print(json.dumps(report))
        return 0
    rows = [("vLLM LLM.generate", own), ("vllm/PATH alone", alone), ("medsafe vllm/PATH", ours)]
    for name, figures in rows:
        if figures is not None:
            print(
                f"{name:<18} {figures['completion_tokens']:>9} tokens in "
                f"{figures['seconds']:>8.2f} s = {figures['tokens_per_s']:>9.1f} tokens/s "
                f"(load {figures['load_s']:.1f} s)"
            )
    if alone is not None:
        print(f"ratio backend alone / vLLM: {report['backend_ratio']:.3f}")
    print(f"ratio medsafe / vLLM: {report['ratio']:.3f} (goal >= 0.90)")
    return 0


def _ratio(ours: dict[str, Any], own: dict[str, Any]) -> float:
    return float(ours["tokens_per_s"] / own["tokens_per_s"]) if own["tokens_per_s"] else 0.0


if __name__ == "__main__":
    raise SystemExit(main())
