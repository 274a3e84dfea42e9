"""Plain-text formatting shared by the command line and the report."""

from __future__ import annotations

from collections.abc import Sequence


def with_ci(value: float | None, ci: Sequence[float | None] | None, spec: str = ".3f") -> str:
    """``"0.420 [0.150, 0.801]"``; the value alone when the interval is missing, "-" for None."""
    if value is None:
        return "-"
    if not ci or ci[0] is None or ci[1] is None:
        return format(value, spec)
    return f"{value:{spec}} [{ci[0]:{spec}}, {ci[1]:{spec}}]"
