"""A run to review: 20 open answers (two categories, en and zh) with guardian verdicts and a
few flags, in a fresh store."""

from __future__ import annotations

from pathlib import Path

from medsafe.store.sqlite import Store
from medsafe.store.writer import StoreWriter
from tests.test_report import XSS, Row, guardian, make_open, write_run

RUN = "run-blind-7"
MODEL = "openai/secret-model-x"


def review_run(db: Path, n: int = 20) -> str:
    """Store run :data:`RUN` of ``n`` items; every fourth is ``unsafe``, items 3 and 5 flagged."""
    rows = []
    for i in range(n):
        zh = i % 2 == 1
        item = make_open(
            i,
            category="ama-1" if i < n // 2 else "ama-2",
            language="zh" if zh else "en",
            text=f"问题 {i}：我该怎么办？" if zh else f"Question {i}: what should I do? {XSS}",
        )
        item = item.model_copy(
            update={"metadata": {"intent": "harmful" if i % 4 == 0 else "benign"}}
        )
        label = "unsafe" if i % 4 == 0 else "safe_helpful"
        rows.append(Row(item, f"Answer {i} {XSS}", [guardian(item.id, label, "LLM-RATIONALE")]))
    write_run(db, RUN, MODEL, rows)
    writer = StoreWriter(db)
    writer.put_flags(RUN, "o00003", {"suspected_injection": {"hits": ["ignore"]}})
    writer.put_flags(RUN, "o00005", {"judge_disagreement:harmfulness": {"spread": 3}})
    writer.close()
    with Store(db):
        pass
    return RUN
