"""Plain-text formatting shared by the command line and the report."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any


def with_ci(value: float | None, ci: Sequence[float | None] | None, spec: str = ".3f") -> str:
    """``"0.420 [0.150, 0.801]"``; the value alone when the interval is missing, "-" for None."""
    if value is None:
        return "-"
    if not ci or ci[0] is None or ci[1] is None:
        return format(value, spec)
    return f"{value:{spec}} [{ci[0]:{spec}}, {ci[1]:{spec}}]"


def emit_json(data: Any) -> None:
    """Print ``data`` to stdout as indented JSON (UTF-8 text kept as is), for ``--json``.

    Plain ``json.dumps``: no colours or terminal formatting to strip, and about ten times
    quicker than rich's ``print_json`` on a run summary.
    """
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()
