"""Benchmarks of medsafe's authoring (run by hand; figures in docs/authoring.md).

    .venv/bin/python bench/bench_authoring.py minhash --n 100000
    .venv/bin/python bench/bench_authoring.py paraphrase --n 400
    .venv/bin/python bench/bench_authoring.py generate --docs 260 --sections 13 \
        --concurrency 64 --latency 0.05

- ``minhash``: the MinHash/LSH stage of :func:`medsafe.authoring.dedup.near_duplicates` over
  N synthetic zh/ja/en texts (1% planted near-duplicates); wall time and peak RSS (limit: 60 s,
  1 GiB for 100,000).
- ``paraphrase``: the embedding stage over N texts in one group: seconds per text embedded
  and per candidate pair compared.
- ``generate``: ``medsafe generate`` (no validator) from a synthetic corpus of DOCS documents
  of SECTIONS articles against the loopback mock (latency L, concurrency C, scripted replies);
  wall time against the ideal requests x L / C.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = {
    "en": [
        "patient",
        "doctor",
        "nurse",
        "consent",
        "risk",
        "dose",
        "drug",
        "record",
        "privacy",
        "surgery",
        "care",
        "family",
        "hospital",
        "ethics",
        "report",
        "error",
        "refuse",
        "treatment",
        "explain",
        "harm",
        "safety",
    ],
    "zh": list(
        "患者医生护士同意风险剂量药物记录隐私手术护理家属医院伦理报告差错拒绝治疗说明伤害安全"
    ),
    "ja": list("患者医師看護同意危険用量薬記録秘密手術家族病院倫理報告誤り拒否治療説明安全です"),
}


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    for i in range(n):
        if i and rng.random() < 0.01:  # a planted near-duplicate of an earlier text
            out.append(out[rng.randrange(i)] + "。")
            continue
        lang = ("en", "zh", "ja")[i % 3]
        words = [rng.choice(WORDS[lang]) for _ in range(rng.randint(12, 30))]
        out.append((" " if lang == "en" else "").join(words) + f" {i}")
    return out


def bench_minhash(n: int) -> dict[str, Any]:
    from medsafe.authoring.dedup import near_duplicates

    texts = _texts(n)
    started = time.perf_counter()
    pairs = near_duplicates(texts, paraphrase_threshold=None)
    wall = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"n": n, "seconds": round(wall, 2), "peak_rss_mib": round(rss), "removed": len(pairs)}


def bench_paraphrase(n: int) -> dict[str, Any]:
    from medsafe.authoring import dedup

    texts = _texts(n, seed=1)
    dedup._embed(texts[:4])  # load the model once
    started = time.perf_counter()
    vecs = dedup._embed(texts)
    embed_s = time.perf_counter() - started
    started = time.perf_counter()
    found = dedup._embedding_stage(texts, [], list(range(n)), ["g"] * n, 0.99)
    compare_s = time.perf_counter() - started  # the texts' embeddings come from the cache
    pairs = n * (n - 1) // 2
    return {"n": n, "embed_s_per_text": round(embed_s / n, 4),
            "compare_s_total": round(compare_s, 3),
            "compare_us_per_pair": round(compare_s / pairs * 1e6, 3),
            "dim": int(vecs.shape[1]), "removed": len(found)}  # fmt: skip


def _corpus(folder: Path, docs: int, sections: int) -> None:
    rng = random.Random(2)
    for d in range(docs):
        lines = [f"# Chapter 1 Document {d}"]
        for s in range(1, sections + 1):
            words = " ".join(rng.choice(WORDS["en"]) for _ in range(14))
            lines.append(f"{s}. A physician must {words} (doc {d} art {s}).")
        (folder / f"doc{d:03d}.md").write_text("\n\n".join(lines) + "\n", encoding="utf-8")


_SERVE = """
import asyncio, sys
sys.path.insert(0, {tests!r})
from medsafe.testing.mock_openai import MockConfig, MockOpenAIServer, loop_factory
from test_authoring_support import respond

async def serve():
    server = MockOpenAIServer(MockConfig(responder=respond, latency_s={latency!r}, record=False))
    await server.start()
    print(server.port, flush=True)
    await asyncio.Event().wait()

with asyncio.Runner(loop_factory=loop_factory()) as runner:
    runner.run(serve())
"""


def bench_generate(docs: int, sections: int, concurrency: int, latency: float) -> dict[str, Any]:
    """The mock runs in its own process (as a real server would), with the tests' replies."""
    import subprocess

    import httpx

    from medsafe.authoring.corpus import import_path
    from medsafe.authoring.generate import GenerateOptions, generate_release
    from medsafe.authoring.stages import ModelTarget
    from medsafe.pipeline import run_async
    from medsafe.store.sqlite import Store

    tmp = Path(tempfile.mkdtemp(prefix="bench-authoring-"))
    (tmp / "docs").mkdir()
    _corpus(tmp / "docs", docs, sections)
    db = tmp / "m.db"
    with Store(db) as store:
        import_path(store.connection, "bench", tmp / "docs")
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    code = _SERVE.format(tests=tests, latency=latency)
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        base_url = f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
        target = ModelTarget("openai/gen", base_url, concurrency=concurrency)
        options = GenerateOptions(db=db, corpus="bench", generator=target, out=tmp / "out")
        started = time.perf_counter()
        release = run_async(generate_release(options))
        wall = time.perf_counter() - started
        requests = int(httpx.get(base_url + "/_stats").json()["requests"])
    finally:
        server.kill()
        server.wait()
    counts = release.manifest["counts"]
    ideal = requests * latency / concurrency
    return {
        "documents": docs,
        "sections": docs * sections,
        "requests": requests,
        "items": counts["items"] + counts["seeds"],
        "seconds": round(wall, 1),
        "ideal_seconds": round(ideal, 1),
        "ratio": round(wall / ideal, 2) if ideal else None,
        "folder": str(tmp),
    }


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("minhash")
    p.add_argument("--n", type=int, default=100_000)
    p = sub.add_parser("paraphrase")
    p.add_argument("--n", type=int, default=400)
    p = sub.add_parser("generate")
    p.add_argument("--docs", type=int, default=260)
    p.add_argument("--sections", type=int, default=13)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    if args.what == "minhash":
        result = bench_minhash(args.n)
    elif args.what == "paraphrase":
        result = bench_paraphrase(args.n)
    else:
        result = bench_generate(args.docs, args.sections, args.concurrency, args.latency)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
