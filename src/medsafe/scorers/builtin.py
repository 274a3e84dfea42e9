"""Importing this module registers every built-in scorer."""

from medsafe.scorers import mcq  # noqa: F401
from medsafe.scorers import guardian  # noqa: F401
