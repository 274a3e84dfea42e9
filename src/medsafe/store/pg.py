"""A PostgreSQL store behind the interface the SQLite store uses.

medsafe's store code is written against :class:`sqlite3.Connection` (``execute`` with ``?``
parameters, tuples back, explicit ``BEGIN IMMEDIATE``/``COMMIT``). :class:`PgConnection` gives
the same interface over psycopg 3 in autocommit mode, translating the few SQLite dialect forms
the store uses (see :func:`translate`), so every query runs unchanged on both engines and one
code path keeps one behaviour. What cannot be translated text for text (JSON paths, boolean
sums) is written portably where it is used.

Concurrency is the database's: ``BEGIN IMMEDIATE`` becomes a transaction holding a
transaction-scoped advisory lock (SQLite's one-writer-at-a-time, across machines), uniqueness
is the tables' primary keys, and an upsert is ``INSERT … ON CONFLICT … DO UPDATE``.

Database URLs: ``postgresql://USER@HOST:PORT/DBNAME``. A password in the URL is taken out at
once (into ``PGPASSWORD`` for this process) so it is never stored or printed; prefer
``~/.pgpass`` or ``PGPASSWORD``.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from medsafe.errors import StoreError
from medsafe.store.sqlscript import statements

if TYPE_CHECKING:
    import psycopg

SCHEMES = ("postgresql", "postgres")
WRITE_LOCK = 0x6D656473  # "meds": the advisory lock BEGIN IMMEDIATE takes


def store_url(location: Path | str) -> str | None:
    """The PostgreSQL URL ``location`` names, or None for a SQLite file.

    A :class:`~pathlib.Path` made from ``postgresql://h/db`` reads ``postgresql:/h/db`` (paths
    collapse ``//``); both spellings are recognised.
    """
    text = str(location)
    for scheme in SCHEMES:
        for prefix in (f"{scheme}://", f"{scheme}:/"):
            if text.startswith(prefix):
                return f"postgresql://{text[len(prefix) :]}"
    return None


def is_store_url(location: Path | str) -> bool:
    """Whether ``location`` is a PostgreSQL URL rather than a SQLite file."""
    return store_url(location) is not None


def redacted(location: Path | str) -> str:
    """``location`` fit to print: a URL without its password, a path as it is."""
    url = store_url(location)
    if url is None:
        return str(location)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def without_password(location: Path | str) -> Path | str:
    """The same store with any password moved out of the URL into ``PGPASSWORD``."""
    url = store_url(location)
    if url is None:
        return location
    password = urlsplit(url).password
    if password is not None:
        os.environ["PGPASSWORD"] = unquote(password)
    return redacted(url)


class StoreUrl(PosixPath):
    """A PostgreSQL URL where a store's :class:`~pathlib.Path` is expected (``--db``).

    It prints as the URL (without a password) and "exists" (whether the server answers is
    found out on connecting), so code written for store files takes it as it is.
    """

    _url: str | None = None

    def __str__(self) -> str:
        return self._url if self._url is not None else super().__str__()

    def exists(self, *, follow_symlinks: bool = True) -> bool:
        """True for the URL itself (a connection error is reported on connecting)."""
        return True if self._url is not None else super().exists()

    def is_file(self) -> bool:
        """True for the URL itself, as :meth:`exists`."""
        return True if self._url is not None else super().is_file()


def store_path(location: Path | str) -> Path:
    """``location`` as ``--db`` passes it on: a URL (password moved out) as a :class:`StoreUrl`."""
    url = store_url(location)
    if url is None:
        return Path(location)
    clean = str(without_password(url))
    path = StoreUrl(clean)
    path._url = clean
    return path


# -- SQL translation --------------------------------------------------------------------------

_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|%|[A-Za-z_][A-Za-z0-9_]*|.", re.S)
_RESERVED = {"user"}
"""Column names SQLite takes bare and PostgreSQL reads as something else (``user`` is
``CURRENT_USER`` there)."""
_TYPES = {"REAL": "DOUBLE PRECISION", "BLOB": "BYTEA", "INTEGER": "BIGINT"}
_FUNCTIONS = {"group_concat": "string_agg"}
_UPSERT = re.compile(
    r"^\s*INSERT\s+OR\s+(REPLACE|IGNORE)\s+INTO\s+([A-Za-z_][A-Za-z0-9_]*)\s*(\([^)]*\))?",
    re.I | re.S,
)


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """``sql`` in SQLite's dialect as PostgreSQL reads it (upserts are finished elsewhere).

    ``?`` → ``%s``, a literal ``%`` doubled, ``WITHOUT ROWID`` dropped, column types widened to
    SQLite's (``REAL`` is 8 bytes there, ``INTEGER`` 64 bits), ``user`` quoted,
    and ``group_concat`` → ``string_agg``.
    """
    out: list[str] = []
    ddl = sql.lstrip().upper().startswith(("CREATE TABLE", "ALTER TABLE"))
    for token in _TOKENS.findall(sql):
        low = token.lower()
        if token == "?":
            out.append("%s")
        elif token == "%":
            out.append("%%")
        elif low in _RESERVED:
            out.append(f'"{low}"')
        elif ddl and token.upper() in _TYPES:
            out.append(_TYPES[token.upper()])
        elif low in _FUNCTIONS:
            out.append(_FUNCTIONS[low])
        else:
            out.append(token)
    text = "".join(out)
    if ddl:
        text = re.sub(r"\bBIGINT\s+PRIMARY\s+KEY\b", "BIGSERIAL PRIMARY KEY", text, flags=re.I)
    return re.sub(r"\)\s*WITHOUT\s+ROWID", ")", text, flags=re.I)


# -- connection -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    columns: tuple[str, ...]
    key: tuple[str, ...]


class PgCursor:
    """The part of :class:`sqlite3.Cursor` medsafe uses, over a psycopg cursor."""

    def __init__(
        self, cursor: psycopg.Cursor[Any] | None, rows: Sequence[tuple[Any, ...]] = ()
    ) -> None:
        self._cursor = cursor
        self._fixed = list(rows)
        self.lastrowid: int | None = None

    @property
    def rowcount(self) -> int:
        """Rows the statement changed (-1 where unknown)."""
        return -1 if self._cursor is None else self._cursor.rowcount

    @property
    def description(self) -> Any:
        """Column descriptions of the result."""
        return None if self._cursor is None else self._cursor.description

    def fetchone(self) -> Any:
        """The next row, or None."""
        if self._cursor is None:
            return self._fixed.pop(0) if self._fixed else None
        if self._cursor.description is None:
            return None
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        """Every remaining row."""
        if self._cursor is None:
            rows, self._fixed = self._fixed, []
            return rows
        if self._cursor.description is None:
            return []
        return self._cursor.fetchall()

    def fetchmany(self, size: int = 1) -> list[Any]:
        """Up to ``size`` rows."""
        if self._cursor is None:
            rows, self._fixed = self._fixed[:size], self._fixed[size:]
            return rows
        if self._cursor.description is None:
            return []
        return self._cursor.fetchmany(size)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall()) if self._cursor is None else iter(self._rows())

    def _rows(self) -> Iterator[Any]:
        assert self._cursor is not None
        if self._cursor.description is None:
            return
        while batch := self._cursor.fetchmany(1000):
            yield from batch

    def close(self) -> None:
        """Close the cursor."""
        if self._cursor is not None:
            self._cursor.close()


def _sqlite_error(exc: Exception) -> sqlite3.Error:
    """The sqlite3 exception the store's callers already handle, for a psycopg one."""
    import psycopg

    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return sqlite3.IntegrityError(f"UNIQUE constraint failed: {message}")
    if isinstance(exc, psycopg.IntegrityError):
        return sqlite3.IntegrityError(message)
    if isinstance(exc, psycopg.OperationalError):
        return sqlite3.OperationalError(message)
    if isinstance(exc, psycopg.ProgrammingError):
        return sqlite3.OperationalError(message)
    return sqlite3.DatabaseError(message)


class PgConnection:
    """The part of :class:`sqlite3.Connection` medsafe uses, over a psycopg 3 connection."""

    engine = "postgresql"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - the extra is installed in CI
            raise StoreError(
                f"{redacted(url)}: a PostgreSQL store needs psycopg: "
                "pip install 'medsafe[postgres]'"
            ) from exc
        self.url = redacted(url)
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=30)
        except psycopg.Error as exc:
            raise StoreError(f"{self.url}: cannot connect to PostgreSQL ({exc})") from exc
        self._conn.adapters.register_loader("numeric", _numeric_loader())
        self._tables: dict[str, _Table] = {}

    # sqlite3.Connection's interface ---------------------------------------------------------
    def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> PgCursor:
        """Run one statement (SQLite dialect) and return its cursor."""
        import psycopg

        head = sql.lstrip()[:24].upper()
        if head.startswith("PRAGMA"):
            return self._pragma(head)
        if head.startswith("BEGIN"):
            self._raw("BEGIN")
            if "IMMEDIATE" in head or "EXCLUSIVE" in head:
                self._raw("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            return PgCursor(None)
        if head.startswith(("COMMIT", "END", "ROLLBACK")):
            self._raw(sql)
            return PgCursor(None)
        statement = self._statement(sql)
        guarded = self.in_transaction and not head.startswith(("SELECT", "WITH"))
        try:
            if guarded:  # SQLite's transaction survives a failed statement; PostgreSQL's not
                with self._conn.transaction():
                    cursor = self._conn.execute(statement, _params(parameters) or None)
            else:
                cursor = self._conn.execute(statement, _params(parameters) or None)
        except psycopg.Error as exc:
            raise _sqlite_error(exc) from exc
        return PgCursor(cursor)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> PgCursor:
        """Run one statement for each row."""
        import psycopg

        statement = self._statement(sql)
        cursor = self._conn.cursor()
        try:
            if self.in_transaction:
                with self._conn.transaction():
                    cursor.executemany(statement, [_params(r) for r in rows])
            else:
                cursor.executemany(statement, [_params(r) for r in rows])
        except psycopg.Error as exc:
            raise _sqlite_error(exc) from exc
        return PgCursor(cursor)

    def executescript(self, script: str) -> None:
        """Run every statement of ``script``."""
        for statement in statements(script):
            self.execute(statement)

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open."""
        from psycopg.pq import TransactionStatus

        return self._conn.info.transaction_status != TransactionStatus.IDLE

    def commit(self) -> None:
        """Commit the open transaction, if any."""
        if self.in_transaction:
            self._raw("COMMIT")

    def rollback(self) -> None:
        """Roll back the open transaction, if any."""
        if self.in_transaction:
            self._raw("ROLLBACK")

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back)."""
        self._conn.close()

    def __enter__(self) -> PgConnection:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.rollback()

    # PostgreSQL side ------------------------------------------------------------------------
    def _pragma(self, head: str) -> PgCursor:
        """SQLite's settings have no meaning here: a setting is ignored, a read gives 0, and
        ``database_list`` names the database (as SQLite names its file)."""
        if "=" in head:
            return PgCursor(None)
        if "DATABASE_LIST" in head:
            return PgCursor(None, [(0, "main", self.url)])
        return PgCursor(None, [(0,)])

    def _raw(self, sql: str, params: Sequence[Any] | None = None) -> None:
        import psycopg

        try:
            self._conn.execute(sql, params)
        except psycopg.Error as exc:
            raise _sqlite_error(exc) from exc

    def table(self, name: str) -> _Table:
        """Columns (in order) and primary key of ``name``."""
        if name not in self._tables:
            columns = self._conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                "current_schema() AND table_name = %s ORDER BY ordinal_position",
                (name,),
            ).fetchall()
            key = self._conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(%s) AND "
                "i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
                (name,),
            ).fetchall()
            if not columns:
                raise sqlite3.OperationalError(f"no such table: {name}")
            self._tables[name] = _Table(tuple(c for (c,) in columns), tuple(k for (k,) in key))
        return self._tables[name]

    def forget_tables(self) -> None:
        """Drop cached table layouts (after a migration)."""
        self._tables.clear()

    def _statement(self, sql: str) -> str:
        match = _UPSERT.match(sql)
        if match is None:
            return translate(sql)
        verb, name, listed = match.group(1).upper(), match.group(2), match.group(3)
        rest = sql[match.end() :]
        table = self.table(name)
        columns = table.columns
        if listed:
            columns = tuple(c.strip().strip('"') for c in listed[1:-1].split(","))
        head = f"INSERT INTO {name} ({', '.join(_quoted(c) for c in columns)})"
        if verb == "IGNORE" or not table.key:
            tail = " ON CONFLICT DO NOTHING"
        else:
            update = [c for c in columns if c not in table.key] or list(table.key[:1])
            sets = ", ".join(f"{_quoted(c)} = EXCLUDED.{_quoted(c)}" for c in update)
            keys = ", ".join(_quoted(k) for k in table.key)
            tail = f" ON CONFLICT ({keys}) DO UPDATE SET {sets}"
        return translate(head + rest.rstrip().rstrip(";")) + tail


def _quoted(column: str) -> str:
    return f'"{column}"'


def _params(parameters: Sequence[Any] | dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
    if isinstance(parameters, dict):
        return parameters
    return [bytes(p) if isinstance(p, memoryview) else p for p in parameters]


def _numeric_loader() -> type[Any]:
    """A loader giving ``numeric`` (SUM over BIGINT, AVG) as int or float, as SQLite does."""
    from psycopg.adapt import Loader

    class NumericLoader(Loader):
        def load(self, data: Any) -> int | float:
            text = bytes(data).decode()
            return float(text) if any(c in text for c in ".eEn") else int(text)

    return NumericLoader


def connect_pg(location: Path | str) -> sqlite3.Connection:
    """A connection to the PostgreSQL store at ``location`` (typed as what it stands in for)."""
    url = store_url(location)
    if url is None:
        raise ValueError(f"not a PostgreSQL URL: {location}")
    conn: Any = PgConnection(url)
    return conn  # type: ignore[no-any-return]


PREREQUISITES = (
    "CREATE OR REPLACE VIEW sqlite_master AS SELECT 'table'::text AS type, "
    "table_name::text AS name FROM information_schema.tables WHERE table_schema = "
    "current_schema() AND table_type = 'BASE TABLE'",
    "CREATE OR REPLACE FUNCTION instr(text, text) RETURNS integer LANGUAGE sql IMMUTABLE "
    "AS 'SELECT strpos($1, $2)'",
    "CREATE OR REPLACE FUNCTION json_extract(text, text) RETURNS text LANGUAGE sql IMMUTABLE "
    "AS $$SELECT $1::jsonb #>> string_to_array(substr($2, 3), '.')$$",
)
"""What a PostgreSQL store has besides its tables, so that SQLite's catalogue query,
``instr`` and ``json_extract`` read the same on both engines (``json_extract`` gives text there:
a number or boolean is compared or converted where it is used)."""


def table_names(conn: object) -> set[str]:
    """The base tables of the PostgreSQL store on ``conn``."""
    rows = conn.execute(  # type: ignore[attr-defined]
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_type = 'BASE TABLE'"
    ).fetchall()
    return {str(name) for (name,) in rows}


def engine(conn: object) -> str:
    """``'postgresql'`` or ``'sqlite'``: the engine behind a store connection."""
    return str(getattr(conn, "engine", "sqlite"))
