"""The runner: generation (model calls) and scoring passes over a stored run."""

from medsafe.models.retry import RetryPolicy, call_with_retries
from medsafe.runner.generate import GenerationStats, generate, request_messages
from medsafe.runner.score import ScoringStats, score_run

__all__ = [
    "GenerationStats",
    "RetryPolicy",
    "ScoringStats",
    "call_with_retries",
    "generate",
    "request_messages",
    "score_run",
]
