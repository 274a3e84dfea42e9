"""Person names: zh/ja names before a title (王医生, 田中さん, 山田様, not 同様 or 様子), English
names after Mr./Dr., and names after a keyword (姓名：, Name:)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from medsafe.dataethics import vocab
from medsafe.dataethics._common import CJK, Candidate

_KATAKANA_START = re.compile(r"[\u30a1-\u30faー]")

__all__ = ["person"]

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
    rf"(?<![{CJK}])([{CJK}]{{1,8}}|(?<![\u30a1-\u30faー])[\u30a1-\u30faー]{{2,10}})"
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


def person(text: str, lang: str) -> Iterator[Candidate]:
    """Person names by the rules of ``lang``, and English titled names in any text."""
    if lang == "zh":
        yield from _zh_person(text)
    elif lang == "ja":
        yield from _ja_person(text)
    for pattern in (_EN_TITLED, _EN_NAMED):
        for match in pattern.finditer(text):
            yield Candidate("person", match.start(1), match.end(1))
