"""The one schema every suite, backend, scorer and report shares (pydantic v2, JSON round-trip).

- :class:`Item` is one thing to ask a model: an MCQ, an open request, a dialogue seed, a rubric
  task, an error-detection task or an image item.
- :class:`Transcript` is what was actually exchanged for one item, with one :class:`CallRecord`
  per model call (status ok / failed with its cause).
- :class:`Score` is one scorer's (or one judge's) verdict on a transcript or one of its turns.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medsafe.scale import Scale

Language = Literal["zh", "ja", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "ja", "en")
ItemKind = Literal["mcq", "open", "dialogue", "rubric", "detection", "image"]
Role = Literal["system", "user", "assistant"]
CallStatus = Literal["ok", "failed"]
ScoreStatus = Literal["ok", "failed", "skipped"]
OPTION_LETTERS = "ABCDEFGH"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Message(_Frozen):
    """One chat message."""

    role: Role
    content: str


class TaxonomyLabel(_Frozen):
    """A category in a named framework, e.g. ``("ama", "ama-3")``."""

    framework: str
    category: str


class RubricCriterion(_Frozen):
    """A HealthBench-style criterion: met or not met, worth ``points`` (may be negative)."""

    criterion: str
    points: float
    tags: tuple[str, ...] = ()


class Attachment(_Frozen):
    """A file that goes with an item (e.g. a fundus image)."""

    kind: Literal["image", "file"] = "image"
    path: str
    media_type: str | None = None
    sha256: str | None = None


class Item(_Frozen):
    """One evaluation item of any benchmark family."""

    id: str = Field(min_length=1)
    suite: str = ""
    language: Language = "en"
    kind: ItemKind
    messages: tuple[Message, ...] = ()
    question: str | None = None
    """MCQ stem without options (None when the source embeds options in the prompt)."""
    options: dict[str, str] = Field(default_factory=dict)
    answer: str | None = None
    category: str = ""
    labels: tuple[TaxonomyLabel, ...] = ()
    reference: str | None = None
    rubric: tuple[RubricCriterion, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    seed: str | None = None
    strategy: str | None = None
    turns: int | None = Field(default=None, ge=1)
    source: str | None = None
    license: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _option_letters(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if k not in OPTION_LETTERS or len(k) != 1]
        if bad:
            raise ValueError(f"option letters must be A-H, got {bad}")
        return value

    @field_validator("answer")
    @classmethod
    def _normalise_answer(cls, value: str | None) -> str | None:
        if value is None:
            return None
        letters = "".join(sorted(set(value.strip().upper())))
        if not letters or any(ch not in OPTION_LETTERS for ch in letters):
            raise ValueError(f"answer must be letters A-H, got {value!r}")
        return letters

    def last_user_text(self) -> str:
        """The text of the last user message (what replay files match on)."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content
        return ""

    def content_hash(self) -> str:
        """Stable hash of the item's content (the suite hash is built from these)."""
        return hashlib.sha256(self.model_dump_json().encode("utf-8")).hexdigest()


class ModelParams(_Frozen):
    """Generation parameters; all of them are part of the request cache key."""

    temperature: float | None = 0.0
    max_tokens: int | None = 512
    top_p: float | None = None
    seed: int | None = None
    system_prompt: str | None = None


class Usage(_Frozen):
    """Token counts reported by a backend (0 when unknown)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


class CallRecord(_Frozen):
    """One model call: its outcome, cause of failure, timing and tokens."""

    request_hash: str
    status: CallStatus
    text: str | None = None
    error: str | None = None
    latency_s: float = 0.0
    attempts: int = 1
    usage: Usage = Usage()
    finish_reason: str | None = None
    cached: bool = False


class Transcript(_Frozen):
    """The turns actually exchanged with the model for one item."""

    run_id: str
    item_id: str
    model: str
    params: ModelParams
    messages: tuple[Message, ...]
    calls: tuple[CallRecord, ...] = ()
    status: CallStatus
    error: str | None = None

    @property
    def response(self) -> str | None:
        """The final assistant message, or ``None`` when the item failed."""
        for message in reversed(self.messages):
            if message.role == "assistant":
                return message.content
        return None


class Score(_Frozen):
    """A verdict by one scorer (and, for judged scorers, one judge model)."""

    item_id: str
    scorer: str
    scorer_version: str
    judge: str = ""
    value: float | None = None
    label: str | None = None
    rationale: str | None = None
    turn: int | None = None
    status: ScoreStatus = "ok"
    error: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _drop_legacy_scale(cls, data: Any) -> Any:
        """Scores stored by 0.1.0 carry a free-text ``scale``; the run's ScorerSpec holds it now."""
        if isinstance(data, dict) and "scale" in data:
            data = {k: v for k, v in data.items() if k != "scale"}
        return data


def request_hash(
    model: str,
    messages: tuple[Message, ...],
    params: ModelParams,
    attachments: tuple[Attachment, ...] = (),
) -> str:
    """The cache key of a model call: model id, every message, every parameter and the content
    hash of every attachment sent with it (a call without attachments keeps its old key)."""
    payload: dict[str, Any] = {
        "model": model,
        "messages": [m.model_dump() for m in messages],
        "params": params.model_dump(),
    }
    if attachments:
        payload["attachments"] = [a.sha256 or a.path for a in attachments]
    blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ScorerSpec(_Frozen):
    """A scorer as stored with a run: enough to rebuild it exactly."""

    name: str
    judges: tuple[str, ...] = ()
    options: dict[str, Any] = Field(default_factory=dict)
    scales: dict[str, Scale] = Field(default_factory=dict)
    """The declared scale of every score name the scorer writes (e.g. ``mcq``, ``mcq.partial``)."""


class AttackerSpec(_Frozen):
    """The attacker model of adaptive red-team dialogues, as stored with a run (never a key)."""

    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    """The name of the environment variable holding the key, never the key."""
    params: ModelParams = ModelParams(temperature=0.0, max_tokens=512)
    mode: Literal["crescendo", "pair"] = "crescendo"


class RunSpec(_Frozen):
    """What a run asked for. Stored with the run so that it can be resumed or rebuilt."""

    run_id: str
    suite: str
    suite_format: str
    suite_hash: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    """The target's key variable when a named model (``--config``) sets one; never the key."""
    params: ModelParams = ModelParams()
    scorers: tuple[ScorerSpec, ...] = ()
    concurrency: int = 8
    timeout_s: float = 60.0
    retries: int = 3
    limit: int | None = None
    rotate: int | None = None
    attacker: AttackerSpec | None = None
