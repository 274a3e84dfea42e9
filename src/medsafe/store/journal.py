"""The answer journal: every answer of a run, appended to a file the moment it arrives.

The store writer commits in batches (a crash loses the last ``linger_s`` of answers); the
journal closes that gap. Each ``ok`` answer is appended as one JSON line to
``STORE.journal/RUN.jsonl`` with a single ``write`` (no fsync: the OS cache survives
``kill -9``, though not a power cut). On resume, :func:`fold` stores what the journal holds
(transcripts and request cache) before anything is asked, then deletes it; a clean finish
deletes it too.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, urlsplit

from pydantic import ValidationError

from medsafe.schema import Transcript
from medsafe.store.pg import store_url
from medsafe.store.writer import StoreWriter


def journal_path(store_path: Path | str, run_id: str) -> Path:
    """``STORE.journal/RUN.jsonl`` (the run id percent-encoded into a file name).

    A PostgreSQL store's journal is kept on this machine, under the user's cache folder
    (``$XDG_CACHE_HOME/medsafe/journals/HOST-PORT-DB``): it only ever holds this process's
    answers that the store has not committed yet.
    """
    url = store_url(store_path)
    if url is not None:
        parts = urlsplit(url)
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        name = f"{parts.hostname or 'local'}-{parts.port or 5432}-{parts.path.strip('/') or 'db'}"
        folder = cache / "medsafe" / "journals" / quote(name, safe="")
        return folder / f"{quote(run_id, safe='')}.jsonl"
    store = Path(store_path)
    return store.with_name(store.name + ".journal") / f"{quote(run_id, safe='')}.jsonl"


class Journal:
    """An open journal of one run (append only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def append(self, transcript: Transcript) -> str:
        """Append one answer (a single ``write``, so a kill leaves whole lines or a torn last).

        Returns the line written (``model_dump_json(exclude_defaults=True)``), which the store
        writer can reuse."""
        blob = transcript.model_dump_json(exclude_defaults=True)
        os.write(self._fd, blob.encode() + b"\n")
        return blob

    def close(self) -> None:
        """Close the file (it stays on disk)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def delete(self) -> None:
        """Close and remove the file (and its folder, once empty)."""
        self.close()
        remove(self.path)


def remove(path: Path) -> None:
    """Remove a journal file, and its folder when no other run's journal is left in it."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # other runs' journals are left in it, or it is gone
        path.parent.rmdir()


def read(path: Path) -> list[Transcript]:
    """The answers a journal holds; a torn or unreadable line (a kill mid-write) is skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    out: list[Transcript] = []
    for line in data.splitlines():
        try:
            out.append(Transcript.model_validate_json(line))
        except ValidationError:
            continue
    return out


def _stored_ok(conn: sqlite3.Connection, run_id: str, item_ids: Sequence[str]) -> set[str]:
    """Which of ``item_ids`` already have an ``ok`` transcript in run ``run_id``."""
    found: set[str] = set()
    for start in range(0, len(item_ids), 500):
        chunk = list(item_ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            "SELECT item_id FROM transcripts WHERE run_id=? AND status='ok' "
            f"AND item_id IN ({marks})",
            (run_id, *chunk),
        )
        found.update(str(item_id) for (item_id,) in rows)
    return found


def fold(
    path: Path,
    conn: sqlite3.Connection,
    writer: StoreWriter,
    run_id: str,
    *,
    run_exists: bool,
) -> int:
    """Store the journal's answers through ``writer``, commit, and delete the journal.

    Answers already stored are skipped (re-storing would clear their scores). When the run
    does not exist (its import never committed) only the request cache is filled, so the
    answers are not paid for again. Returns how many transcripts were stored.
    """
    answers = [t for t in read(path) if t.run_id == run_id and t.status == "ok"]
    stored = 0
    if answers:
        if run_exists:
            done = _stored_ok(conn, run_id, [t.item_id for t in answers])
            for transcript in answers:
                if transcript.item_id not in done:
                    writer.put_transcript(transcript)
                    done.add(transcript.item_id)
                    stored += 1
        else:
            writer.put_cache(answers)
        writer.flush()
    remove(path)
    return stored
