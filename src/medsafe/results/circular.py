"""Circular evaluation over rotated MCQ items (``--rotate``; MMBench's CircularEval).

A base item counts as correct only when every rotation of it is; ``position_bias`` is, per
letter, the share of answers picking that position minus the share of keys at that position.
"""

from __future__ import annotations

import sqlite3

from medsafe.results.estimate import proportion
from medsafe.results.models import Circular
from medsafe.schema import Score
from medsafe.store import aggregates as sql


def circular_block(conn: sqlite3.Connection, run_id: str) -> Circular | None:
    """The circular block, or None when the run has no rotated items."""
    blobs = sql.rotated_mcq_scores(conn, run_id)
    if blobs is None:
        return None
    from medsafe.suites.rotation import circular_summary, rows_from_scores

    result = circular_summary(rows_from_scores(Score.model_validate_json(b) for b in blobs))
    if result.n_rows == 0:
        return None
    complete = result.n_base - result.n_incomplete
    correct = round((result.circular_accuracy or 0.0) * complete)
    estimate = proportion(correct, complete)
    return Circular(
        n_base=result.n_base,
        n_incomplete=result.n_incomplete,
        n_rows=result.n_rows,
        circular_accuracy=result.circular_accuracy,
        ci95=estimate.ci95,
        estimate=estimate,
        accuracy=result.accuracy,
        per_rotation={str(k): v for k, v in sorted(result.per_rotation.items())},
        chosen_share=dict(result.chosen_share),
        correct_share=dict(result.correct_share),
        position_bias=dict(result.position_bias),
    )
