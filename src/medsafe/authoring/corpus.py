"""Normative corpora in the store: import documents, compare re-imports, read sections back.

A corpus is a named set of documents (``corpus_documents``) and their numbered sections
(``corpus_sections``, :mod:`medsafe.authoring.sections`), each with the SHA-256 of its text.
Importing a file or folder again compares its sections with the stored ones by section id
(chapter and number) and reports which were added, changed (text hash differs) and removed;
only documents under the imported path are compared, so importing one file never removes the
others. The import of one path is one transaction.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from medsafe.authoring.documents import DocumentText, document_paths, read_document
from medsafe.authoring.sections import split_sections
from medsafe.errors import StoreError, SuiteError
from medsafe.store.schema_authoring import AUTHORING_DDL
from medsafe.store.schema_sql import statements
from medsafe.store.sqlite import now_iso

SAMPLE = "@sample"
"""The PATH that names the bundled sample corpus (zh, ja, en; CC-BY-4.0)."""


def sample_corpus() -> Path:
    """The folder of the bundled sample corpus."""
    return Path(str(files("medsafe.authoring") / "data"))


@dataclass(frozen=True)
class StoredSection:
    """A section as stored, with its document's metadata."""

    corpus: str
    doc_id: str
    section_id: str
    position: int
    number: str
    chapter: str
    start: int
    end: int
    text: str
    sha256: str
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``doc_id#section_id``: how rules and items cite the section."""
        return f"{self.doc_id}#{self.section_id}"

    @property
    def language(self) -> str:
        """The document's language."""
        return self.meta.get("language", "en")


@dataclass
class ImportReport:
    """What an import did, per section ref (``doc_id#section_id``)."""

    documents: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0

    def summary(self) -> str:
        """``N documents: A added, C changed, R removed, U unchanged``."""
        return (
            f"{self.documents} document(s): {len(self.added)} added, {len(self.changed)} "
            f"changed, {len(self.removed)} removed, {self.unchanged} unchanged"
        )


def sha256(text: str) -> str:
    """Hex SHA-256 of UTF-8 ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ensure_tables(conn: sqlite3.Connection) -> None:
    """Create the corpus tables if the store predates one of them (idempotent)."""
    for statement in statements(AUTHORING_DDL):
        conn.execute(statement)


def doc_id_of(path: Path) -> str:
    """A document's id: its file name and 8 hex digits of its absolute path's hash."""
    return f"{path.stem}-{sha256(str(path.resolve()))[:8]}"


def _section_rows(doc: DocumentText, corpus: str, doc_id: str) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    seen: dict[str, int] = {}
    for position, section in enumerate(split_sections(doc.text)):
        key = section.key
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key = f"{key}#{seen[key]}"
        rows.append(
            (
                corpus,
                doc_id,
                key,
                position,
                section.number,
                section.chapter,
                section.start,
                section.end,
                section.text,
                sha256(section.text),
            )
        )
    return rows


def _stored_docs(conn: sqlite3.Connection, corpus: str, root: Path) -> dict[str, str]:
    """doc_id -> path of the stored documents at or under ``root``."""
    base = str(root.resolve())
    found: dict[str, str] = {}
    for doc_id, path in conn.execute(
        "SELECT doc_id, path FROM corpus_documents WHERE corpus=?", (corpus,)
    ):
        if path == base or path.startswith(base.rstrip("/") + "/"):
            found[str(doc_id)] = str(path)
    return found


def _hashes(conn: sqlite3.Connection, corpus: str, doc_id: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT section_id, sha256 FROM corpus_sections WHERE corpus=? AND doc_id=?",
        (corpus, doc_id),
    )
    return {str(s): str(h) for s, h in rows}


@dataclass(frozen=True)
class PathDocuments:
    """The documents read from one PATH, ready to import."""

    corpus: str
    root: Path
    docs: list[DocumentText]


def read_path(corpus: str, path: Path, meta: dict[str, str] | None = None) -> PathDocuments:
    """Check the corpus name and read every document at ``path`` (:data:`SAMPLE`: the bundled
    sample corpus); SuiteError naming the file when one is bad. Nothing is stored."""
    if not corpus or not corpus.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise SuiteError(
            f"corpus name {corpus!r}: use letters, digits, '-', '_' or '.'", field="--corpus"
        )
    root = sample_corpus() if str(path) == SAMPLE else path
    return PathDocuments(corpus, root, [read_document(p, meta) for p in document_paths(root)])


def import_path(
    conn: sqlite3.Connection, corpus: str, path: Path, meta: dict[str, str] | None = None
) -> ImportReport:
    """Read (:func:`read_path`) and import a document or folder into ``corpus``."""
    return import_documents(conn, read_path(corpus, path, meta))


def import_documents(conn: sqlite3.Connection, read: PathDocuments) -> ImportReport:
    """Store the documents read from one PATH (one transaction) and report what changed.

    Every document was read and split before anything is written, so a bad file leaves the
    store as it was.
    """
    corpus, root, docs = read.corpus, read.root, read.docs
    ensure_tables(conn)
    report = ImportReport(documents=len(docs))
    before = _stored_docs(conn, corpus, root)
    conn.execute("BEGIN IMMEDIATE")
    try:
        seen: set[str] = set()
        for doc in docs:
            doc_id = doc_id_of(doc.path)
            seen.add(doc_id)
            old = _hashes(conn, corpus, doc_id)
            rows = _section_rows(doc, corpus, doc_id)
            new = {str(r[2]): str(r[9]) for r in rows}
            for sid, digest in new.items():
                ref = f"{doc_id}#{sid}"
                if sid not in old:
                    report.added.append(ref)
                elif old[sid] != digest:
                    report.changed.append(ref)
                else:
                    report.unchanged += 1
            report.removed.extend(f"{doc_id}#{sid}" for sid in old if sid not in new)
            conn.execute(
                "DELETE FROM corpus_sections WHERE corpus=? AND doc_id=?", (corpus, doc_id)
            )
            conn.executemany("INSERT INTO corpus_sections VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            conn.execute(
                "INSERT OR REPLACE INTO corpus_documents VALUES (?,?,?,?,?,?)",
                (
                    corpus,
                    doc_id,
                    str(doc.path.resolve()),
                    json.dumps(doc.meta, ensure_ascii=False, sort_keys=True),
                    sha256(doc.text),
                    now_iso(),
                ),
            )
        for doc_id in sorted(set(before) - seen):  # a file under the folder that is gone
            report.removed.extend(f"{doc_id}#{sid}" for sid in _hashes(conn, corpus, doc_id))
            conn.execute(
                "DELETE FROM corpus_sections WHERE corpus=? AND doc_id=?", (corpus, doc_id)
            )
            conn.execute(
                "DELETE FROM corpus_documents WHERE corpus=? AND doc_id=?", (corpus, doc_id)
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return report


def require_store(db: Path) -> None:
    """StoreError when ``db`` does not exist (reading a corpus never creates a store)."""
    if not db.is_file():
        raise StoreError(
            f"{db}: no such store (import a corpus first: medsafe corpus add PATH --corpus NAME "
            f"--db {db})"
        )


def load_sections(conn: sqlite3.Connection, corpus: str) -> list[StoredSection]:
    """Every section of ``corpus`` in document and section order; StoreError if it is empty."""
    ensure_tables(conn)
    metas = {
        str(d): json.loads(m)
        for d, m in conn.execute(
            "SELECT doc_id, meta FROM corpus_documents WHERE corpus=?", (corpus,)
        )
    }
    rows = conn.execute(
        'SELECT doc_id, section_id, position, number, chapter, start, "end", text, sha256 '
        "FROM corpus_sections WHERE corpus=? ORDER BY doc_id, position",
        (corpus,),
    ).fetchall()
    if not rows:
        names = [str(n) for (n,) in conn.execute("SELECT DISTINCT corpus FROM corpus_documents")]
        raise StoreError(
            f"no corpus {corpus!r} in the store (corpora: {', '.join(names) or 'none'};"
            " import one with medsafe corpus add PATH --corpus NAME)"
        )
    return [
        StoredSection(
            corpus,
            str(r[0]),
            str(r[1]),
            int(r[2]),
            str(r[3]),
            str(r[4]),
            int(r[5]),
            int(r[6]),
            str(r[7]),
            str(r[8]),
            metas.get(str(r[0]), {}),
        )
        for r in rows
    ]


def corpus_hash(sections: Sequence[StoredSection]) -> str:
    """SHA-256 over every section's ref and text hash, in order: the corpus's version."""
    return sha256("\n".join(f"{s.ref}\t{s.sha256}" for s in sections))
