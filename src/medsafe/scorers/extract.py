"""Find the option letters a model chose in its free-text reply (zh/ja/en), or say why not.

The reply is NFKC-normalised (full-width ``Ｂ``/``：``/``（）`` become ASCII), then an ordered
table of named regexes is tried. *Marker* rules (``答案：C``, ``正解はCです``, ``最終回答：C``,
``選択肢Bが正しい``, ``Answer: ACD``, ``\\boxed{C}``...) may match anywhere and the LAST
match in the text wins. Only when no marker matches is the reply checked for a refusal, and
then *tail* rules (a last line that is just ``B`` / ``(B)`` / ``**C**`` / ``A、C、E`` /
``Option B``, or ends ``So: C``) are tried, and last, when the option texts are given, a
reply that is nothing but one option restated (``B. Tell the patient``).
Anything else is ``unextracted``: the extractor never guesses.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from medsafe.schema import OPTION_LETTERS

ExtractionStatus = Literal["extracted", "unextracted"]

# One answer token: "(b)" (lower case only in parentheses), a lower-case letter that ends the
# line or sentence ("Answer: b."), a run of 2-8 letters A-H ("ACD"), or any single capital but
# "I" (so "F" can be reported as outside the options while "I think" is never a letter).
_TOKEN = (
    r"(?:\([a-h]\)"
    r"|(?<![A-Za-z0-9])[a-h](?=[ \t]*(?:$|[.。!](?!\w)))"
    r"|[(\[【「]?(?<![A-Za-z0-9])(?:[A-H]{2,8}|[A-HJ-Z])(?![A-Za-z0-9])[)\]】」]?)"
)
_SEP = r"(?:[ \t]*(?:,|、|・|&|\+|以及|和|与|及|跟|と|\band\b|, and\b)[ \t]*|[ \t]+)"
_SPAN = rf"(?P<span>{_TOKEN}(?:{_SEP}{_TOKEN})*)"
# A span must not be followed by "... ではなく" ("not A but ...").
_SPAN_END = r"(?![ \t]*(?:ではな|でなく|じゃな))"
_EMPH = r"[*_]*"
_PARSE_TOKEN = re.compile(r"\(([a-h])\)|(?<![A-Za-z])([A-Za-z]{1,8})(?![A-Za-z])")
_AMBIGUOUS = re.compile(rf"[ \t]*(?:/|or|或者|或|または)[ \t]*{_TOKEN}")
_RESTATED = re.compile(r"^\s*[*_]*\(?([A-H])[).:：、．]\s*(.+?)\s*$", re.DOTALL)
_MIN_RESTATED = 12
"""Characters of an option's text a restated reply must repeat (or the whole text if shorter)."""


@dataclass(frozen=True)
class Rule:
    """A named pattern; ``tail`` rules only apply to the last non-empty line."""

    name: str
    pattern: re.Pattern[str]
    tail: bool = False


def _rule(name: str, regex: str, *, tail: bool = False) -> Rule:
    return Rule(name, re.compile(regex, re.MULTILINE), tail)


_EN_VERB = r"(?i:is|are|would\s+be|should\s+be|will\s+be)"
_EN_ADVERB = r"(?:\s+(?i:clearly|probably|likely|most\s+likely|therefore|thus))?"

RULES: tuple[Rule, ...] = (
    _rule(
        "final-answer marker",
        rf"【[^】\n]{{0,10}}(?:答案|答え|正解|(?i:answer))[^】\n]{{0,10}}】\s*:?\s*{_EMPH}\s*"
        rf"{_SPAN}{_SPAN_END}",
    ),
    _rule(
        "boxed answer",
        rf"\\boxed\{{\s*(?:\\text(?:bf)?\{{)?\s*{_SPAN}\s*\}}?\s*\}}",
    ),
    _rule(
        "answer marker",
        rf"\b(?:(?i:answers?)|(?i:correct|right|best|final)\s+(?i:options?|choices?))"
        rf"{_EMPH}\s*(?:{_EN_VERB}{_EN_ADVERB}\s*:?|:)\s*{_EMPH}\s*"
        rf"(?:(?i:options?|choices?)\s+)?{_EMPH}{_SPAN}{_SPAN_END}",
    ),
    _rule(
        "answer marker",
        rf"(?:答案】?\s*(?:应该是|应该为|应是|应为|应选|是|为|选)?|(?<![回解])答\s*(?=:))"
        rf"\s*:?\s*{_EMPH}\s*(?:选项\s*)?{_SPAN}{_SPAN_END}",
    ),
    _rule(
        "answer marker",
        rf"(?<!不)(?:正解|答え|正答|解答|回答)】?\s*(?:は|:)\s*:?\s*{_EMPH}\s*(?:選択肢\s*)?"
        rf"{_SPAN}{_SPAN_END}",
    ),
    _rule(
        "choice marker",
        # same line only: "治疗选择\nD. ..." is an option list, not a choice
        rf"(?<![不未])(?:选择|选出|选)[ \t]*:?[ \t]*{_EMPH}[ \t]*{_SPAN}{_SPAN_END}",
    ),
    _rule(
        "choice marker",
        rf"\bI(?:['’]d|\s+would|\s+will)\s+(?i:choose|select|pick|go\s+with)\s+{_EMPH}"
        rf"(?:(?i:options?|choices?)\s+)?{_SPAN}{_SPAN_END}",
    ),
    _rule(
        "letter-first marker",
        rf"(?:(?i:options?|choices?)\s+)?{_SPAN}{_EMPH}\s*(?:"
        rf"\s(?i:is|are)\s+(?i:the\s+)?(?i:correct|right|best|final)\s+(?i:answer|option|choice)"
        rf"|(?:项|选项)?\s*(?:是|为)\s*(?:正确|最佳|最终)?答案"
        rf"|が(?:正解|正しい答え)|を選[びぶ択])",
    ),
    _rule(
        "letter-first marker",
        # "選択肢Bが正しい", but not "...正しいとは言えない" / "...正しいか" / "...正しいでしょうか"
        rf"選択肢\s*{_SPAN}{_EMPH}\s*が正しい(?!\s*(?:と|か|でしょうか|ですか))",
    ),
    _rule(
        "bare letters",
        rf"^\s*{_EMPH}\s*(?:(?i:options?|choices?)\s*)?{_SPAN}\s*{_EMPH}\s*[.。!]?\s*{_EMPH}\s*$",
        tail=True,
    ),
    _rule(
        "option tail",
        rf"(?:[:,]|\b(?i:is|choose|select|pick|with))\s*{_EMPH}\s*(?i:options?|choices?)\s+"
        rf"{_SPAN}\s*{_EMPH}\s*[.。!]?\s*{_EMPH}\s*$",
        tail=True,
    ),
    _rule(
        "conclusion tail",
        rf"\b(?i:so|thus|hence|therefore)\s*[:,]\s*{_EMPH}\s*(?:(?i:options?|choices?)\s+)?"
        rf"{_SPAN}\s*{_EMPH}\s*[.。!]?\s*{_EMPH}\s*$",
        tail=True,
    ),
)

_REFUSAL = re.compile(
    r"\bI\s+(?:can(?:no|['’])t|cannot|am\s+(?:unable|not\s+able)\s+to|won['’]t|will\s+not|"
    r"must\s+(?:decline|refrain)|refuse)\s+(?:to\s+)?"
    r"(?i:answer|help|assist|provide|choose|select|respond|give)"
    r"|\bI['’]m\s+(?:unable|not\s+able)\s+to\b"
    r"|无法回答|不能回答|无法作答|不便回答|拒绝回答|无法提供|不能提供|无法给出|不能给出"
    r"|お答えできません|お答えすることはできません|回答できません|答えられません|回答を控え",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Extraction:
    """The letters chosen (sorted, ``""`` when none), whether extraction worked, and why."""

    letters: str
    status: ExtractionStatus
    reason: str


def _letters(span: str) -> str:
    found: set[str] = set()
    for lower, word in _PARSE_TOKEN.findall(span):
        if lower:
            found.add(lower.upper())
        elif word.lower() not in ("and",):
            found.update(word.upper())
    return "".join(sorted(found))


def _unextracted(reason: str) -> Extraction:
    return Extraction("", "unextracted", reason)


def _judge(match: re.Match[str], text: str, rule: Rule, allowed: str) -> Extraction:
    letters = _letters(match.group("span"))
    outside = [ch for ch in letters if ch not in allowed]
    if outside:
        return _unextracted(f"letter outside options {', '.join(outside)}")
    if _AMBIGUOUS.match(text, match.end("span")):
        return _unextracted("ambiguous answer")
    return Extraction(letters, "extracted", rule.name)


def _squash(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split()).strip(" *_.。").casefold()


def restated_option(text: str, options: Mapping[str, str]) -> str | None:
    """The letter of the one option that ``text`` consists of (``"A. <text of option A>"``,
    possibly cut short by the token limit but at least :data:`_MIN_RESTATED` characters long),
    or None. A reply listing several options is never a choice."""
    if "\n" in text.strip():
        return None
    match = _RESTATED.match(unicodedata.normalize("NFKC", text))
    if match is None or match.group(1) not in options:
        return None
    said, option = _squash(match.group(2)), _squash(options[match.group(1)])
    if not option or len(said) < min(_MIN_RESTATED, len(option)) or not option.startswith(said):
        return None
    return match.group(1)


def extract_letters(
    text: str, allowed: str, options: Mapping[str, str] | None = None
) -> Extraction:
    """Extract the option letters chosen in ``text``; ``allowed`` is e.g. ``"ABCDE"``;
    ``options`` (letter -> text) enables the ``restated option`` rule."""
    if not allowed or any(ch not in OPTION_LETTERS for ch in allowed):
        raise ValueError(f"allowed must be option letters A-H, got {allowed!r}")
    norm = unicodedata.normalize("NFKC", text)
    if not norm.strip():
        return _unextracted("empty response")
    best: tuple[int, re.Match[str], Rule] | None = None
    for rule in RULES:
        if rule.tail:
            continue
        for match in rule.pattern.finditer(norm):
            # Latest answer wins; on a tie the earlier (more specific) rule keeps it.
            if best is None or match.start("span") > best[0]:
                best = (match.start("span"), match, rule)
    if best is not None:
        return _judge(best[1], norm, best[2], allowed)
    if _REFUSAL.search(norm):
        return _unextracted("refusal")
    line = norm.rstrip().rsplit("\n", 1)[-1]
    for rule in RULES:
        if rule.tail and (tail := rule.pattern.search(line)):
            return _judge(tail, line, rule, allowed)
    if options and (letter := restated_option(norm, options)) is not None:
        return Extraction(letter, "extracted", "restated option")
    return _unextracted("no final answer")
