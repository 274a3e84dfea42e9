"""Tables of normative corpora (schema v8); owned by :mod:`medsafe.authoring`.

- ``corpus_documents``: one row per imported document (its path, metadata JSON and the SHA-256
  of its text).
- ``corpus_sections``: its numbered sections, with character offsets into the document text,
  the section text and its SHA-256 (what a re-import compares).
"""

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
CREATE TABLE IF NOT EXISTS corpus_sections (
    corpus TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    section_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    number TEXT NOT NULL,
    chapter TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (corpus, doc_id, section_id)
) WITHOUT ROWID;
"""
"""Added by schema v8; run again (idempotent) by :mod:`medsafe.authoring.corpus` on a store
made before ``corpus_sections`` existed."""

AUTHORING_TABLES = frozenset({"corpus_documents", "corpus_sections"})
