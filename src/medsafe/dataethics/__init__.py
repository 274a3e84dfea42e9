"""Data-ethics checks: PHI/PII detection, redaction, licences and the egress policy (zh/ja/en).

Scanning (every function returns :class:`Finding` s: ``type``, ``start``/``end`` offsets into
the text that was scanned, the matched ``text``, and ``line``/``item_id``/``field`` where known)::

    scan_text(text, lang=None, config=None) -> list[Finding]   # one text
    scan_records(fields, config=None) -> Iterator[Finding]     # TextField(text, field, line, id)
    scan_items(items, config=None) -> Iterator[Finding]        # Items: what a model is sent
    scan_run(conn, run_id, config=None) -> RunScan             # a stored run: items and answers

``RunScan`` (for the governance report) holds the findings in the items and in the model's
answers, counts per type, the number of items with identifiers, and the items per licence and
source. ``ScanConfig(mrn_patterns=(...), lang=None)`` adds a hospital's medical-record-number
patterns. Types and their severity are in :mod:`medsafe.dataethics.entities`; the egress policy
(:func:`check_egress`, used by ``medsafe run`` and :func:`medsafe.evaluate`) is in
:mod:`medsafe.dataethics.egress`; ``medsafe check-data`` and the figures are documented in
docs/data-ethics.md.
"""

from medsafe.dataethics.egress import EgressDecision, EgressRefused, check_egress, is_loopback
from medsafe.dataethics.entities import BLOCKING, ENTITY_TYPES, STRUCTURED, Finding, severity
from medsafe.dataethics.redaction import Redactor
from medsafe.dataethics.scan import (
    RunScan,
    ScanConfig,
    TextField,
    scan_items,
    scan_records,
    scan_run,
    scan_text,
)

__all__ = [
    "BLOCKING",
    "ENTITY_TYPES",
    "STRUCTURED",
    "EgressDecision",
    "EgressRefused",
    "Finding",
    "Redactor",
    "RunScan",
    "ScanConfig",
    "TextField",
    "check_egress",
    "is_loopback",
    "scan_items",
    "scan_records",
    "scan_run",
    "scan_text",
    "severity",
]
