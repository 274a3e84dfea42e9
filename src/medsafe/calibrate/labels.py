"""Human labels for judge calibration: a JSONL file of (prompt, response, label or score).

Each line is one object: ``prompt`` and ``response`` (strings), and either ``label`` (a string,
e.g. the guardian's ``unsafe``) or ``score`` (a number, e.g. a harmfulness grade 1-5). Optional:
``id`` (default ``row-N``), ``language`` (``en``/``zh``/``ja``, default ``en``), ``category``,
``reference`` (the rule or safe answer a MedES judge needs), ``kind`` (``open``, default, or
``dialogue``). Other fields are ignored (so the guardian's own labels files can be used as
they are). Every row of a file gives the same one of ``label``/``score``, and
:func:`check_scale` refuses verdicts outside the scorer's declared scale.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from medsafe.errors import SuiteError
from medsafe.scale import Scale
from medsafe.schema import LANGUAGES
from medsafe.suites.loaders._io import UniqueIds
from medsafe.suites.loaders.jsonl import json_records

Mode = Literal["label", "score"]
_KINDS = ("open", "dialogue")


@dataclass(frozen=True)
class HumanLabel:
    """One human-labelled response."""

    id: str
    prompt: str
    response: str
    label: str | None
    score: float | None
    language: str = "en"
    category: str = ""
    reference: str | None = None
    kind: str = "open"
    line: int = 0
    """The line of the labels file the row was read from (0 when not read from a file)."""

    @property
    def truth(self) -> str | float:
        """The human verdict (the label, else the score)."""
        if self.label is not None:
            return self.label
        assert self.score is not None
        return self.score


@dataclass(frozen=True)
class LabelSet:
    """A validated labels file."""

    path: Path
    rows: tuple[HumanLabel, ...]
    mode: Mode
    sha256: str


def _text(obj: dict[str, Any], key: str, where: tuple[Path, int], required: bool) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise SuiteError("missing", path=where[0], line=where[1], field=key)
        return None
    if not isinstance(value, str):
        raise SuiteError(
            f"must be a string, got {type(value).__name__}", path=where[0], line=where[1], field=key
        )
    return value


def _score(obj: dict[str, Any], where: tuple[Path, int]) -> float | None:
    value = obj.get("score")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SuiteError(
            f"must be a finite number, got {value!r}", path=where[0], line=where[1], field="score"
        )
    return float(value)


def _row(obj: Any, number: int, where: tuple[Path, int]) -> HumanLabel:
    if not isinstance(obj, dict):
        raise SuiteError("each line must be a JSON object", path=where[0], line=where[1])
    prompt = _text(obj, "prompt", where, True) or ""
    if not prompt.strip():
        raise SuiteError("is empty", path=where[0], line=where[1], field="prompt")
    language = _text(obj, "language", where, False) or "en"
    if language not in LANGUAGES:
        raise SuiteError(
            f"must be one of {', '.join(LANGUAGES)}, got {language!r}",
            path=where[0],
            line=where[1],
            field="language",
        )
    kind = _text(obj, "kind", where, False) or "open"
    if kind not in _KINDS:
        raise SuiteError(
            f"must be one of {', '.join(_KINDS)}", path=where[0], line=where[1], field="kind"
        )
    label = _text(obj, "label", where, False)
    score = _score(obj, where)
    if label is None and score is None:
        raise SuiteError("a row needs 'label' or 'score'", path=where[0], line=where[1])
    if label is not None and score is not None:
        raise SuiteError("give 'label' or 'score', not both", path=where[0], line=where[1])
    if label is not None and not label.strip():
        raise SuiteError("is empty", path=where[0], line=where[1], field="label")
    return HumanLabel(
        id=_text(obj, "id", where, False) or f"row-{number}",
        prompt=prompt,
        response=_text(obj, "response", where, True) or "",
        label=label.strip() if label is not None else None,
        score=score,
        language=language,
        category=_text(obj, "category", where, False) or "",
        reference=_text(obj, "reference", where, False),
        kind=kind,
        line=where[1],
    )


def load_human_labels(path: Path) -> LabelSet:
    """Read and validate a labels JSONL file; every error names the file, line and field."""
    rows: list[HumanLabel] = []
    ids = UniqueIds()
    mode: Mode | None = None
    for line_no, obj in json_records(path):
        row = _row(obj, len(rows) + 1, (path, line_no))
        ids.add(row.id, path, line_no)
        row_mode: Mode = "label" if row.label is not None else "score"
        if mode is None:
            mode = row_mode
        elif row_mode != mode:
            raise SuiteError(
                f"this row gives '{row_mode}' but earlier rows give '{mode}': use one for all",
                path=path,
                line=line_no,
                field=row_mode,
            )
        rows.append(row)
    if not rows or mode is None:
        raise SuiteError("no labelled rows", path=path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return LabelSet(path=path, rows=tuple(rows), mode=mode, sha256=digest)


def truths(rows: Sequence[HumanLabel]) -> list[str | float]:
    """The human verdicts, in order."""
    return [row.truth for row in rows]


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def check_scale(labels: LabelSet, scale: Scale, scorer: str) -> None:
    """Refuse a human verdict the scorer's ``scale`` cannot give: a score outside ``lo..hi`` or
    off its ``levels``, or a label not among its ``labels`` (when the scale lists them).

    The error names the file, the line and the allowed values.
    """
    for row in labels.rows:
        if row.score is not None:
            allowed = (
                ", ".join(_number(v) for v in scale.levels)
                if scale.levels
                else f"{_number(scale.lo)}..{_number(scale.hi)}"
            )
            inside = scale.lo <= row.score <= scale.hi
            on_level = not scale.levels or any(
                math.isclose(row.score, v, abs_tol=1e-9) for v in scale.levels
            )
            if not (inside and on_level):
                raise SuiteError(
                    f"{_number(row.score)} is not on the {scorer} scale ({allowed})",
                    path=labels.path,
                    line=row.line,
                    field="score",
                )
        elif row.label is not None and scale.labels and row.label not in scale.labels:
            raise SuiteError(
                f"{row.label!r} is not a {scorer} label ({', '.join(scale.labels)})",
                path=labels.path,
                line=row.line,
                field="label",
            )
