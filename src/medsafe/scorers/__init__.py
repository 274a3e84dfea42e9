"""Scorers: MCQ answer extraction, rubric judges, the guardian..."""

from medsafe.scoring import Scorer, ScorerConfig, create_scorer, scorers

__all__ = ["Scorer", "ScorerConfig", "create_scorer", "scorers"]
