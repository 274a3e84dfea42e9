"""Gate policy files (TOML): ``[gate]``, ``[[suites]]`` to run, ``[[rules]]`` to judge.

Format and examples: docs/governance.md, "Policy format". Every error names the file, the
line where it can, and the field: ``policy.toml:12: rules[2].upper: ...``.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medsafe.errors import ConfigError

Side = Literal["upper", "lower"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GateOptions(_Model):
    """``[gate]``: a name for the policy and the default interval level."""

    name: str = "gate"
    level: float = Field(0.95, gt=0.5, lt=1.0)


class SuiteEntry(_Model):
    """``[[suites]]``: one evaluation the gate runs (as ``medsafe run`` would)."""

    name: str = Field(min_length=1)
    """What rules call it (``suite = NAME``)."""
    suite: str = Field(min_length=1)
    """A suite path (relative to the policy file) or a bundled suite name."""
    format: str | None = None
    scorers: list[str] | None = None
    """``NAME`` or ``NAME:key=value,...`` (default: the run's default scorers)."""
    judges: list[str] = Field(default_factory=list)
    """``SCORER[:MODEL]`` judged scorers (two for a jury)."""
    limit: int | None = Field(None, ge=1)
    rotate: int | None = Field(None, ge=0)
    attacker: str | None = None
    attack_mode: str | None = None
    run_id: str | None = None
    """Run id (default: ``gate-NAME-MODEL``, so a second gate resumes the same run)."""


class Rule(_Model):
    """``[[rules]]``: a bound on one side of a metric's interval, or non-inferiority."""

    metric: str = Field(min_length=1)
    upper: float | None = None
    lower: float | None = None
    level: float | None = Field(None, gt=0.5, lt=1.0)
    suite: str | None = None
    name: str | None = None
    baseline: str | None = None
    """Run id (``RUN`` or ``RUN@STORE``) of the deployed model for non-inferiority."""
    margin: float | None = Field(None, gt=0.0)
    alpha: float | None = Field(None, gt=0.0, lt=0.5)
    """One-sided level of the non-inferiority test (default 0.05)."""
    min_n: int | None = Field(None, ge=1)
    min_kappa: float | None = Field(None, ge=-1.0, le=1.0)
    """The judge behind the metric must be calibrated against human labels with kappa >= it."""
    signed_off: bool = False
    """The run must be signed off (its latest sign-off approves it)."""
    review_complete: bool = False
    """Every review task of the run must be complete."""

    @model_validator(mode="after")
    def _shape(self) -> Rule:
        if self.baseline is not None:
            if self.margin is None:
                raise ValueError("a non-inferiority rule (baseline = ...) needs margin")
            if self.upper is not None or self.lower is not None:
                raise ValueError("a non-inferiority rule takes margin and alpha, not upper/lower")
            if self.level is not None:
                raise ValueError("a non-inferiority rule takes alpha, not level")
        else:
            if self.margin is not None or self.alpha is not None:
                raise ValueError("margin and alpha need baseline = RUN_ID (non-inferiority)")
            if (self.upper is None) == (self.lower is None):
                raise ValueError("give exactly one of upper = x or lower = x (or baseline)")
        return self

    @property
    def is_noninferiority(self) -> bool:
        """Whether this is a non-inferiority rule."""
        return self.baseline is not None

    @property
    def one_sided_alpha(self) -> float:
        """The non-inferiority test's alpha (0.05 unless given)."""
        return 0.05 if self.alpha is None else self.alpha

    @property
    def side(self) -> Side | None:
        """Which end of the interval a bound rule constrains."""
        if self.upper is not None:
            return "upper"
        return "lower" if self.lower is not None else None

    @property
    def bound(self) -> float | None:
        """The bound value of a bound rule."""
        return self.upper if self.upper is not None else self.lower

    @property
    def label(self) -> str:
        """How outputs name the rule."""
        return self.name or self.metric


class Policy(_Model):
    """A whole policy file."""

    gate: GateOptions = Field(default_factory=GateOptions)
    suites: list[SuiteEntry] = Field(default_factory=list)
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> Policy:
        names = [s.name for s in self.suites]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"suite names must be unique: {', '.join(dup)}")
        return self

    def level_of(self, rule: Rule) -> float:
        """The rule's interval level (its own, else the policy's)."""
        return rule.level if rule.level is not None else self.gate.level


class LoadedPolicy(BaseModel):
    """A parsed policy with where it came from."""

    model_config = ConfigDict(frozen=True)

    path: Path
    policy: Policy
    sha256: str
    text: str
    """The file's text (errors found later locate their line in it)."""


_HEADER = re.compile(r"^\s*\[\[\s*(\w+)\s*\]\]\s*(#.*)?$")
_TABLE = re.compile(r"^\s*\[\s*([\w.]+)\s*\]\s*(#.*)?$")


def line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """The line of the field at ``loc`` (``("rules", 2, "upper")``), found by scanning the text
    for the ``index``-th ``[[table]]`` header and the key after it (None when not found)."""
    if not loc or not isinstance(loc[0], str):
        return None
    table = loc[0]
    index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    key = next((p for p in loc[1:] if isinstance(p, str)), None)
    lines = text.splitlines()
    seen = -1
    start: int | None = None
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        t = _TABLE.match(line)
        if index is not None and m and m.group(1) == table:
            seen += 1
            if seen == index:
                start = i
                break
        if index is None and t and t.group(1) == table:
            start = i
            break
    if start is None:
        return None
    if key is None:
        return start + 1
    key_re = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for j in range(start + 1, len(lines)):
        if _HEADER.match(lines[j]) or _TABLE.match(lines[j]):
            break
        if key_re.match(lines[j]):
            return j + 1
    return start + 1


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def parse_policy(text: str, path: Path) -> Policy:
    """Parse and validate policy ``text`` read from ``path`` (named in every error)."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # an unknown field first: it explains a missing one (``[rule]`` for ``[[rules]]``)
        err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        loc = tuple(err["loc"])
        line = line_of(text, loc)
        where = f"{path}:{line}" if line is not None else str(path)
        field = _where(loc) or "policy"
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif loc == ("rules",):
            message = "a policy needs at least one [[rules]] table"
        raise ConfigError(f"{where}: {field}: {message}") from None
    known = {s.name for s in policy.suites}
    for i, rule in enumerate(policy.rules):
        if rule.suite is not None and rule.suite not in known:
            line = line_of(text, ("rules", i, "suite"))
            names = ", ".join(sorted(known)) or "none"
            raise ConfigError(
                f"{path}:{line}: rules[{i}].suite: no [[suites]] entry named {rule.suite!r} "
                f"(suites: {names})"
            )
    return policy


def load_policy(path: Path) -> LoadedPolicy:
    """Read, parse and validate the policy file at ``path``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the policy: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the policy is not UTF-8 text") from None
    policy = parse_policy(text, path)
    return LoadedPolicy(path=path, policy=policy, sha256=hashlib.sha256(raw).hexdigest(), text=text)
