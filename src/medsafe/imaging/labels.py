"""Tolerant parsing of a model's multi-label answer against a declared label set.

Accepted shapes: labels joined by ``|`` (or ``,``, ``、``, ``;``, new lines); a "no problem"
answer ("无问题", "問題なし", "none", "[]"); JSON lists of strings or of objects such as
``[{"错误类型": "左右错误", "位置": "结论", "修改建议": "…"}]``. Names are matched after NFKC,
case folding and removal of spaces and punctuation, through the zh/ja/en synonym table of
:mod:`medsafe.imaging.errortypes` and any synonyms the suite declares. An answer in which no
label and no "no problem" marker is found is *unparsed*: counted, never scored.
A label denied where it is named ("无左右错误", "no laterality error", "左右の誤りなし") is not
counted; an answer that only denies labels means "no problem". Other negations (a denial
further from the label, double negatives) are not understood.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from medsafe.imaging.errortypes import synonym_groups

Location = Literal["findings", "impression"]

NONE_EXACT = ("无", "無", "なし", "none", "no", "nil", "n/a", "na", "正常", "[]")
"""Whole answers (or tokens) that mean "no problem"."""
NONE_PHRASES = (
    "无问题", "没有问题", "无错误", "没有错误", "未发现错误", "未见错误", "未发现问题",
    "无明显错误",
    "問題なし", "問題ありません", "問題はありません", "誤りなし", "誤りはありません", "エラーなし",
    "noproblem", "noproblems", "noerror", "noerrors", "noissues", "noissue", "nothingfound",
    "noerrorsfound", "noneidentified",
)  # fmt: skip
"""Phrases that mean "no problem" wherever they appear in an answer without any label."""
_NEG_BEFORE = ("无", "没有", "未见", "未发现", "不存在", "并无", "無", "no", "not", "without")
"""Words just before a label that deny it (matched on keys: no spaces, case-folded)."""
_NEG_AFTER = ("无", "没有", "不存在", "なし", "無し", "はありません", "ありません", "はない",
              "がない", "none")  # fmt: skip
"""Words just after a label that deny it ("左右错误：无", "左右の誤りなし")."""
TYPE_KEYS = ("错误类型", "类型", "错误", "type", "label", "error_type", "error", "category",
             "エラー種類", "誤りの種類", "種類", "问题", "問題")  # fmt: skip
LOCATION_KEYS = ("位置", "错误位置", "部位", "location", "section", "場所", "箇所")
SUGGESTION_KEYS = ("修改建议", "建议", "suggestion", "correction", "fix", "修正案", "修正")
_FINDINGS = ("findings", "finding", "所见", "描述", "影像所见", "检查所见", "表现", "所見")
_IMPRESSION = ("impression", "conclusion", "结论", "诊断", "印象", "診断", "結論", "意见")
_SPLIT = re.compile(r"[|｜,，、;；\n]+")
_DROP = re.compile(r"[\s\-_·・/()（）\[\]{}\"'“”‘’`*#.:：。!！?？<>《》「」『』]+")
_NUMBERING = re.compile(r"^\s*(?:\d+|[a-z])\s*[.)、．）]\s*", re.IGNORECASE)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)


def key(text: str) -> str:
    """Matching key: NFKC, case-folded, without spaces and punctuation."""
    return _DROP.sub("", unicodedata.normalize("NFKC", text).casefold())


_NONE_EXACT_KEYS = frozenset(key(t) for t in NONE_EXACT) | {""}
_NONE_PHRASE_KEYS = tuple(key(t) for t in NONE_PHRASES)


@functools.cache
def _group_keys() -> tuple[frozenset[str], ...]:
    """The synonym table as matching keys (computed once)."""
    return tuple(frozenset(key(name) for name in group) for group in synonym_groups())


@functools.lru_cache(maxsize=256)
def cached_parser(
    label_set: tuple[str, ...], synonyms: tuple[tuple[str, tuple[str, ...]], ...] = ()
) -> LabelParser:
    """A parser per label set and synonyms (items of a suite share a few)."""
    return LabelParser(label_set, dict(synonyms))


def parser_for(labels: Sequence[str], synonyms: Any = None) -> LabelParser:
    """The (cached) parser of a label set and an item's ``synonyms`` (``{label: [names]}``);
    ValueError for malformed synonyms or a synonym of a label outside the set."""
    synonyms = synonyms or {}
    if not isinstance(synonyms, dict) or not all(
        isinstance(v, list) and all(isinstance(n, str) for n in v) for v in synonyms.values()
    ):
        raise ValueError("synonyms must map labels to lists of names")
    table = tuple(sorted((str(k), tuple(v)) for k, v in synonyms.items()))
    return cached_parser(tuple(labels), table)


@dataclass(frozen=True)
class Parsed:
    """A parsed answer: ``status`` ``parsed`` (``labels`` may be empty: no problem) or
    ``unparsed``; locations and suggestions per label where the answer gave them."""

    status: Literal["parsed", "unparsed"]
    labels: frozenset[str] = frozenset()
    locations: dict[str, Location] = field(default_factory=dict)
    suggestions: dict[str, str] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()
    """Parts of the answer that named no label (kept for review)."""


def location_of(text: str) -> Location | None:
    """``findings`` or ``impression`` from a section name in zh/ja/en, else None."""
    k = key(text)
    if any(key(n) in k for n in _IMPRESSION):
        return "impression"
    if any(key(n) in k for n in _FINDINGS):
        return "findings"
    return None


class LabelParser:
    """Maps answers onto ``label_set`` through the synonym table and suite synonyms."""

    def __init__(
        self, label_set: Sequence[str], synonyms: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        if not label_set:
            raise ValueError("a detection item needs a non-empty label_set")
        self.label_set = tuple(label_set)
        names: dict[str, str] = {}
        for label in self.label_set:
            names[key(label)] = label
            for group_keys in _group_keys():
                if key(label) in group_keys:
                    for name_key in group_keys:
                        names.setdefault(name_key, label)
        for label, extra in (synonyms or {}).items():
            if label not in self.label_set:
                raise ValueError(f"synonyms name {label!r}, which is not in the label_set")
            for name in extra:
                names[key(name)] = label
        names.pop("", None)
        self._names = names
        self._by_length = sorted(names, key=len, reverse=True)

    def _match(self, token: str) -> set[str]:
        return self._match_negated(token)[0]

    def _match_negated(self, token: str) -> tuple[set[str], bool]:
        """Labels a token names, and whether it named one only to deny it ("无左右错误",
        "no laterality error", "左右の誤りなし")."""
        k = key(token)
        if k in self._names:
            return {self._names[k]}, False
        found: set[str] = set()
        negated = False
        for name in self._by_length:
            at = k.find(name) if len(name) >= 2 else -1
            if at < 0:
                continue
            before, after = k[:at], k[at + len(name) :]
            if before.endswith(_NEG_BEFORE) or after.startswith(_NEG_AFTER):
                negated = True
            else:
                found.add(self._names[name])
            k = k.replace(name, "|")
        return found, negated

    def parse(self, text: str | None) -> Parsed:
        """Parse one answer (``None``/empty text is unparsed)."""
        if not text or not text.strip():
            return Parsed(status="unparsed")
        body = _FENCE.sub("", _THINK.sub("", text)).strip()
        entries = _json_entries(body)
        if entries is not None:
            return self._from_entries(entries)
        return self._from_tokens(_tokens(body), body)

    def _from_entries(self, entries: list[Any]) -> Parsed:
        labels: set[str] = set()
        locations: dict[str, Location] = {}
        suggestions: dict[str, str] = {}
        ignored: list[str] = []
        saw_none = not entries
        for entry in entries:
            name, where, fix = _entry_fields(entry)
            found = self._match(name) if key(name) else set()
            if not found:
                if key(name) and (key(name) in _NONE_EXACT_KEYS or _has_none_phrase(name)):
                    saw_none = True
                else:
                    ignored.append(name or json.dumps(entry, ensure_ascii=False))
                continue
            labels |= found
            for label in found:
                loc = location_of(where) if where else None
                if loc is not None:
                    locations[label] = loc
                if fix:
                    suggestions[label] = fix
        return _result(labels, saw_none, locations, suggestions, ignored)

    def _from_tokens(self, tokens: Iterable[str], body: str) -> Parsed:
        labels: set[str] = set()
        locations: dict[str, Location] = {}
        ignored: list[str] = []
        denied = False
        for token in tokens:
            found, negated = self._match_negated(token)
            denied |= negated
            if found:
                labels |= found
                loc = location_of(token)
                if loc is not None:
                    locations.update({label: loc for label in found})
            elif not negated and key(token) not in _NONE_EXACT_KEYS and not _has_none_phrase(token):
                ignored.append(token.strip())
        saw_none = denied or key(body) in _NONE_EXACT_KEYS or _has_none_phrase(body)
        return _result(labels, saw_none, locations, {}, ignored)


def _result(
    labels: set[str],
    saw_none: bool,
    locations: dict[str, Location],
    suggestions: dict[str, str],
    ignored: list[str],
) -> Parsed:
    if not labels and not saw_none:
        return Parsed(status="unparsed", ignored=tuple(ignored))
    return Parsed("parsed", frozenset(labels), locations, suggestions, tuple(ignored))


def _has_none_phrase(text: str) -> bool:
    k = key(text)
    return any(p in k for p in _NONE_PHRASE_KEYS)


def _tokens(body: str) -> list[str]:
    out = []
    for part in _SPLIT.split(body):
        part = _NUMBERING.sub("", part).strip()
        if part:
            out.append(part)
    return out


def _json_entries(body: str) -> list[Any] | None:
    """The entries of a JSON answer (a list, or an object holding one), else None."""
    candidates = [body]
    for opener, closer in (("[", "]"), ("{", "}")):
        start, end = body.find(opener), body.rfind(closer)
        if 0 <= start < end:
            candidates.append(body[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, list):
            return value
        if isinstance(value, dict):
            for inner in value.values():
                if isinstance(inner, list):
                    return inner
            return [value]
    return None


def _entry_fields(entry: Any) -> tuple[str, str, str]:
    """(type name, location, suggestion) of one JSON entry."""
    if isinstance(entry, str):
        return entry, entry, ""
    if not isinstance(entry, dict):
        return str(entry), "", ""
    keys = {key(str(k)): v for k, v in entry.items()}

    def pick(names: tuple[str, ...]) -> str:
        for name in names:
            value = keys.get(key(name))
            if value is not None:
                return str(value)
        return ""

    return pick(TYPE_KEYS), pick(LOCATION_KEYS), pick(SUGGESTION_KEYS)
