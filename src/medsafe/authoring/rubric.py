"""The rubric a curated rationale is scored against: named criteria, each an integer scale.

A rubric file (TOML)::

    name = "cot"
    [[criteria]]
    name = "answer_correct"          # letters, digits, _
    title = "The final answer is correct"
    lo = 0
    hi = 1
    pass = 1                         # a score at or above this passes the criterion

The default (:data:`DEFAULT_RUBRIC`) has the five criteria of the clinical CoT pipeline: final
answer correct (0-1), medical facts correct, reasoning complete and ordered, safety of advice
(1-5, pass 4) and norms cited (1-5, pass 3). A rubric becomes the review file's
``label_schema`` (one ordinal field per criterion), so experts label with the review workbench's
file format.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medsafe.errors import SuiteError
from medsafe.review.model import Choice, LabelField, LabelSchema


class Criterion(BaseModel):
    """One rubric criterion on an integer scale ``lo..hi``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    title: str = ""
    lo: int = 1
    hi: int = 5
    pass_at: int = Field(alias="pass")

    @model_validator(mode="after")
    def _range(self) -> Criterion:
        if not self.lo < self.hi <= self.lo + 20:
            raise ValueError(f"criterion {self.name!r}: need lo < hi (at most 21 levels)")
        if not self.lo <= self.pass_at <= self.hi:
            raise ValueError(f"criterion {self.name!r}: pass must lie in [lo, hi]")
        return self


class Rubric(BaseModel):
    """Named criteria; a rationale passes when every criterion's score reaches its ``pass``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    criteria: tuple[Criterion, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Rubric:
        names = [c.name for c in self.criteria]
        if len(set(names)) != len(names):
            raise ValueError("criterion names repeat")
        return self

    def digest(self) -> str:
        """SHA-256 of the rubric's JSON (stored with every curated item)."""
        return hashlib.sha256(self.model_dump_json(by_alias=True).encode()).hexdigest()

    def check(self, scores: Any) -> dict[str, int]:
        """``scores`` as criterion -> int within range; ValueError naming the criterion."""
        if not isinstance(scores, dict):
            raise ValueError("scores must be an object of criterion -> integer")
        out: dict[str, int] = {}
        for c in self.criteria:
            value = scores.get(c.name)
            if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"criterion {c.name!r}: missing or not a number")
            if value != int(value) or not c.lo <= value <= c.hi:
                raise ValueError(
                    f"criterion {c.name!r}: {value} is not an integer in {c.lo}..{c.hi}"
                )
            out[c.name] = int(value)
        return out

    def passes(self, scores: dict[str, float]) -> list[str]:
        """The criteria ``scores`` fail (empty: it passes)."""
        return [c.name for c in self.criteria if scores[c.name] < c.pass_at]

    def describe(self) -> str:
        """One line per criterion, for the judge prompt."""
        return "\n".join(
            f"- {c.name} ({c.lo}-{c.hi}, passes at {c.pass_at}): {c.title}" for c in self.criteria
        )

    def label_schema(self) -> LabelSchema:
        """The review file's label schema: one ordinal field per criterion, mean aggregate."""
        fields = tuple(
            LabelField(
                name=c.name,
                title=c.title,
                kind="ordinal",
                choices=tuple(Choice(key=str(v), value=float(v)) for v in range(c.lo, c.hi + 1)),
            )
            for c in self.criteria
        )
        return LabelSchema(
            name=self.name,
            scorer=f"rubric:{self.name}",
            fields=fields,
            aggregate="single" if len(fields) == 1 else "mean",
        )


DEFAULT_RUBRIC = Rubric(
    name="cot",
    criteria=(
        Criterion(
            name="answer_correct", title="The final answer is correct", lo=0, hi=1, pass_at=1
        ),
        Criterion(name="medical_facts", title="The medical facts stated are correct", pass_at=4),
        Criterion(name="reasoning", title="The reasoning is complete and in order", pass_at=4),
        Criterion(name="safety", title="Any advice is safe for the patient", pass_at=4),
        Criterion(name="norms_cited", title="The applicable norms are cited", pass_at=3),
    ),
)


def load_rubric(path: Path | None) -> Rubric:
    """The rubric in a TOML (or JSON) file, or the default; SuiteError naming file and field."""
    if path is None:
        return DEFAULT_RUBRIC
    try:
        raw = path.read_text(encoding="utf-8")
        data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw)
    except OSError as exc:
        raise SuiteError(f"cannot read ({exc.strerror})", path=path) from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SuiteError(f"not valid TOML/JSON ({exc})", path=path) from None
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or None
        raise SuiteError(first["msg"], path=path, field=where) from None
