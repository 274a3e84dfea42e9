"""Importing this module registers every built-in scorer."""

from medsafe.scorers import (
    guardian,  # noqa: F401
    mcq,  # noqa: F401
)
