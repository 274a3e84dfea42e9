"""The entity types the detectors report, their severity, and what a finding is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BLOCKING",
    "ENTITY_TYPES",
    "STRUCTURED",
    "WARNING",
    "EntityType",
    "Finding",
    "Severity",
    "severity",
]

EntityType = Literal[
    "email",
    "phone",
    "cn_resident_id",
    "jp_my_number",
    "passport",
    "mrn",
    "date_of_birth",
    "date",
    "address",
    "postal_code",
    "ip_address",
    "person",
]
ENTITY_TYPES: tuple[EntityType, ...] = (
    "email",
    "phone",
    "cn_resident_id",
    "jp_my_number",
    "passport",
    "mrn",
    "date_of_birth",
    "date",
    "address",
    "postal_code",
    "ip_address",
    "person",
)
Severity = Literal["identifier", "name", "date"]

STRUCTURED: frozenset[str] = frozenset({"email", "phone", "cn_resident_id", "jp_my_number"})
"""Identifiers with a fixed structure (check digits, numbering plans): recall must be >= 0.95."""
WARNING: frozenset[str] = frozenset({"person"})
"""Types that only warn under the ``block`` egress policy (names are found by context alone)."""
BLOCKING: frozenset[str] = frozenset(ENTITY_TYPES) - WARNING - {"date"}
"""Types that the ``block`` egress policy refuses to send to a remote endpoint."""


def severity(entity: str) -> Severity:
    """``identifier`` (blocks egress), ``name`` (warns) or ``date`` (a non-birth date: kept or
    removed by --redact as asked, never blocks)."""
    if entity == "date":
        return "date"
    return "name" if entity in WARNING else "identifier"


@dataclass(frozen=True)
class Finding:
    """One detected span: ``[start, end)`` indexes the (decoded) text that was scanned.

    ``line``, ``item_id`` and ``field`` locate it in a file, suite or run (None when scanning a
    bare text; ``line`` is the 1-based physical line of a file).
    """

    type: EntityType
    start: int
    end: int
    text: str
    line: int | None = None
    item_id: str | None = None
    field: str | None = None

    @property
    def severity(self) -> Severity:
        """See :func:`severity`."""
        return severity(self.type)

    def location(self) -> dict[str, object]:
        """The JSON form ``{line, item_id, field, type, start, end}`` (never the text)."""
        return {
            "line": self.line,
            "item_id": self.item_id,
            "field": self.field,
            "type": self.type,
            "start": self.start,
            "end": self.end,
        }
