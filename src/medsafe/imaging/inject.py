"""Inject the eight report error types into clean reports, with exact ground truth.

Each injection replaces ``original`` by ``injected`` at character ``offset`` of one field
(``exam``, ``findings`` or ``impression``), so the clean text is always recoverable:
``text[:offset] + original + text[offset + len(injected):]``. The detection items it writes are
canonical medsafe items (``kind: detection``) and run with the ``detection`` scorer.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from medsafe.imaging.errortypes import BY_ID, ERROR_TYPES
from medsafe.imaging.reports import EXAMS, LICENSE, SOURCE, Report
from medsafe.schema import Language


@dataclass(frozen=True)
class Injection:
    """One injected error and where it is."""

    type: str
    field: str
    location: str
    """``findings``, ``impression`` or ``exam`` (the header's examination name)."""
    offset: int
    original: str
    injected: str

    def apply_text(self, text: str) -> str:
        """The field's text with this error in it."""
        if text[self.offset : self.offset + len(self.original)] != self.original:
            raise ValueError(f"{self.type}: {self.original!r} not found at {self.offset}")
        return text[: self.offset] + self.injected + text[self.offset + len(self.original) :]

    def apply(self, report: Report) -> Report:
        """The report with this error in it."""
        return report.with_field(self.field, self.apply_text(report.field(self.field)))

    def revert(self, text: str) -> str:
        """The clean text of the field from the injected one."""
        if text[self.offset : self.offset + len(self.injected)] != self.injected:
            raise ValueError(f"{self.type}: {self.injected!r} not found at {self.offset}")
        return text[: self.offset] + self.original + text[self.offset + len(self.injected) :]


Injector = Callable[[Report, random.Random], Injection]
_JA_TYPOS = {"肺": "沛", "肝": "汗", "嚢": "襄", "脳": "悩", "胆": "担", "膵": "萃",
             "縦": "従", "節": "筋", "域": "城", "境": "鏡", "室": "窒"}  # fmt: skip
_ZH_TYPOS = {
    "肺": "沛", "肝": "杆", "肾": "贤", "脑": "恼", "影": "景", "囊": "嚢", "密": "蜜",
    "清": "青", "膀": "旁", "胆": "担", "脾": "碑", "管": "菅", "楚": "础", "积": "织",
}  # fmt: skip
_EN_TYPOS = (("m", "rn"), ("cl", "d"), ("e", "c"), ("i", "l"), ("o", "0"))
_WORDING: dict[Language, tuple[tuple[str, str], ...]] = {
    "zh": (("考虑", "肯定是"), ("建议随访复查", "不用管"), ("低密度影", "黑影")),
    "ja": (("考えられます", "間違いありません"), ("推奨します", "不要です")),
    "en": (("most likely", "for sure"), ("likely", "definitely"), ("consistent with", "100% a")),
}
_NEGATIVE: dict[Language, str] = {
    "zh": "未见明显异常。", "ja": "異常所見はありません。", "en": "No abnormality.",
}  # fmt: skip
_SEX_SENTENCE: dict[Language, dict[str, str]] = {
    "zh": {"M": "子宫及双侧附件未见异常。", "F": "前列腺大小形态正常。"},
    "ja": {"M": "子宮と付属器に異常はありません。", "F": "前立腺の大きさは正常です。"},
    "en": {
        "M": " The uterus and adnexa are unremarkable.",
        "F": " The prostate is normal in size.",
    },
}
_SEX_SWAP: dict[Language, tuple[str, str]] = {"zh": ("子宫", "前列腺"), "ja": ("子宮", "前立腺"),
                                              "en": ("uterus", "prostate")}  # fmt: skip


def _first(pattern: str, text: str, rng: random.Random) -> re.Match[str]:
    matches = list(re.finditer(pattern, text))
    if not matches:
        raise ValueError(f"nothing matches {pattern!r}")
    return rng.choice(matches)


def _laterality(report: Report, rng: random.Random) -> Injection:
    pattern = r"\b(?:left|right|Left|Right)\b" if report.language == "en" else "[左右]"
    match = _first(pattern, report.findings, rng)
    swap = {"左": "右", "右": "左", "left": "right", "right": "left",
            "Left": "Right", "Right": "Left"}  # fmt: skip
    return Injection("laterality", "findings", "findings", match.start(), match[0], swap[match[0]])


def _unit(report: Report, rng: random.Random) -> Injection:
    match = _first(r"(?<=\d)\s?mm", report.findings, rng)
    return Injection("unit", "findings", "findings", match.start(), match[0], match[0][:-2] + "cm")


def _sex(report: Report, rng: random.Random) -> Injection:
    female, male = _SEX_SWAP[report.language]
    where = report.findings.find(female if report.sex == "F" else male)
    if where >= 0:
        word = female if report.sex == "F" else male
        other = male if report.sex == "F" else female
        return Injection("sex_anatomy", "findings", "findings", where, word, other)
    sentence = _SEX_SENTENCE[report.language][report.sex]
    end = len(report.findings)
    return Injection("sex_anatomy", "findings", "findings", end, "", sentence)


def _typo(report: Report, rng: random.Random) -> Injection:
    text = report.findings
    if report.language in ("zh", "ja"):
        table = _ZH_TYPOS if report.language == "zh" else _JA_TYPOS
        match = _first("[" + "".join(table) + "]", text, rng)
        new = table[match[0]]
        return Injection("typo", "findings", "findings", match.start(), match[0], new)
    words = [m for m in re.finditer(r"[A-Za-z]{5,}", text)
             if any(a in m[0] for a, _ in _EN_TYPOS)]  # fmt: skip
    match = rng.choice(words)
    for old, new in _EN_TYPOS:
        at = match[0].find(old)
        if at >= 0:
            start = match.start() + at
            return Injection("typo", "findings", "findings", start, old, new)
    raise AssertionError("unreachable: words were filtered on the typo table")


def _missing_extra(report: Report, rng: random.Random) -> Injection:
    pattern = {"zh": r"[\u4e00-\u9fff]{4,}", "ja": r"[\u3040-\u30ff\u4e00-\u9fff]{4,}",
               "en": r"[A-Za-z]{6,}"}[report.language]  # fmt: skip
    match = _first(pattern, report.findings, rng)
    at = match.start() + rng.randrange(1, len(match[0]) - 1)
    char = report.findings[at]
    if rng.random() < 0.5:
        return Injection("missing_extra", "findings", "findings", at, char, "")
    return Injection("missing_extra", "findings", "findings", at, char, char + char)


def _exam(report: Report, rng: random.Random) -> Injection:
    others = sorted(n for r, n in EXAMS[report.language].items() if r != report.region)
    return Injection("exam_mismatch", "exam", "exam", 0, report.exam, rng.choice(others))


def _contradiction(report: Report, rng: random.Random) -> Injection:
    negative = _NEGATIVE[report.language]
    return Injection("contradiction", "impression", "impression", 0, report.impression, negative)


def _wording(report: Report, rng: random.Random) -> Injection:
    for old, new in _WORDING[report.language]:
        at = report.impression.find(old)
        if at >= 0:
            return Injection("wording", "impression", "impression", at, old, new)
    raise ValueError("no wording to replace in the impression")


INJECTORS: dict[str, Injector] = {
    "laterality": _laterality,
    "unit": _unit,
    "sex_anatomy": _sex,
    "typo": _typo,
    "missing_extra": _missing_extra,
    "exam_mismatch": _exam,
    "contradiction": _contradiction,
    "wording": _wording,
}
assert set(INJECTORS) == {t.id for t in ERROR_TYPES}

PROMPTS: dict[Language, str] = {
    "zh": (
        "以下是一份CT报告。请检查其中的错误，错误类型限于：{labels}。"
        "只输出错误类型，多个用|分隔；如无错误，输出“无问题”。\n\n{report}"
    ),
    "ja": (
        "以下はCT報告書です。誤りを確認してください。誤りの種類は次に限ります：{labels}。"
        "誤りの種類だけを「|」区切りで答え、誤りがなければ「問題なし」と答えてください。\n\n{report}"
    ),
    "en": (
        "Below is a CT report. Check it for errors of these types: {labels}. "
        "Answer with the error types only, joined by |; answer 'none' if there is no error."
        "\n\n{report}"
    ),
}


def label_set(language: Language) -> list[str]:
    """The eight type names in ``language``."""
    return [t.name(language) for t in ERROR_TYPES]


def detection_item(report: Report, item_id: str, injection: Injection | None) -> dict[str, Any]:
    """A canonical detection item asking about ``report`` (with ``injection`` in it, if any)."""
    labels = label_set(report.language)
    shown = injection.apply(report) if injection else report
    errors: list[dict[str, Any]] = []
    expected: list[str] = []
    locations: dict[str, str] = {}
    if injection is not None:
        name = BY_ID[injection.type].name(report.language)
        expected.append(name)
        if injection.location in ("findings", "impression"):
            locations[name] = injection.location
        error = {"type": name, "location": injection.location, "span": injection.injected}
        errors.append({**error, "suggestion": injection.original})
    prompt = PROMPTS[report.language].format(
        labels=(", " if report.language == "en" else "、").join(labels), report=shown.text()
    )
    return {
        "id": item_id,
        "kind": "detection",
        "language": report.language,
        "prompt": prompt,
        "label_set": labels,
        "expected": expected,
        "locations": locations,
        "report_id": report.id,
        "errors": errors,
        "source": SOURCE,
        "license": LICENSE,
    }


def inject_all(
    reports: list[Report],
    types: tuple[str, ...] | None = None,
    *,
    clean: bool = True,
    seed: int = 0,
) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """``(item, truth)`` for each report: its clean copy (truth None) when ``clean``, then one
    item per error type with the ground-truth record of the injection."""
    rng = random.Random(seed)
    for report in reports:
        if clean:
            yield detection_item(report, f"{report.id}-clean", None), None
        for type_id in types or tuple(INJECTORS):
            injection = INJECTORS[type_id](report, rng)
            item_id = f"{report.id}-{type_id}"
            truth = {"id": item_id, "report_id": report.id, "language": report.language,
                     "clean": {"exam": report.exam, "findings": report.findings,
                               "impression": report.impression},
                     **asdict(injection)}  # fmt: skip
            yield detection_item(report, item_id, injection), truth
