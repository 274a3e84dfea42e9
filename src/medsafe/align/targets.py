"""Where to aim the next training data: the run's worst categories, with their intervals.

Categories are ranked by the upper bound of the safety metric's 95% interval (lowest first: the
categories that are *surely* bad come before small ones that are merely noisy), then by the mean.
The items of those categories whose answers were judged unsafe are the seeds of the targeted
loop (MedES's guardian-in-the-loop): paraphrase or generate around them (``medsafe generate``),
answer with a teacher (``align build --teacher``), and build again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from medsafe.align.candidates import run_candidates
from medsafe.errors import ConfigError
from medsafe.outputs import staged, stderr_note
from medsafe.results import load_results
from medsafe.results.models import Estimate
from medsafe.schema import Item
from medsafe.store.sqlite import Store


@dataclass(frozen=True)
class Target:
    """One category of the run with its safety estimate and its failing items."""

    category: str
    estimate: Estimate
    failing: tuple[Item, ...]


def worst_categories(db: Path, run_id: str, scorer: str = "guardian", top: int = 3) -> list[Target]:
    """The ``top`` categories ranked by the upper 95% bound of ``scorer``'s mean."""
    results = load_results(db, run_id)
    block = results.scorers.get(scorer)
    if block is None:
        known = ", ".join(sorted(results.scorers)) or "none"
        raise ConfigError(f"run {run_id!r} has no {scorer!r} scores (scorers: {known})")
    ranked = sorted(
        (
            (cat, group.estimate)
            for cat, group in block.by_category.items()
            if group.estimate.value is not None
        ),
        key=lambda pair: (pair[1].hi if pair[1].hi is not None else 1.0, pair[1].value or 0.0),
    )[: max(top, 0)]
    wanted = {cat for cat, _ in ranked}
    failing: dict[str, list[Item]] = {cat: [] for cat in wanted}
    with Store(db) as store:
        for c in run_candidates(store, run_id, scorer):
            if c.verdict == "unsafe" and c.item.category in wanted:
                failing[c.item.category].append(c.item)
    return [Target(cat, est, tuple(failing[cat])) for cat, est in ranked]


def write_seeds(path: Path, targets: list[Target]) -> int:
    """The failing items of ``targets`` as a JSONL suite (atomically); returns how many."""
    items = [item for t in targets for item in t.failing]
    with staged(path, stderr_note) as tmp:
        tmp.write_text(
            "".join(
                json.dumps(i.model_dump(mode="json", exclude_defaults=True), ensure_ascii=False)
                + "\n"
                for i in items
            ),
            encoding="utf-8",
        )
    return len(items)
