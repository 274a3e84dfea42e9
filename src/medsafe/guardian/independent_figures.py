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
    verdicts = guardian.classify_many([(str(r["prompt"]), str(r["response"])) for r in rows])
    return evaluate(
        [str(r["label"]) for r in rows],
        [v.label for v in verdicts],
        LABELS,
        groups=[" ".join(str(r["prompt"]).split()) for r in rows],
        languages=[str(r.get("language", "?")) for r in rows],
        strata=[
            tuple(dict.fromkeys(str(r[k]) for k in ("stratum", "set") if r.get(k))) for r in rows
        ],
        n_boot=N_BOOT,
        seed=seed,
    )


def evaluate_independent(
    head: Path = SHIPPED_HEAD, *, include_medsafetybench: bool = True
) -> GuardianEvaluation:
    """The head's figures on the independent sets."""
    return evaluate_rows(Guardian.load(head), independent_rows(include_medsafetybench))
