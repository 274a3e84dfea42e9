"""Statistics for medsafe reports: intervals, paired tests, power, agreement, calibration.

Pure functions over numpy arrays / sequences. Results are frozen dataclasses with a
``to_dict()`` that gives plain JSON (non-finite floats become ``None``). Every resampling
function takes ``seed`` (an int or a ``numpy.random.Generator``) and is deterministic given
it. Formulas and citations: ``docs/statistics.md``.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medsafe.stats.agreement import cohen_kappa, disagreements, krippendorff_alpha, spearman
    from medsafe.stats.calibration import classification_report
    from medsafe.stats.intervals import bootstrap_ci, cluster_bootstrap_ci, wilson
    from medsafe.stats.multiple import adjust_pvalues
    from medsafe.stats.paired import (
        friedman,
        mcnemar,
        paired_bootstrap_diff,
        rank_biserial,
        wilcoxon_signed_rank,
    )
    from medsafe.stats.power import connor_n, minimum_detectable_effect
    from medsafe.stats.prevalence import corrected_rate, corrected_rate_ci
    from medsafe.stats.proportions import proportion_difference
    from medsafe.stats.quantile import median_ci
    from medsafe.stats.reliability import fleiss_kappa, gwet_ac1
    from medsafe.stats.results import (
        DetectableEffect,
        Disagreements,
        Estimate,
        Interval,
        PairedDiff,
        TestResult,
        TurnSummary,
    )
    from medsafe.stats.turns import by_turn_summary

_EXPORTS: dict[str, str] = {
    "DetectableEffect": "results",
    "Disagreements": "results",
    "Estimate": "results",
    "Interval": "results",
    "PairedDiff": "results",
    "TestResult": "results",
    "TurnSummary": "results",
    "adjust_pvalues": "multiple",
    "bootstrap_ci": "intervals",
    "by_turn_summary": "turns",
    "classification_report": "calibration",
    "cluster_bootstrap_ci": "intervals",
    "cohen_kappa": "agreement",
    "connor_n": "power",
    "corrected_rate": "prevalence",
    "corrected_rate_ci": "prevalence",
    "disagreements": "agreement",
    "fleiss_kappa": "reliability",
    "friedman": "paired",
    "gwet_ac1": "reliability",
    "krippendorff_alpha": "agreement",
    "mcnemar": "paired",
    "median_ci": "quantile",
    "minimum_detectable_effect": "power",
    "paired_bootstrap_diff": "paired",
    "proportion_difference": "proportions",
    "rank_biserial": "paired",
    "spearman": "agreement",
    "wilcoxon_signed_rank": "paired",
    "wilson": "intervals",
}
"""Public name -> submodule. Submodules load on first use: scikit-learn, statsmodels and
scipy cost about a second to import, and most commands need only a few functions."""

__all__ = [
    "DetectableEffect",
    "Disagreements",
    "Estimate",
    "Interval",
    "PairedDiff",
    "TestResult",
    "TurnSummary",
    "adjust_pvalues",
    "bootstrap_ci",
    "by_turn_summary",
    "classification_report",
    "cluster_bootstrap_ci",
    "cohen_kappa",
    "connor_n",
    "corrected_rate",
    "corrected_rate_ci",
    "disagreements",
    "fleiss_kappa",
    "friedman",
    "gwet_ac1",
    "krippendorff_alpha",
    "mcnemar",
    "median_ci",
    "minimum_detectable_effect",
    "paired_bootstrap_diff",
    "proportion_difference",
    "rank_biserial",
    "spearman",
    "wilcoxon_signed_rank",
    "wilson",
]


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first access (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'medsafe.stats' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"medsafe.stats.{module}"), name)
    globals()[name] = value
    return value
