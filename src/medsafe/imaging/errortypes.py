"""The eight radiology-report error types and their names in zh, ja and en.

The types follow the CT-report quality-control benchmark of arXiv 2503.07032. Each type has a
stable id, a display name per language and synonyms; :func:`synonym_groups` gives the table the
tolerant label parser reads (any name or synonym maps to the suite's own label for the type).
"""

from __future__ import annotations

from dataclasses import dataclass

from medsafe.schema import Language


@dataclass(frozen=True)
class ErrorType:
    """One report error type: id, display names and further synonyms."""

    id: str
    names: dict[Language, str]
    synonyms: tuple[str, ...]

    def name(self, language: Language) -> str:
        """The display name in ``language``."""
        return self.names[language]


ERROR_TYPES: tuple[ErrorType, ...] = (
    ErrorType(
        "laterality",
        {"zh": "左右错误", "ja": "左右の誤り", "en": "laterality error"},
        ("方位错误", "左右颠倒", "側性の誤り", "左右誤り", "left/right error", "wrong side",
         "laterality"),
    ),
    ErrorType(
        "unit",
        {"zh": "单位错误", "ja": "単位の誤り", "en": "unit error"},
        ("数值单位错误", "計測単位の誤り", "単位誤り", "measurement unit error", "wrong unit"),
    ),
    ErrorType(
        "sex_anatomy",
        {"zh": "性别错误", "ja": "性別の誤り", "en": "sex-inconsistent anatomy"},
        ("性别不符", "性别与解剖不符", "性別不一致", "gender error", "sex error",
         "sex inconsistency"),
    ),
    ErrorType(
        "typo",
        {"zh": "错别字", "ja": "誤字", "en": "typo"},
        ("形近字错误", "别字", "誤変換", "spelling error", "typographical error", "misspelling"),
    ),
    ErrorType(
        "missing_extra",
        {"zh": "多字漏字", "ja": "脱字・衍字", "en": "missing or extra characters"},
        ("漏字", "多字", "缺字", "脱字", "衍字", "missing characters", "extra characters",
         "omission"),
    ),
    ErrorType(
        "exam_mismatch",
        {"zh": "检查项目不符", "ja": "検査項目の不一致", "en": "exam-report mismatch"},
        ("检查部位不符", "检查与报告不符", "検査部位の不一致", "exam mismatch",
         "examination mismatch", "wrong exam"),
    ),
    ErrorType(
        "contradiction",
        {"zh": "描述与结论矛盾", "ja": "所見と診断の矛盾",
         "en": "findings-impression contradiction"},
        ("前后矛盾", "所见与结论不符", "所見と結論の矛盾", "contradiction",
         "findings/impression contradiction", "inconsistent impression"),
    ),
    ErrorType(
        "wording",
        {"zh": "用词不当", "ja": "不適切な表現", "en": "improper wording"},
        ("术语不规范", "表述不当", "不適切な用語", "inappropriate wording", "improper terminology",
         "wording"),
    ),
)  # fmt: skip
"""The eight types, in the order the benchmark lists them."""

BY_ID: dict[str, ErrorType] = {t.id: t for t in ERROR_TYPES}


def all_names(error_type: ErrorType) -> tuple[str, ...]:
    """Every way of naming a type: its id, its three names and its synonyms."""
    return (error_type.id, *error_type.names.values(), *error_type.synonyms)


def synonym_groups() -> tuple[tuple[str, ...], ...]:
    """Groups of equivalent names, one per built-in type (the parser's synonym table)."""
    return tuple(all_names(t) for t in ERROR_TYPES)
