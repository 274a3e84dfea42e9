"""Replace findings by typed placeholders that stay consistent within one file.

The same value of the same type gets the same placeholder everywhere in a file (``[PERSON_1]``
each time 田中 appears, ``[PHONE_2]`` for the second distinct phone number); values are compared
after NFKC folding and with separators removed, so ``090-1234-5678`` and ``０９０１２３４５６７８``
are one number. Non-birth dates are replaced as ``[DATE_N]`` or kept, as asked.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from medsafe.dataethics.entities import Finding

__all__ = ["PLACEHOLDER_NAMES", "Redactor"]

PLACEHOLDER_NAMES: dict[str, str] = {
    "email": "EMAIL",
    "phone": "PHONE",
    "cn_resident_id": "CN_ID",
    "jp_my_number": "MY_NUMBER",
    "passport": "PASSPORT",
    "mrn": "MRN",
    "date_of_birth": "DOB",
    "date": "DATE",
    "address": "ADDRESS",
    "postal_code": "POSTAL_CODE",
    "ip_address": "IP",
    "person": "PERSON",
}


def _key(finding: Finding) -> tuple[str, str]:
    folded = unicodedata.normalize("NFKC", finding.text).casefold()
    return finding.type, "".join(ch for ch in folded if ch.isalnum())


class Redactor:
    """Numbers placeholders per type across every text of one file."""

    def __init__(self, *, keep_dates: bool = False) -> None:
        self.keep_dates = keep_dates
        self._numbers: dict[tuple[str, str], int] = {}
        self._counts: dict[str, int] = {}

    def placeholder(self, finding: Finding) -> str:
        """``[TYPE_N]``: N numbers the distinct values of that type in order of appearance."""
        key = _key(finding)
        if key not in self._numbers:
            self._counts[finding.type] = self._counts.get(finding.type, 0) + 1
            self._numbers[key] = self._counts[finding.type]
        return f"[{PLACEHOLDER_NAMES[finding.type]}_{self._numbers[key]}]"

    def redact(self, text: str, findings: Sequence[Finding]) -> str:
        """``text`` with each finding (offsets into ``text``, not overlapping) replaced."""
        pieces: list[str] = []
        position = 0
        for finding in sorted(findings, key=lambda f: f.start):
            if finding.type == "date" and self.keep_dates:
                continue
            if finding.start < position:
                continue
            pieces.append(text[position : finding.start])
            pieces.append(self.placeholder(finding))
            position = finding.end
        pieces.append(text[position:])
        return "".join(pieces)

    @property
    def counts(self) -> dict[str, int]:
        """Distinct values replaced, per type."""
        return dict(self._counts)
