"""Detectors of numbers that identify a person: e-mail, IP address, national IDs (with their
check digits), passports, phone numbers and medical-record numbers."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from medsafe.dataethics import vocab
from medsafe.dataethics._common import Candidate, Detector, before, digits, has_word, not_an_id
from medsafe.dataethics.checkdigits import cn_id_valid, my_number_valid

__all__ = ["cn_id", "email", "ip", "mrn_detector", "my_number", "passport", "phone"]

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


def email(text: str, lang: str) -> Iterator[Candidate]:
    """E-mail addresses."""
    for match in _EMAIL.finditer(text):
        yield Candidate("email", match.start(), match.end())


def ip(text: str, lang: str) -> Iterator[Candidate]:
    """IPv4 (with an IP word nearby or an octet >= 32) and IPv6 addresses."""
    for match in _IPV4.finditer(text):
        octets = [int(part) for part in match.group(0).split(".")]
        context = has_word(before(text, match.start(), 20), vocab.IP_CONTEXT)
        # all octets below 32 without an IP word: more likely a section number (see 10.1.2.3)
        if context or (max(octets) >= 32 and not not_an_id(text, match.start())):
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


def cn_id(text: str, lang: str) -> Iterator[Candidate]:
    """Chinese resident IDs whose check character is right."""
    for match in _CN_ID.finditer(text):
        number = match.group(0).replace(" ", "")
        if not cn_id_valid(number):
            continue
        window = before(text, match.start(), 12)
        if "身份" in window or not not_an_id(text, match.start()):
            yield Candidate("cn_resident_id", match.start(), match.end())


def my_number(text: str, lang: str) -> Iterator[Candidate]:
    """My Numbers whose check digit is right, after a keyword or grouped 4-4-4."""
    for match in _MY_NUMBER.finditer(text):
        if not my_number_valid(digits(match.group(0))):
            continue
        context = has_word(before(text, match.start(), 20), vocab.MY_NUMBER_CONTEXT)
        if context or (match.group(1) and not not_an_id(text, match.start())):
            yield Candidate("jp_my_number", match.start(), match.end())


_PASSPORT = re.compile(
    r"(?i:护照|パスポート|旅券|passport)[^A-Za-z0-9\n]{0,12}?(?i:(?:number|no\.?|#)\s*)?"
    r"(?:は|为|是|:|：)?\s*([A-Z]{1,2}\d{6,8}|\d{9})(?![A-Za-z0-9])"
)


def passport(text: str, lang: str) -> Iterator[Candidate]:
    """Passport numbers shortly after a passport keyword."""
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


def phone(text: str, lang: str) -> Iterator[Candidate]:
    """CN, JP, international and NANP phone numbers."""
    for pattern, low, high in (
        (_CN_MOBILE, 11, 15),
        (_CN_LANDLINE, 10, 19),
        (_JP_PHONE, 10, 11),
        (_INTL, 8, 15),
        (_NANP, 10, 10),
    ):
        for match in pattern.finditer(text):
            count = len(digits(match.group(0)))
            if low <= count <= high and not not_an_id(text, match.start()):
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
