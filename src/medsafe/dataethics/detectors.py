"""Pattern detectors of personal identifiers in Chinese, Japanese and English text.

Every detector reads the NFKC-folded copy of the text (:mod:`medsafe.dataethics.normalize`) and
yields candidate spans in it; :func:`detect` resolves overlaps and maps spans back to the
original text. What each type matches (and what it deliberately does not) is in
docs/data-ethics.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from medsafe.dataethics import vocab
from medsafe.dataethics.checkdigits import cn_id_valid, my_number_valid
from medsafe.dataethics.entities import EntityType
from medsafe.dataethics.normalize import normalise

__all__ = ["Candidate", "detect", "detect_language"]

_KATAKANA_START = re.compile(r"[\u30a1-\u30faー]")
_KANA = re.compile(r"[\u3041-\u309f\u30a1-\u30fa]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_CJK = r"\u4e00-\u9fff々"
_JA_WORD = r"\u4e00-\u9fff々\u3041-\u309f\u30a1-\u30faー"


def detect_language(text: str) -> str:
    """``ja`` when the text has kana, ``zh`` when it has Han characters, else ``en``."""
    if _KANA.search(text):
        return "ja"
    return "zh" if _HAN.search(text) else "en"


@dataclass(frozen=True)
class Candidate:
    """A span ``[start, end)`` of the folded text and its type."""

    type: EntityType
    start: int
    end: int


Detector = Callable[[str, str], Iterator[Candidate]]


def _window(text: str, start: int, width: int = 16) -> str:
    return text[max(0, start - width) : start].lower()


def _has_word(window: str, words: Sequence[str]) -> bool:
    return any(word in window for word in words)


def _not_an_id(text: str, start: int) -> bool:
    """A lot, order, article or version number is written right before ``start``."""
    return _has_word(_window(text, start, 12), vocab.NOT_AN_ID_BEFORE)


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


# -- e-mail and network ---------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
    r"(?![A-Za-z0-9-])"
)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\d.])(?:{_OCTET}\.){{3}}{_OCTET}(?!\d|\.\d|\s*(?:节|節|条|章|項|款))")
_IPV6 = re.compile(
    r"(?<![0-9A-Fa-f:])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
    r"|(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}"
    r"|::1)(?![0-9A-Fa-f:])"
)


def _email(text: str, lang: str) -> Iterator[Candidate]:
    for match in _EMAIL.finditer(text):
        yield Candidate("email", match.start(), match.end())


def _ip(text: str, lang: str) -> Iterator[Candidate]:
    for match in _IPV4.finditer(text):
        octets = [int(part) for part in match.group(0).split(".")]
        context = _has_word(_window(text, match.start(), 20), vocab.IP_CONTEXT)
        # all octets below 32 without an IP word: more likely a section number (see 10.1.2.3)
        if context or (max(octets) >= 32 and not _not_an_id(text, match.start())):
            yield Candidate("ip_address", match.start(), match.end())
    for match in _IPV6.finditer(text):
        groups = match.group(0).replace("::", ":").strip(":").split(":")
        hexish = any(re.search(r"[A-Fa-f]", g) for g in groups)
        if match.group(0) == "::1" or hexish or len(groups) >= 5:
            yield Candidate("ip_address", match.start(), match.end())


# -- national identifiers -------------------------------------------------------------------
_CN_ID = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5} ?(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    r" ?\d{3}[\dXx](?![0-9A-Za-z])"
)
_MY_NUMBER = re.compile(r"(?<![\d-])\d{4}([ -]?)\d{4}\1\d{4}(?![\d-])")


def _cn_id(text: str, lang: str) -> Iterator[Candidate]:
    for match in _CN_ID.finditer(text):
        number = match.group(0).replace(" ", "")
        if not cn_id_valid(number):
            continue
        window = _window(text, match.start(), 12)
        if "身份" in window or not _not_an_id(text, match.start()):
            yield Candidate("cn_resident_id", match.start(), match.end())


def _my_number(text: str, lang: str) -> Iterator[Candidate]:
    for match in _MY_NUMBER.finditer(text):
        if not my_number_valid(_digits(match.group(0))):
            continue
        context = _has_word(_window(text, match.start(), 20), vocab.MY_NUMBER_CONTEXT)
        if context or (match.group(1) and not _not_an_id(text, match.start())):
            yield Candidate("jp_my_number", match.start(), match.end())


_PASSPORT = re.compile(
    r"(?i:护照|パスポート|旅券|passport)[^A-Za-z0-9\n]{0,12}?(?i:(?:number|no\.?|#)\s*)?"
    r"(?:は|为|是|:|：)?\s*([A-Z]{1,2}\d{6,8}|\d{9})(?![A-Za-z0-9])"
)


def _passport(text: str, lang: str) -> Iterator[Candidate]:
    for match in _PASSPORT.finditer(text):
        yield Candidate("passport", match.start(1), match.end(1))


# -- phones ---------------------------------------------------------------------------------
_SEP = r"[ \-ー.]"
_CN_MOBILE = re.compile(
    rf"(?<![\d+])(?:(?:\+|00)86{_SEP}?)?1[3-9]\d({_SEP}?)\d{{4}}\1\d{{4}}(?!\d)"
)
_CN_LANDLINE = re.compile(
    rf"(?<![\d+])(?:(?:\+|00)86{_SEP}?)?(?:\(0\d{{2,3}}\)|0\d{{2,3}})[ \-]?[2-8]\d{{6,7}}"
    r"(?:\s?(?:转|ext\.?|x)\s?\d{1,5})?(?!\d)"
)
_JP_PHONE = re.compile(
    r"(?<![\d+])(?:0\d{1,4}[\-ー ]\d{1,4}[\-ー ]\d{3,4}|\(0\d{1,4}\)\s?\d{1,4}[\-ー]\d{4}"
    r"|0[5789]0\d{8})(?!\d)"
)
_INTL = re.compile(
    r"(?<![A-Za-z0-9+])\+[1-9]\d{0,2}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}"
    r"(?:[ .\-]?\d{1,4}){1,4}(?!\d)"
)
_NANP = re.compile(r"(?<![\d(])(?:\([2-9]\d{2}\)\s?|[2-9]\d{2}[\-.])\d{3}[\-.]\d{4}(?!\d)")


def _phone(text: str, lang: str) -> Iterator[Candidate]:
    for pattern, low, high in (
        (_CN_MOBILE, 11, 15),
        (_CN_LANDLINE, 10, 19),
        (_JP_PHONE, 10, 11),
        (_INTL, 8, 15),
        (_NANP, 10, 10),
    ):
        for match in pattern.finditer(text):
            count = len(_digits(match.group(0)))
            if low <= count <= high and not _not_an_id(text, match.start()):
                yield Candidate("phone", match.start(), match.end())


# -- medical-record numbers -------------------------------------------------------------------
_MRN_WORDS = "|".join(re.escape(w) for w in sorted(vocab.MRN_CONTEXT, key=len, reverse=True))
_MRN = re.compile(
    rf"(?i:{_MRN_WORDS})\s*(?:(?i:no\.?|number|#)\s*)?(?:[:：#]|は|为|是|is)?\s*"
    r"([A-Za-z]{0,4}-?\d[0-9A-Za-z\-]{3,19})(?![0-9A-Za-z])"
)


def mrn_detector(patterns: Sequence[str]) -> Detector:
    """A detector of medical-record numbers: the default keyword pattern and ``patterns``
    (regular expressions; group 1, when present, is the number)."""
    compiled = [_MRN, *(re.compile(p) for p in patterns)]

    def detect_mrn(text: str, lang: str) -> Iterator[Candidate]:
        for pattern in compiled:
            for match in pattern.finditer(text):
                group = 1 if pattern.groups else 0
                if match.end(group) > match.start(group):
                    yield Candidate("mrn", match.start(group), match.end(group))

    return detect_mrn


# -- dates ----------------------------------------------------------------------------------
_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_YEAR = r"(?:18|19|20)\d{2}"
_DATES = (
    re.compile(
        rf"(?<![\d.])({_YEAR})\s*(?:年|[\-/.])\s*(\d{{1,2}})\s*(?:月|[\-/.])\s*(\d{{1,2}})"
        r"(?:\s*[日号])?(?!\d|\.\d)"
    ),
    re.compile(
        r"(?:令和|平成|昭和|大正|明治)\s*(元|\d{1,2})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日"
    ),
    re.compile(r"(?<![A-Za-z0-9])[RHST](\d{1,2})[./](\d{1,2})[./](\d{1,2})(?!\d|\.\d)"),
    re.compile(rf"(?<![\d./\-])(\d{{1,2}})[/.\-](\d{{1,2}})[/.\-]({_YEAR})(?!\d|[./\-]\d)"),
    re.compile(rf"\b{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+{_YEAR}\b"),
    re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}\.?,?\s+{_YEAR}\b"),
)
_NOT_BIRTH_AFTER = "效产成活命长病"


def _plausible(match: re.Match[str], index: int) -> bool:
    """Month 1-12 and day 1-31 (either order for the numeric day/month/year form)."""
    if index in (0, 1, 2):
        month, day = int(match.group(2)), int(match.group(3))
        return 1 <= month <= 12 and 1 <= day <= 31
    if index == 3:
        first, second = sorted((int(match.group(1)), int(match.group(2))))
        return 1 <= first <= 12 and second <= 31
    return True


def _is_birth(text: str, start: int, end: int) -> bool:
    window = _window(text, start, 18)
    if _has_word(window, vocab.DOB_BEFORE):
        return True
    after = text[end : end + 4].lstrip()
    if after.startswith("生") and after[1:2] and after[1] in _NOT_BIRTH_AFTER:
        return False
    return any(after.startswith(word) for word in vocab.DOB_AFTER)


def _dates(text: str, lang: str) -> Iterator[Candidate]:
    for index, pattern in enumerate(_DATES):
        for match in pattern.finditer(text):
            if not _plausible(match, index):
                continue
            kind: EntityType = "date_of_birth" if _is_birth(text, *match.span()) else "date"
            yield Candidate(kind, match.start(), match.end())


# -- addresses and postal codes ---------------------------------------------------------------
_PROVINCES = "|".join(vocab.CN_PROVINCES)
_CN_STREET = (
    r"[\u4e00-\u9fff\d]{0,14}?(?:路|街|巷|弄|胡同|大道|大街|段)\s*\d+(?:-\d+)?\s*号"
    r"(?:\s*\d+\s*(?:号楼|栋|幢|单元|楼|室)){0,3}"
)
_CN_ADDRESS = (
    re.compile(
        rf"(?:{_PROVINCES})(?:省|市|自治区|特别行政区|壮族自治区|回族自治区|维吾尔自治区)?"
        rf"[\u4e00-\u9fff]{{0,10}}?(?:市|区|县|旗|州|盟){_CN_STREET}"
    ),
    re.compile(
        rf"(?:住址|地址|家住|住在|现住|居住在|住于)[:：]?\s*([\u4e00-\u9fff]{{1,10}}?{_CN_STREET})"
    ),
)
_PREFECTURES = "|".join(vocab.JP_PREFECTURES)
_JP_BLOCK = rf"[{_JA_WORD}\d]{{0,14}}?\d+\s*(?:丁目|-)\s*\d+\s*(?:番地?|-)?\s*(?:\d+\s*号?)?"
_JP_ADDRESS = (
    re.compile(rf"(?:{_PREFECTURES})[{_JA_WORD}]{{1,12}}?(?:市|区|町|村|郡){_JP_BLOCK}"),
    re.compile(rf"(?:住所|所在地)[:：は]?\s*([{_JA_WORD}]{{1,12}}?(?:市|区|町|村|郡){_JP_BLOCK})"),
)
_EN_ADDRESS = re.compile(
    r"(?<![\w-])\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl"
    r"|Terrace|Close|Crescent)\b\.?"
    r"(?:,?\s+(?:Apt|Suite|Unit)\.?\s*#?\w+)?"
    r"(?:,\s*[A-Z][a-z]+(?:\s[A-Z][a-z]+)?(?:,\s*[A-Z]{2}(?:\s+\d{5}(?:-\d{4})?)?)?)?"
)
_POSTAL = (
    re.compile(r"〒\s*(\d{3}-?\d{4})(?!\d)"),
    re.compile(r"(?:郵便番号|邮编|邮政编码)[:：は为]?\s*(\d{3}-?\d{4}|\d{6})(?!\d)"),
    re.compile(rf"(?<![\d-])(\d{{3}}-\d{{4}})\s*(?={_PREFECTURES})"),
    re.compile(r"(?i:zip(?:\s*code)?|postcode|postal code)[:\s]\s*(\d{5}(?:-\d{4})?)(?!\d)"),
)


def _addresses(text: str, lang: str) -> Iterator[Candidate]:
    for pattern in (*_CN_ADDRESS, *_JP_ADDRESS, _EN_ADDRESS):
        for match in pattern.finditer(text):
            group = 1 if pattern.groups else 0
            yield Candidate("address", match.start(group), match.end(group))
    for pattern in _POSTAL:
        for match in pattern.finditer(text):
            yield Candidate("postal_code", match.start(1), match.end(1))


# -- person names -----------------------------------------------------------------------------
_ZH_SURNAMES = "|".join(sorted(vocab.CN_SURNAMES, key=len, reverse=True))
_ZH_TITLES = "|".join(sorted(vocab.ZH_TITLES, key=len, reverse=True))
_ZH_TITLED = re.compile(rf"(?:{_ZH_SURNAMES})[\u4e00-\u9fff]{{0,2}}?(?={_ZH_TITLES})")
_ZH_NAMED = re.compile(
    rf"(?:姓名|名字|患者姓名|病人姓名|我叫|他叫|她叫|名叫)[:：]?\s*((?:{_ZH_SURNAMES})[\u4e00-\u9fff]{{1,2}})"
    r"(?=$|[^\u4e00-\u9fff]|男|女|先生|女士)"
)
_ZH_PATIENT = re.compile(
    rf"(?:患者|病人|病患)((?:{_ZH_SURNAMES})[\u4e00-\u9fff]{{1,2}}?)(?=[，,、（(\s]*(?:男|女|\d{{1,3}}岁))"
)
_ZH_FUNCTION = set("的了是和与给让请或在有位个名些把被向对跟同及找问看当做为由于就都也还这那")
_ZH_NOT_NAMES = frozenset(
    vocab.words("万一 由于 关于 对于 属于 等于 至于 在于 基于 位于 常规 高年资 金牌")
)

_JA_TITLES = "|".join(sorted(vocab.JA_TITLES, key=len, reverse=True))
_JA_TITLED = re.compile(
    rf"(?<![{_CJK}])([{_CJK}]{{1,8}}|(?<![\u30a1-\u30faー])[\u30a1-\u30faー]{{2,10}})"
    rf"(?:{_JA_TITLES})"
)
_JA_PREFIXES = ("主治医", "担当医", "患者", "医師", "看護師", "担当", "院長", "部長", "家族")
_JA_KATAKANA_NOT = frozenset(
    vocab.words("ヘルパー ケアマネ ドクター ナース パパ ママ スタッフ ドライバー オーナー ゲスト")
)
_JA_MORE_NOT = frozenset(
    vocab.words(
        "学生 生徒 職員 店員 住民 主人 家内 妻 夫 友人 上司 同僚 先輩 後輩 隣 近所 医師 看護師 "
        "薬剤師 技師 歯科医 獣医 女性 男性 高齢者 老人 若者 妊婦 本人 当人 各自 お母 お父 奥様 "
        "皆さま 先生 教授 医学部 内科 外科"
    )
)
_EN_TITLES = "|".join(vocab.EN_TITLES)
_EN_TITLED = re.compile(
    rf"\b(?:{_EN_TITLES})\.?\s+(?!(?:{_EN_TITLES})\b)((?:(?:[A-Z]')?[A-Z][a-z\u00e0-\u00ff]+|[A-Z]\.)"
    r"(?:[-'][A-Z][a-z\u00e0-\u00ff]+)?(?:\s+[A-Z][a-z\u00e0-\u00ff]+)?)"
)
_EN_NAMED = re.compile(
    r"(?:\b[Nn]ame\s*[:：]\s*|\b[Mm]y name is\s+)([A-Z][a-z]+(?:\s+[A-Z]\.)?(?:\s+[A-Z][a-z]+)+)"
)


def _zh_person(text: str) -> Iterator[Candidate]:
    for match in _ZH_TITLED.finditer(text):
        name, start = match.group(0), match.start()
        before = text[start - 1 : start]
        if name in _ZH_NOT_NAMES or (before + name[:1]) in _ZH_NOT_NAMES:
            continue
        if any(ch in _ZH_FUNCTION for ch in name[1:]):
            continue
        if before and before + name in _ZH_NOT_NAMES:
            continue
        yield Candidate("person", start, match.end())
    for pattern in (_ZH_NAMED, _ZH_PATIENT):
        for match in pattern.finditer(text):
            yield Candidate("person", match.start(1), match.end(1))


def _ja_person(text: str) -> Iterator[Candidate]:
    for match in _JA_TITLED.finditer(text):
        name, start = match.group(1), match.start(1)
        for prefix in _JA_PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                name, start = name[len(prefix) :], start + len(prefix)
                break
        title_end = match.end()
        if text[title_end - 1] == "様" and text[title_end - 1 : title_end + 1] in (
            vocab.JA_SAMA_COMPOUNDS
        ):
            continue
        if name in vocab.JA_NOT_NAMES or name in _JA_MORE_NOT or name in _JA_KATAKANA_NOT:
            continue
        if len(name) > 6:
            continue
        kanji = not _KATAKANA_START.match(name)
        if kanji and len(name) == 1 and name not in vocab.JA_ONE_KANJI_SURNAMES:
            continue
        yield Candidate("person", start, start + len(name))


def _person(text: str, lang: str) -> Iterator[Candidate]:
    if lang == "zh":
        yield from _zh_person(text)
    elif lang == "ja":
        yield from _ja_person(text)
    for pattern in (_EN_TITLED, _EN_NAMED):
        for match in pattern.finditer(text):
            yield Candidate("person", match.start(1), match.end(1))


DETECTORS: tuple[Detector, ...] = (
    _email,
    _cn_id,
    _my_number,
    _passport,
    _phone,
    _dates,
    _ip,
    _addresses,
    _person,
)
"""Built-in detectors; the MRN detector is added with the configured patterns."""

_PRIORITY: dict[str, int] = {
    "cn_resident_id": 0,
    "jp_my_number": 0,
    "email": 1,
    "passport": 2,
    "mrn": 2,
    "phone": 3,
    "date_of_birth": 4,
    "date": 5,
    "ip_address": 5,
    "address": 6,
    "postal_code": 6,
    "person": 7,
}


def _resolve(candidates: list[Candidate]) -> list[Candidate]:
    """Keep, among overlapping spans, the one of the highest-priority type (then the longest)."""
    ranked = sorted(candidates, key=lambda c: (_PRIORITY[c.type], -(c.end - c.start), c.start))
    kept: list[Candidate] = []
    for candidate in ranked:
        if all(candidate.end <= k.start or candidate.start >= k.end for k in kept):
            kept.append(candidate)
    return sorted(kept, key=lambda c: (c.start, c.end))


def detect(
    text: str, lang: str | None = None, mrn_patterns: Sequence[str] = ()
) -> list[tuple[EntityType, int, int]]:
    """``(type, start, end)`` spans of ``text`` (original offsets), in text order."""
    folded = normalise(text)
    language = lang or detect_language(folded.text)
    candidates: list[Candidate] = []
    for detector in (*DETECTORS, mrn_detector(mrn_patterns)):
        candidates.extend(c for c in detector(folded.text, language) if c.end > c.start)
    return [(c.type, *folded.span(c.start, c.end)) for c in _resolve(candidates)]
