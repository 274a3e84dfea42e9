"""A real PostgreSQL server for tests: its own cluster in a temporary folder, on a loopback port.

The server runs as a non-root user (``postgres`` when the tests run as root: PostgreSQL refuses
to run as root), trusts only 127.0.0.1, and is stopped when the session ends. Each test gets a
fresh database on it. ``make test`` installs the Debian package that provides the binaries.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def _bindir() -> Path | None:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(versions[0]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgServer:
    """A running test cluster."""

    port: int
    user: str

    def url(self, dbname: str) -> str:
        """``postgresql://USER@127.0.0.1:PORT/DBNAME``."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _as(user: str | None, cmd: list[str]) -> list[str]:
    return cmd if user is None else ["runuser", "-u", user, "--", *cmd]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL cluster for this test session (skips, saying why, without the binaries)."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (make test installs the Debian package)")
    pytest.importorskip("psycopg", reason="psycopg is missing: pip install 'medsafe[postgres]'")
    with temporary_server(bindir) as server:
        yield server


@contextlib.contextmanager
def temporary_server(bindir: Path | None = None) -> Iterator[PgServer]:
    """Start a throw-away cluster (also used by bench/bench_store_engines.py); stop it after."""
    bindir = bindir or _bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    run_as = "postgres" if os.geteuid() == 0 else None
    user = run_as or pwd.getpwuid(os.geteuid()).pw_name
    top = Path(tempfile.mkdtemp(prefix="medsafe-pg-"))
    data = top / "data"
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        os.chown(top, entry.pw_uid, entry.pw_gid)
    top.chmod(0o700)
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    subprocess.run(
        _as(run_as, [str(bindir / "initdb"), "-D", str(data), "-U", user, "-A", "trust",
                     "-E", "UTF8", "--no-sync"]),
        check=True, capture_output=True, env=env, cwd=top,
    )  # fmt: skip
    options = (
        f"-p {port} -k {top} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        _as(run_as, [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                     str(top / "log"), "-w", "-t", "60", "start"]),
        check=True, capture_output=True, env=env, cwd=top,
    )  # fmt: skip
    try:
        yield PgServer(port=port, user=user)
    finally:
        subprocess.run(
            _as(run_as, [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                         "stop"]),
            check=False, capture_output=True, env=env, cwd=top,
        )  # fmt: skip
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty PostgreSQL database (its URL)."""
    return pg_server.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A fresh store on each engine: a SQLite file, then a PostgreSQL database.

    Both come as a :class:`~pathlib.Path`, as ``--db`` gives them (the URL as a
    :class:`~medsafe.store.pg.StoreUrl`).
    """
    if request.param == "sqlite":
        return tmp_path / "store.db"
    from medsafe.store.pg import store_path

    server: PgServer = request.getfixturevalue("pg_server")
    return store_path(server.create_database())
