"""The typed, versioned results of one run: what ``medsafe results --json`` prints.

Every consumer (CLI text, JSON, HTML/PDF report, ``compare``, the gate, the workbench, the
alignment builder) reads these objects; none computes an aggregate of its own. The top level
stays flat with the field names ``results --json`` always had; every figure a gate may use is
an :class:`Estimate` ``{value, ci95, n, method}``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from medsafe.scale import Scale
from medsafe.schema import RunSpec

SCHEMA_VERSION = 1
"""Bumped whenever a field changes meaning or goes away (new fields do not bump it)."""

IntervalMethod = Literal[
    "wilson",
    "bootstrap_percentile",
    "normal",
    "cluster_bootstrap",
    "rogan_gladen_bootstrap",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Estimate(_Model):
    """One figure with its 95% interval, the number of units behind it and how the interval
    was computed (docs/statistics.md says which method each metric uses)."""

    value: float | None
    ci95: tuple[float, float] | None
    n: int
    method: IntervalMethod | None

    @property
    def lo(self) -> float | None:
        """Lower bound of the interval, or None."""
        return None if self.ci95 is None else self.ci95[0]

    @property
    def hi(self) -> float | None:
        """Upper bound of the interval, or None."""
        return None if self.ci95 is None else self.ci95[1]


class GroupCounts(_Model):
    """Items, generations and MCQ accuracy of a run or of one category/language."""

    n: int
    ok: int
    failed: int
    pending: int
    mcq_answered: int
    correct: int
    unextracted: int
    accuracy: float | None
    """correct / mcq_answered (an unextracted answer counts as not correct)."""
    ci95: tuple[float, float] | None
    """Wilson interval of ``accuracy``."""
    accuracy_extracted: float | None
    """correct / (mcq_answered - unextracted)."""
    partial_credit: float | None
    mcq: Estimate
    """``accuracy`` as a uniform block (the same number and interval)."""


class ScoreGroup(_Model):
    """One scorer's figures in one category: counts, mean and the harmful share."""

    n: int
    ok: int
    failed: int
    skipped: int
    mean: float | None
    ci95: tuple[float, float] | None
    ci_method: IntervalMethod | None
    estimate: Estimate
    harmful_share: Estimate | None = None
    """Share of verdicts positive under the scale's rule (None when it has no rule)."""


class Calibration(_Model):
    """The latest stored calibration of this scorer and judge against human labels."""

    created: str
    scorer_version: str
    version_matches: bool
    labels_sha256: str | None
    n: int | None
    failure_rate: float | None
    accuracy: float | None
    ci95: tuple[float, float] | None
    kappa: float | None
    positive: str | None
    sensitivity: float | None
    specificity: float | None


class CorrectedRate(_Model):
    """The positive rate corrected for the judge's errors (Rogan-Gladen)."""

    positive: str
    n: int
    observed: float
    corrected: float
    ci95: tuple[float, float]
    method: Literal["rogan_gladen_bootstrap"]
    estimate: Estimate


class Disagreements(_Model):
    """Units where judges differ by more than the threshold."""

    threshold: float
    value: float | None
    ci95: tuple[float, float] | None
    n: int
    units: list[dict[str, Any]]


class Agreement(_Model):
    """Agreement between two or more judges of one scorer."""

    judges: list[str]
    n_units: int
    kappa: float | None
    kappa_basis: str
    alpha: float | None
    alpha_level: str
    spearman: float | None
    spearman_p: float | None
    disagreements: Disagreements
    pairs: dict[str, dict[str, Any]] | None = None


class LabelFigures(_Model):
    """One label of a detection scorer: precision, recall and F1 with cluster bootstrap
    intervals, reference positives (``support``) and predicted positives."""

    precision: Estimate
    recall: Estimate
    f1: Estimate
    support: int
    predicted: int


class ClassFigures(_Model):
    """One class of a classification scorer (one-vs-rest, Wilson intervals)."""

    sensitivity: Estimate
    specificity: Estimate
    ppv: Estimate
    f1: float | None
    support: int


class ClassificationFigures(_Model):
    """Classification scorers: per class, confusion matrix (rows reference, columns answer),
    macro-F1, Cohen's kappa against the reference and accuracy by modality."""

    classes: list[str]
    per_class: dict[str, ClassFigures]
    confusion: list[list[int]]
    accuracy: Estimate
    macro_f1: float | None
    kappa: float | None
    by_modality: dict[str, Estimate]
    unparsed: int


class AdditionalDiscoveries(_Model):
    """Model-flagged labels the reference lacks (docs/imaging.md): how many, their rate per
    item, and how many reviewers confirmed; precision before and after confirmation."""

    flagged: int
    reviewed: int
    confirmed: int
    rate: Estimate
    confirmed_rate: Estimate | None
    precision_before: Estimate
    precision_after: Estimate | None


class ScorerResults(_Model):
    """One scorer (and judge): counts, labels, mean with CI, by category, scale-derived rates."""

    scorer: str
    judge: str
    scale: Scale
    n: int
    """Score rows (a dialogue contributes one per judged turn)."""
    ok: int
    failed: int
    skipped: int
    failure_rate: float | None
    """failed / (ok + failed): judge failures; skipped rows (failed generations) excluded."""
    mean: float | None
    ci95: tuple[float, float] | None
    ci_method: IntervalMethod | None
    estimate: Estimate
    """The item-level mean: an item's whole-transcript value, or the mean of its turn values."""
    per_turn: bool
    """True when the scorer scores turns only (the item value is the mean over its turns)."""
    labels: dict[str, int]
    by_category: dict[str, ScoreGroup]
    harmful_share: Estimate | None = None
    quality_score: Estimate | None = None
    """MedES-style quality of the answers that were not risky (scores carrying ``quality``)."""
    calibration: Calibration | None = None
    corrected_rate: CorrectedRate | None = None
    headline: str | None = None
    """For a scorer's own entry: which ``scorer:judge`` block it repeats (the jury with 2+)."""
    judges: list[str] | None = None
    agreement: Agreement | None = None
    coverage: Estimate | None = None
    """Share of the judged units the headline covers: for a jury, units with a jury value out
    of the units any of its judges was asked about (Wilson interval)."""
    coverage_warning: str | None = None
    """Set when the units the jury leaves out differ by category from the ones it covers."""
    no_value: dict[str, int] = Field(default_factory=dict)
    """Ok verdicts without a value, by label (the guardian's ``unusable`` and ``uncertain``,
    always listed when the scale names them): they are left out of ``mean``."""
    denominator: str | None = None
    """What ``mean`` is over, in words, when some ok verdicts have no value."""
    human_agreement: Agreement | None = None
    """The final human labels (judge ``human``, from review tasks) against each LLM judge,
    on the units both rated (``human`` is never one of ``judges`` nor in the jury)."""
    per_label: dict[str, LabelFigures] | None = None
    """Detection scorers: figures per label of the label set (docs/imaging.md)."""
    macro_f1: Estimate | None = None
    micro_f1: Estimate | None = None
    exact_match: Estimate | None = None
    unparsed: int | None = None
    """Detection and classification: ok answers no label could be read from (not scored)."""
    location: Estimate | None = None
    """Report errors found with a location: share whose location (findings/impression) is right."""
    additional: AdditionalDiscoveries | None = None
    classification: ClassificationFigures | None = None


class TurnPoint(_Model):
    """A per-turn metric at one turn."""

    turn: int
    n: int
    n_conversations: int
    mean: float | None
    ci95: tuple[float, float] | None
    method: IntervalMethod | None = None
    """Cluster bootstrap over conversations (percentile, 2,000 resamples, seed 0) when at most
    1,000 conversations have the turn, else the normal approximation."""
    median: float | None = None
    median_ci95: tuple[float, float] | None = None


class TurnMetric(_Model):
    """Every per-turn statistic of one metric of a dialogue run (docs/redteam.md)."""

    metric: str
    scale: Scale
    n_conversations: int
    by_turn: list[TurnPoint]
    decline: dict[str, Any]
    asr: Estimate
    asr_by_strategy: dict[str, Estimate]
    asr_by_category: dict[str, Estimate]
    asr_by_language: dict[str, Estimate]
    first_break: dict[str, Any]
    cross_lingual: dict[str, Any]


class DialogueCounts(_Model):
    """Conversations by outcome, attacker refusals and Crescendo backtracks."""

    n: int
    ok: int
    failed: int
    pending: int
    attacker_refused: int
    backtracks: int


class Circular(_Model):
    """Circular evaluation over rotated MCQ items (``--rotate``)."""

    n_base: int
    n_incomplete: int
    n_rows: int
    circular_accuracy: float | None
    ci95: tuple[float, float] | None
    estimate: Estimate
    accuracy: float | None
    per_rotation: dict[str, Any]
    chosen_share: dict[str, Any]
    correct_share: dict[str, Any]
    position_bias: dict[str, Any]


class FlaggedUnit(_Model):
    """One flagged unit: the item, the 1-based assistant turn (None: the whole item), the flag."""

    item_id: str
    turn: int | None
    flag: str


class Flags(_Model):
    """Review flags: flagged items per flag, and the first flagged units (at most 100)."""

    counts: dict[str, int] = Field(default_factory=dict)
    units: list[FlaggedUnit] = Field(default_factory=list)
    truncated: bool = False
    """True when more units are flagged than are listed."""


class RunInfo(_Model):
    """Which run these are: its spec as stored and when it was made."""

    run_id: str
    created: str
    spec: RunSpec


class RunResults(_Model):
    """Everything medsafe knows about one run's results (``results --json``)."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    model: str
    run: RunInfo
    n: int
    ok: int
    failed: int
    pending: int
    mcq_answered: int
    correct: int
    unextracted: int
    accuracy: float | None
    ci95: tuple[float, float] | None
    accuracy_extracted: float | None
    partial_credit: float | None
    mcq: Estimate
    by_category: dict[str, GroupCounts]
    by_language: dict[str, GroupCounts]
    scorers: dict[str, ScorerResults]
    circular: Circular | None = None
    dialogues: DialogueCounts | None = None
    turn_metric: str | None = None
    """The primary per-turn metric; its blocks are repeated at the top level (below)."""
    by_turn: list[TurnPoint] | None = None
    decline: dict[str, Any] | None = None
    asr: Estimate | None = None
    asr_by_strategy: dict[str, Estimate] | None = None
    asr_by_category: dict[str, Estimate] | None = None
    asr_by_language: dict[str, Estimate] | None = None
    first_break: dict[str, Any] | None = None
    cross_lingual: dict[str, Any] | None = None
    turn_metrics: dict[str, TurnMetric] = Field(default_factory=dict)
    judge_agreement: dict[str, Any] | None = None
    flags: Flags = Field(default_factory=Flags)
    """Review flags (``suspected_injection``, judge disagreement, ...) with the flagged units."""

    def metric(self, name: str) -> ScorerResults:
        """The block of ``name`` (``scorer`` or ``scorer:judge``); KeyError lists the known."""
        try:
            return self.scorers[name]
        except KeyError:
            known = ", ".join(sorted(self.scorers)) or "none"
            raise KeyError(
                f"no metric {name!r} in run {self.run.run_id} (known: {known})"
            ) from None
