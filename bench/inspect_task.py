"""The benchmark's MCQ workload as an Inspect AI task (for ``bench.bench_inspect``).

Runs under the separate ``.venv-inspect`` interpreter, never under medsafe's: it imports
``inspect_ai`` (not a medsafe dependency) and nothing from medsafe. It reads the same canonical
JSONL suite that ``bench.common.write_mcq_suite`` writes and renders each item into exactly the
user message medsafe sends (``medsafe.suites.prompting.render_mcq``, English, single answer), so
the mock server answers both tools identically and their accuracies must agree.

    inspect eval bench/inspect_task.py -T suite=SUITE.jsonl --model openai/mock \\
        --model-base-url http://127.0.0.1:PORT/v1 --max-connections 64 --display none

``-T solver=multiple_choice`` uses Inspect's own MCQ solver and ``choice()`` scorer instead of
``generate()`` + ``match()`` (its prompt differs from medsafe's, so accuracies then differ).
"""

from __future__ import annotations

import json
from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import choice, match
from inspect_ai.solver import generate, multiple_choice

# Kept identical to medsafe.suites.prompting._INSTRUCTIONS["en"][0].
INSTRUCTION = (
    "Answer the following multiple-choice question. Exactly one option is correct. "
    "End your reply with a line of the form 'Answer: X'."
)


def render_mcq(question: str, options: dict[str, str]) -> str:
    """medsafe's rendering: instruction, stem, then one ``X. text`` line per option."""
    lines = [INSTRUCTION, "", question.strip(), ""]
    lines += [f"{letter}. {options[letter].strip()}" for letter in sorted(options)]
    return "\n".join(lines)


def load_samples(suite: Path, rendered: bool) -> list[Sample]:
    """One Sample per JSONL row; ``rendered`` puts medsafe's full prompt in the input."""
    samples: list[Sample] = []
    with suite.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            options: dict[str, str] = row["options"]
            samples.append(
                Sample(
                    id=row["id"],
                    input=render_mcq(row["question"], options) if rendered else row["question"],
                    target=row["answer"],
                    choices=[options[letter] for letter in sorted(options)],
                    metadata={"category": row.get("category", "")},
                )
            )
    return samples


@task
def mcq_bench(suite: str, solver: str = "generate") -> Task:
    """The N-item suite: ``generate()`` + ``match()``, or ``multiple_choice()`` + ``choice()``."""
    if solver == "generate":
        dataset = MemoryDataset(load_samples(Path(suite), rendered=True), name="mcq-bench")
        return Task(dataset=dataset, solver=generate(), scorer=match(location="end"))
    if solver == "multiple_choice":
        dataset = MemoryDataset(load_samples(Path(suite), rendered=False), name="mcq-bench")
        return Task(dataset=dataset, solver=multiple_choice(), scorer=choice())
    raise ValueError(f"solver must be 'generate' or 'multiple_choice', not {solver!r}")
