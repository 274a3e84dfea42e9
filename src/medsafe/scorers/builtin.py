"""Importing this module registers every built-in scorer."""

from medsafe.scorers import (
    guardian,  # noqa: F401
    harmfulness,  # noqa: F401
    mcq,  # noqa: F401
    medes,  # noqa: F401
    rubric,  # noqa: F401
    safety,  # noqa: F401
)
