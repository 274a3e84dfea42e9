"""Run leases: at most one live process generates (and pays for) a run at a time.

A lease is one ``leases`` row per run (schema v3): the owner's host, pid and start time, and a
heartbeat the owner refreshes every :data:`HEARTBEAT_S` seconds from a background thread. A
lease whose heartbeat is older than :data:`STALE_AFTER_S` is stale; a lease whose owner ran on
this host and no longer exists (e.g. killed with ``kill -9``) is dead and taken over silently.
:func:`acquire` refuses a live lease always, and a stale one unless ``force``.
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from medsafe.errors import StoreError
from medsafe.store.sqlite import connect

HEARTBEAT_S = 5.0
"""Seconds between two heartbeats of a lease's owner."""
STALE_AFTER_S = 60.0
"""A lease whose heartbeat is older than this is stale (its owner hung, or ran elsewhere)."""


class LeaseError(StoreError):
    """Another process holds the run's lease (exit 2: the message names the owner)."""


@dataclass(frozen=True)
class LeaseOwner:
    """The process a lease row names."""

    host: str
    pid: int
    started: str
    heartbeat: float

    def describe(self) -> str:
        """``host H, pid P, started S``."""
        return f"host {self.host}, pid {self.pid}, started {self.started}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def read_owner(conn: sqlite3.Connection, run_id: str) -> LeaseOwner | None:
    """The current holder of ``run_id``'s lease, or None."""
    row = conn.execute(
        "SELECT host, pid, started, heartbeat FROM leases WHERE run_id=?", (run_id,)
    ).fetchone()
    return None if row is None else LeaseOwner(str(row[0]), int(row[1]), str(row[2]), row[3])


def is_live(owner: LeaseOwner, *, stale_after_s: float = STALE_AFTER_S) -> bool:
    """Whether a lease's owner is still generating: a fresh heartbeat, and on this host a
    process that still exists."""
    if owner.host == socket.gethostname() and not _pid_alive(owner.pid):
        return False
    return time.time() - owner.heartbeat < stale_after_s


def live_runs(conn: sqlite3.Connection) -> set[str]:
    """The runs whose lease is held by a live owner."""
    rows = conn.execute("SELECT run_id, host, pid, started, heartbeat FROM leases").fetchall()
    return {
        str(run_id)
        for run_id, host, pid, started, beat in rows
        if is_live(LeaseOwner(str(host), int(pid), str(started), float(beat)))
    }


def write_lease(conn: sqlite3.Connection, run_id: str, token: str, owner: LeaseOwner) -> None:
    """Write (or replace) ``run_id``'s lease row."""
    conn.execute(
        "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?)",
        (run_id, token, owner.host, owner.pid, owner.started, owner.heartbeat),
    )


class Lease:
    """A lease this process holds; :meth:`release` (or the context manager) gives it up."""

    def __init__(self, path: Path, run_id: str, token: str, heartbeat_s: float) -> None:
        self.path = path
        self.run_id = run_id
        self.token = token
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(heartbeat_s,), name="medsafe-lease", daemon=True
        )
        self._thread.start()

    @property
    def lost(self) -> bool:
        """Whether another process took the lease over (``--force``) while this one held it."""
        return self._lost.is_set()

    def _beat(self, every_s: float) -> None:
        conn = connect(self.path)
        try:
            while not self._stop.wait(every_s):
                try:
                    cur = conn.execute(
                        "UPDATE leases SET heartbeat=? WHERE run_id=? AND token=?",
                        (time.time(), self.run_id, self.token),
                    )
                except sqlite3.OperationalError:  # busy past the timeout: beat next time
                    continue
                if cur.rowcount == 0:
                    self._lost.set()
                    return
        except sqlite3.Error:  # the store went away; the lease goes stale
            return
        finally:
            conn.close()

    def release(self) -> None:
        """Stop the heartbeat and delete the lease row (if it is still this process's)."""
        self._stop.set()
        self._thread.join()
        conn = connect(self.path)
        try:
            conn.execute("DELETE FROM leases WHERE run_id=? AND token=?", (self.run_id, self.token))
        finally:
            conn.close()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire(
    path: Path | str,
    run_id: str,
    *,
    force: bool = False,
    stale_after_s: float = STALE_AFTER_S,
    heartbeat_s: float = HEARTBEAT_S,
) -> Lease:
    """Take ``run_id``'s lease in the (current-schema) store at ``path``.

    A free lease, or one whose owner is gone from this host, is taken. LeaseError naming the
    run and the owner when another owner's heartbeat is fresh, or when it is stale and
    ``force`` is not given.
    """
    path = Path(path)
    host = socket.gethostname()
    token = secrets.token_hex(16)
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            owner = read_owner(conn, run_id)
            now = time.time()
            if owner is not None:
                dead = owner.host == host and not _pid_alive(owner.pid)
                age = now - owner.heartbeat
                if is_live(owner, stale_after_s=stale_after_s):
                    raise LeaseError(
                        f"run {run_id!r} in {path} is being generated by another process "
                        f"({owner.describe()}; heartbeat {age:.0f} s ago); wait for it to finish"
                    )
                if not dead and not force:
                    raise LeaseError(
                        f"run {run_id!r} in {path} has a stale lease ({owner.describe()}; no "
                        f"heartbeat for {age:.0f} s); if that process is gone, take it over "
                        "with --force"
                    )
            started = datetime.now(UTC).isoformat(timespec="seconds")
            write_lease(conn, run_id, token, LeaseOwner(host, os.getpid(), started, now))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return Lease(path, run_id, token, heartbeat_s)
