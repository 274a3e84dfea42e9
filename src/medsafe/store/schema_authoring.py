"""Tables of normative corpora and generation (schema v8); owned by :mod:`medsafe.authoring`."""

from __future__ import annotations

AUTHORING_DDL = """
CREATE TABLE IF NOT EXISTS corpus_documents (
    corpus TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    path TEXT NOT NULL,
    meta TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    imported TEXT NOT NULL,
    PRIMARY KEY (corpus, doc_id)
) WITHOUT ROWID;
"""
"""Added by schema v8 (the authoring package extends it while it is built)."""

AUTHORING_TABLES = frozenset({"corpus_documents"})
