"""A head's figures on the independent evaluation set (:mod:`medsafe.guardian.independent`).

The rows were written apart from the training data and are never trained on. Each is judged
the way a run judges it (:meth:`Guardian.classify_many`: readable text, answer windows,
thresholds); an ``uncertain`` verdict counts as wrong and coverage is reported. Accuracy,
macro-F1 and per-class precision/recall/F1 come with 95% CIs (Wilson; cluster bootstrap over
prompts), with accuracy per language and per stratum (``adversarial``, ``long``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medsafe.guardian.evaluation import GuardianEvaluation, evaluate
from medsafe.guardian.model import LABELS, SHIPPED_HEAD, Guardian

N_BOOT = 2000


def independent_rows(include_medsafetybench: bool = True) -> list[dict[str, Any]]:
    """The independent sets' rows (with the MedSafetyBench sample when present and asked for)."""
    from medsafe.guardian.independent import load_independent_set

    return load_independent_set(include_medsafetybench=include_medsafetybench)


def evaluate_rows(
    guardian: Guardian, rows: list[dict[str, Any]], *, seed: int = 0
) -> GuardianEvaluation:
    """``guardian``'s figures on labelled rows (``prompt``, ``response``, ``label``, optional
    ``language``, and ``stratum`` and ``set``, the strata)."""
    if not rows:
        raise ValueError("no rows to evaluate")
    return _figures(rows, _predict(guardian, rows), seed)


def _predict(guardian: Guardian, rows: list[dict[str, Any]]) -> list[str]:
    verdicts = guardian.classify_many([(str(r["prompt"]), str(r["response"])) for r in rows])
    return [v.label for v in verdicts]


def _figures(rows: list[dict[str, Any]], predicted: list[str], seed: int) -> GuardianEvaluation:
    return evaluate(
        [str(r["label"]) for r in rows],
        predicted,
        LABELS,
        groups=[" ".join(str(r["prompt"]).split()) for r in rows],
        languages=[str(r.get("language", "?")) for r in rows],
        strata=[
            tuple(dict.fromkeys(str(r[k]) for k in ("stratum", "set") if r.get(k))) for r in rows
        ],
        n_boot=N_BOOT,
        seed=seed,
    )


def evaluate_sets(
    guardian: Guardian, rows: list[dict[str, Any]], *, seed: int = 0
) -> tuple[GuardianEvaluation, dict[str, GuardianEvaluation]]:
    """The figures on all ``rows`` and on each ``set`` alone (``set-1``, ``set-2``, ...), from
    one pass of the guardian: each set's unsafe recall and adversarial accuracy with CIs."""
    if not rows:
        raise ValueError("no rows to evaluate")
    predicted = _predict(guardian, rows)
    by_set: dict[str, GuardianEvaluation] = {}
    for name in dict.fromkeys(str(r.get("set", "")) for r in rows):
        index = [i for i, r in enumerate(rows) if str(r.get("set", "")) == name]
        if name and len(index) < len(rows):
            by_set[name] = _figures([rows[i] for i in index], [predicted[i] for i in index], seed)
    return _figures(rows, predicted, seed), by_set


def evaluate_independent_sets(
    head: Path = SHIPPED_HEAD, *, include_medsafetybench: bool = True
) -> tuple[GuardianEvaluation, dict[str, GuardianEvaluation]]:
    """The head's figures on the independent sets together and on each set alone."""
    return evaluate_sets(Guardian.load(head), independent_rows(include_medsafetybench))
