"""medsafe: evaluate the ethics and patient safety of medical LLMs.

Data flows one way: suite -> runner (model backends) -> store -> scorers -> statistics -> report.
The public API re-exported here is the stable surface; everything else may move.
"""

from medsafe.schema import (
    Item,
    Message,
    ModelParams,
    RubricCriterion,
    Score,
    TaxonomyLabel,
    Transcript,
)

__version__ = "0.1.0"

__all__ = [
    "Item",
    "Message",
    "ModelParams",
    "RubricCriterion",
    "Score",
    "TaxonomyLabel",
    "Transcript",
    "__version__",
]
