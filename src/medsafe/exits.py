"""Exit codes of every ``medsafe`` command, and the one way the CLIs report an error.

The table of which command exits with which code is in docs/cli.md. Codes not listed here come
from Python or click: 1 for an unexpected exception (a traceback: a bug) or Ctrl-C, and 2 for a
command-line usage error (unknown option, bad value), which is bad input too.
"""

from __future__ import annotations

from enum import IntEnum

import typer
from rich.console import Console
from rich.text import Text

__all__ = ["ExitCode", "fail"]


class ExitCode(IntEnum):
    """What a ``medsafe`` process's exit status means."""

    OK = 0
    """Success."""
    BAD_INPUT = 2
    """Bad input or configuration: the message names the file, line and field where it can."""
    ALL_CALLS_FAILED = 3
    """``medsafe run``: the run has items and every model call for them failed."""
    GATE_FAIL = 1
    """``medsafe gate``: a rule failed (its interval lies wholly beyond its bound)."""
    GATE_INCONCLUSIVE = 4
    """``medsafe gate``: no rule failed, but the data cannot decide one (n needed is shown)."""
    GATE_CALLS_FAILED = 5
    """``medsafe gate``: a suite's model calls all failed (a dead endpoint, never inconclusive)."""


_stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(problem: Exception | str, code: ExitCode = ExitCode.BAD_INPUT) -> typer.Exit:
    """Print ``error: PROBLEM`` to stderr and return the ``typer.Exit`` to raise.

    The text is printed literally (no Rich markup), so ``trial[v2].jsonl`` or ``[/b]`` in a path
    or id shows as written. Use it as ``raise fail(exc) from None``.
    """
    _stderr.print(Text.assemble(("error:", "red"), " ", str(problem)))
    return typer.Exit(int(code))
