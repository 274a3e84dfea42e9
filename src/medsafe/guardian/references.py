"""Safe reference answers, looked up by prompt embedding, and the float16 codec of heads.

A head keeps the training rows labelled ``refusal`` / ``safe_helpful`` with their prompt
embeddings; for an ``unsafe`` or ``unusable`` verdict the guardian returns the safe answer whose
prompt is closest (same language preferred), a seed for alignment data.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medsafe.errors import ConfigError
from medsafe.guardian.features import EMBED_DIM


def encode_f16(vectors: NDArray[Any]) -> str:
    """Little-endian float16 bytes, base64."""
    blob = np.ascontiguousarray(vectors, dtype="<f2").tobytes()
    return base64.b64encode(blob).decode("ascii")


def decode_f16(text: str) -> NDArray[np.float32]:
    """Inverse of :func:`encode_f16`, as float32 rows of :data:`EMBED_DIM`."""
    raw = base64.b64decode(text)
    return np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(-1, EMBED_DIM)


@dataclass(frozen=True)
class ReferenceBank:
    """Safe answers from training (refusal/safe_helpful), looked up by prompt embedding."""

    ids: tuple[str, ...]
    texts: tuple[str, ...]
    languages: tuple[str, ...]
    vectors: NDArray[np.float32]
    """Prompt ``query:`` embeddings, rounded to float16 precision (what is stored)."""

    @classmethod
    def build(
        cls,
        ids: Sequence[str],
        texts: Sequence[str],
        languages: Sequence[str],
        vectors: NDArray[np.float32],
    ) -> ReferenceBank:
        """A bank whose vectors are rounded exactly as :meth:`to_dict` stores them."""
        rounded = np.asarray(vectors, dtype=np.float16).astype(np.float32)
        return cls(tuple(ids), tuple(texts), tuple(languages), rounded.reshape(-1, EMBED_DIM))

    def nearest(self, prompt_vec: NDArray[np.float32], language: str) -> str | None:
        """The safe answer whose prompt is closest, preferring the same language."""
        if not self.texts:
            return None
        sims = self.vectors @ prompt_vec
        same = np.array([lang == language for lang in self.languages])
        if same.any():
            sims = np.where(same, sims, -np.inf)
        return self.texts[int(np.argmax(sims))]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form; vectors as little-endian float16, base64."""
        return {
            "ids": list(self.ids),
            "texts": list(self.texts),
            "languages": list(self.languages),
            "dtype": "float16",
            "vectors_b64": encode_f16(self.vectors),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceBank:
        """Inverse of :meth:`to_dict`."""
        vectors = decode_f16(data["vectors_b64"])
        texts = tuple(data["texts"])
        if len(vectors) != len(texts):
            raise ConfigError("guardian head: reference vectors and texts differ in length")
        return cls(tuple(data["ids"]), texts, tuple(data["languages"]), vectors)
