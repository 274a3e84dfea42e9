"""medsafe: evaluate the ethics and patient safety of medical LLMs.

Data flows one way: suite -> runner (model backends) -> store -> scorers -> statistics -> report.
The public API re-exported here is the stable surface; everything else may move::

    import medsafe
    results = medsafe.evaluate("starter", "openai/gpt-4o-mini", scorers=["mcq"])

See docs/api.md.
"""

from typing import TYPE_CHECKING, Any

from medsafe._version import __version__
from medsafe.api import (
    backend,
    compare,
    evaluate,
    evaluate_async,
    load_results,
    scorer,
    write_report,
)
from medsafe.errors import (
    BackendError,
    ConfigError,
    MedsafeError,
    RegistryError,
    StoreError,
    SuiteError,
)
from medsafe.models.base import Backend, ChatRequest, ChatResponse
from medsafe.registry import RegistryWarning
from medsafe.scale import Scale
from medsafe.schema import (
    Item,
    Message,
    ModelParams,
    RubricCriterion,
    Score,
    TaxonomyLabel,
    Transcript,
)
from medsafe.scoring import BaseScorer, Scorer

if TYPE_CHECKING:
    from medsafe.results import RunResults

__all__ = [
    "Backend",
    "BackendError",
    "BaseScorer",
    "ChatRequest",
    "ChatResponse",
    "ConfigError",
    "Item",
    "MedsafeError",
    "Message",
    "ModelParams",
    "RegistryError",
    "RegistryWarning",
    "RubricCriterion",
    "RunResults",
    "Scale",
    "Score",
    "Scorer",
    "StoreError",
    "SuiteError",
    "TaxonomyLabel",
    "Transcript",
    "__version__",
    "backend",
    "compare",
    "evaluate",
    "evaluate_async",
    "load_results",
    "scorer",
    "write_report",
]


def __getattr__(name: str) -> Any:
    """``medsafe.RunResults``, imported on first use (the results layer is not small)."""
    if name == "RunResults":
        from medsafe.results import RunResults

        return RunResults
    raise AttributeError(f"module 'medsafe' has no attribute {name!r}")
