"""medsafe: evaluate the ethics and patient safety of medical LLMs.

Data flows one way: suite -> runner (model backends) -> store -> scorers -> statistics -> report.
The public API re-exported here is the stable surface; everything else may move::

    import medsafe
    results = medsafe.evaluate("starter", "openai/gpt-4o-mini", scorers=["mcq"])

See docs/api.md.
"""

import importlib
from typing import TYPE_CHECKING, Any

from medsafe._version import __version__

if TYPE_CHECKING:
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
    from medsafe.results import RunResults
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

_LAZY = {
    **dict.fromkeys(
        ("backend", "compare", "evaluate", "evaluate_async", "load_results", "scorer"),
        "medsafe.api",
    ),
    "write_report": "medsafe.api",
    **dict.fromkeys(
        ("BackendError", "ConfigError", "MedsafeError", "RegistryError", "StoreError"),
        "medsafe.errors",
    ),
    "SuiteError": "medsafe.errors",
    **dict.fromkeys(("Backend", "ChatRequest", "ChatResponse"), "medsafe.models.base"),
    "RegistryWarning": "medsafe.registry",
    "RunResults": "medsafe.results",
    "Scale": "medsafe.scale",
    **dict.fromkeys(
        ("Item", "Message", "ModelParams", "RubricCriterion", "Score", "TaxonomyLabel"),
        "medsafe.schema",
    ),
    "Transcript": "medsafe.schema",
    **dict.fromkeys(("BaseScorer", "Scorer"), "medsafe.scoring"),
}
"""Public name -> the module that defines it. Imported on first use, so that ``import
medsafe.cli`` (every command's start-up) does not load the whole API."""

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
    """A public name, imported from its module on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'medsafe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
