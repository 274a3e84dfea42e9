"""Postal addresses (CN provinces, JP prefectures, English street addresses) and postal codes."""

from __future__ import annotations

import re
from collections.abc import Iterator

from medsafe.dataethics import vocab
from medsafe.dataethics._common import JA_WORD, Candidate

__all__ = ["addresses"]

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
_JP_BLOCK = rf"[{JA_WORD}\d]{{0,14}}?\d+\s*(?:丁目|-)\s*\d+\s*(?:番地?|-)?\s*(?:\d+\s*号?)?"
_JP_ADDRESS = (
    re.compile(rf"(?:{_PREFECTURES})[{JA_WORD}]{{1,12}}?(?:市|区|町|村|郡){_JP_BLOCK}"),
    re.compile(rf"(?:住所|所在地)[:：は]?\s*([{JA_WORD}]{{1,12}}?(?:市|区|町|村|郡){_JP_BLOCK})"),
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


def addresses(text: str, lang: str) -> Iterator[Candidate]:
    """Street-level postal addresses and postal codes."""
    for pattern in (*_CN_ADDRESS, *_JP_ADDRESS, _EN_ADDRESS):
        for match in pattern.finditer(text):
            group = 1 if pattern.groups else 0
            yield Candidate("address", match.start(group), match.end(group))
    for pattern in _POSTAL:
        for match in pattern.finditer(text):
            yield Candidate("postal_code", match.start(1), match.end(1))
