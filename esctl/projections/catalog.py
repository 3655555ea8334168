"""Where read models live and what esctl records about them.

The read-model database is the store's own file (default) or a separate file
(`--read-db`). Beside the tables it holds `esctl_projections`: one row per projection
with its checkpoint (the last position applied), the fingerprint of the code that
built it, the tables it owns, and the event it failed on, if any. A projection's
table writes and its checkpoint row change in one transaction on this connection.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from esctl import codec
from esctl.errors import ConcurrencyError, InvalidInput, NotFound, StoreError, StoreReadOnly
from esctl.events import utc_now
from esctl.projections import authorizer
from esctl.projections.definition import Projection, Table, quote

CATALOG = "esctl_projections"
SHADOW_PREFIX = "esctl_shadow_"

_CATALOG_DDL = f"""
CREATE TABLE IF NOT EXISTS {CATALOG} (
    name        TEXT PRIMARY KEY,
    checkpoint  INTEGER NOT NULL DEFAULT 0,   -- the last position applied
    fingerprint TEXT    NOT NULL,             -- of the code that built the tables
    tables      TEXT    NOT NULL,             -- JSON list of the tables it owns
    generation  INTEGER NOT NULL DEFAULT 1,   -- counts builds; names index generations
    failure     TEXT,                         -- JSON: the event it failed on and the error
    built_at    TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
)
"""


# The catalog's columns in Record's field order.
_COLUMNS = "name, checkpoint, fingerprint, tables, generation, failure, built_at, updated_at"


@dataclass
class Record:
    """A projection's row in the catalog."""

    name: str
    checkpoint: int
    fingerprint: str
    tables: list[str]
    generation: int = 1
    failure: dict[str, Any] | None = None
    built_at: str = ""
    updated_at: str = ""


def open_read_models(store_path: str, read_db: str | None, *, create: bool) -> sqlite3.Connection:
    """A connection to the read-model database, in autocommit mode (callers BEGIN).
    Without `create` it may be read-only (a store on read-only media, or in a
    read-only directory); with it, a database that cannot be written raises
    StoreReadOnly.

    Read models can always be rebuilt from the log, so commits use synchronous=NORMAL
    (WAL keeps them atomic; a power cut can lose the last ones, never half of one)."""
    from esctl.store.sqlite.failures import classify, not_writable, primary_code
    from esctl.store.sqlite.schema import open_read_only

    path = read_db or store_path
    exists = os.path.exists(path) and os.path.getsize(path) > 0
    if not exists and not create:
        raise NotFound(f"no read-model database at {path}")
    if create and exists and not os.access(path, os.W_OK):
        raise StoreReadOnly(f"{not_writable(path)}: cannot write {path}")
    try:
        conn = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if create or primary_code(exc) not in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY):
                raise
            conn.close()
            return open_read_only(path, check_same_thread=False)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: rebuilds touch many pages
    except sqlite3.DatabaseError as exc:
        raise classify(exc, path) or StoreError(f"{path} cannot hold read models: {exc}") from None
    return conn


# Who is rebuilding which projection: a rebuild claims its row in the transaction
# that creates its shadow tables and gives it back in the one that swaps them in (or
# drops them), so two rebuilds, or a rebuild and a reset, never destroy each other.
REBUILDS = "esctl_rebuilds"
_REBUILDS_DDL = f"""
CREATE TABLE IF NOT EXISTS {REBUILDS} (
    name       TEXT PRIMARY KEY,
    pid        INTEGER NOT NULL,
    host       TEXT    NOT NULL,
    process    TEXT    NOT NULL,   -- the process's start time where known: pids are reused
    started_at TEXT    NOT NULL
)
"""


def claim_rebuild(conn: sqlite3.Connection, name: str) -> None:
    """Mark the projection as rebuilt by this process, in the caller's write
    transaction; ConcurrencyError when a live process is rebuilding it already."""
    import socket

    refuse_while_rebuilt(conn, name, f"projection {name!r} is being rebuilt")
    conn.execute(_REBUILDS_DDL)
    conn.execute(
        f"INSERT OR REPLACE INTO {REBUILDS} (name, pid, host, process, started_at) VALUES (?, ?, ?, ?, ?)",
        (name, os.getpid(), socket.gethostname(), _process_start(os.getpid()), utc_now()),
    )


def release_rebuild(conn: sqlite3.Connection, name: str) -> None:
    """Give the claim back (in the caller's transaction)."""
    if _table_exists(conn, REBUILDS):
        conn.execute(f"DELETE FROM {REBUILDS} WHERE name = ? AND pid = ?", (name, os.getpid()))


def refuse_while_rebuilt(conn: sqlite3.Connection, name: str, what: str) -> None:
    """ConcurrencyError('WHAT by process ...: wait for it to finish') while a live
    process is rebuilding the projection."""
    holder = rebuilder(conn, name)
    if holder is not None:
        raise ConcurrencyError(f"{what} by {holder}: wait for it to finish")


def rebuilder(conn: sqlite3.Connection, name: str) -> str | None:
    """'process PID on HOST since TIME' when a live process is rebuilding the
    projection, else None (the claim of a process that died does not count)."""
    if not _table_exists(conn, REBUILDS):
        return None
    row = conn.execute(
        f"SELECT pid, host, process, started_at FROM {REBUILDS} WHERE name = ?", (name,)
    ).fetchone()
    if row is None or not _running(*row[:3]):
        return None
    return f"process {row[0]} on {row[1]} since {row[3]}"


def _running(pid: int, host: str, process: str) -> bool:
    import socket

    if host != socket.gethostname():
        return True  # another machine's process: nothing here can tell, so assume it runs
    if pid == os.getpid():
        return True  # this process (another connection or thread)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, run by someone else
    return not process or _process_start(pid) in ("", process)


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or '' elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: count after its end.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else ""


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    return bool(
        conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()[0]
    )


def ensure_catalog(conn: sqlite3.Connection) -> None:
    if not catalog_exists(conn):
        conn.execute(_CATALOG_DDL)


def catalog_exists(conn: sqlite3.Connection) -> bool:
    return _table_exists(conn, CATALOG)


def records(conn: sqlite3.Connection) -> dict[str, Record]:
    if not catalog_exists(conn):
        return {}
    rows = conn.execute(f"SELECT {_COLUMNS} FROM {CATALOG}").fetchall()
    return {row[0]: _record(row) for row in rows}


def record(conn: sqlite3.Connection, name: str) -> Record | None:
    if not catalog_exists(conn):
        return None
    row = conn.execute(f"SELECT {_COLUMNS} FROM {CATALOG} WHERE name = ?", (name,)).fetchone()
    return _record(row) if row else None


def _record(row: tuple) -> Record:
    name, checkpoint, fp, tables, generation, failure, built_at, updated_at = row
    return Record(
        name,
        checkpoint,
        fp,
        codec.loads(tables),
        generation,
        codec.loads(failure) if failure else None,
        built_at,
        updated_at,
    )


def save(conn: sqlite3.Connection, rec: Record) -> None:
    """Insert or replace the record (inside the caller's transaction)."""
    now = utc_now()
    conn.execute(
        f"INSERT OR REPLACE INTO {CATALOG} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            rec.name,
            rec.checkpoint,
            rec.fingerprint,
            codec.dumps_text(rec.tables),
            rec.generation,
            codec.dumps_text(rec.failure) if rec.failure else None,
            rec.built_at or now,
            now,
        ),
    )


def move_checkpoint(conn: sqlite3.Connection, name: str, checkpoint: int) -> None:
    conn.execute(
        f"UPDATE {CATALOG} SET checkpoint = ?, failure = NULL, updated_at = ? WHERE name = ?",
        (checkpoint, utc_now(), name),
    )


def existing_tables(conn: sqlite3.Connection) -> set[str]:
    return {
        row[0].lower()
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    }


def check_ownership(conn: sqlite3.Connection, projection: Projection) -> None:
    """Refuse tables another projection owns, or that exist without belonging to this one
    (the events table, a user's own table): esctl never takes a table over."""
    recs = records(conn)
    mine = {t.lower() for t in recs[projection.name].tables} if projection.name in recs else set()
    owners = {t.lower(): r.name for r in recs.values() if r.name != projection.name for t in r.tables}
    present = existing_tables(conn)
    for table in projection.tables:
        lowered = table.lower()
        if lowered in owners:
            raise InvalidInput(
                f"projection {projection.name!r} cannot own table {table!r}:"
                f" projection {owners[lowered]!r} owns it (esctl project reset {owners[lowered]} frees it)"
            )
        if lowered in present and lowered not in mine:
            raise InvalidInput(
                f"projection {projection.name!r} cannot own table {table!r}: a table of that name"
                " exists and is not one of its read models (esctl will not take it over)"
            )


def create_table(conn: sqlite3.Connection, table: Table, physical: str, generation: int) -> None:
    """Create one table (through sqlite-utils) with its indexes, in the open transaction."""
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    db[physical].create(
        dict(table.columns),
        pk=table.pk if table.pk is not None else None,
        not_null=set(table.not_null) or None,
        defaults=dict(table.defaults) or None,
    )
    for columns in table.index_columns():
        # Index names carry the build generation: a rebuild creates the new ones on its
        # shadow table while the old table (and its indexes) still exists.
        index_name = f"idx_{table.name}_{'_'.join(columns)}_g{generation}"
        db[physical].create_index(list(columns), index_name=index_name)


def drop_table(conn: sqlite3.Connection, name: str) -> None:
    # main.: a rebuild's temporary views of the same name must not be in the way.
    conn.execute(f"DROP TABLE IF EXISTS main.{quote(name)}")


def shadow_name(table: str) -> str:
    return SHADOW_PREFIX + table


class Guard:
    """An SQLite authorizer that, while armed, lets statements touch only the tables
    given (plus the schema tables SQLite and sqlite-utils read). Handlers run armed:
    a projection cannot read or write the events table, esctl's tables or another
    projection's tables, nor commit or roll back the transaction it runs in. Savepoints
    of its own (sqlite-utils opens them) nest inside the batch's and are allowed."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.allowed: frozenset[str] | None = None
        self.refused: str | None = None
        conn.set_authorizer(self._authorize)

    def arm(self, tables: Iterable[str]) -> None:
        self.allowed = frozenset(t.lower() for t in tables)
        self.refused = None

    def disarm(self) -> None:
        self.allowed = None

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Unguarded for esctl's own statements in the middle of a handler's."""
        allowed, self.allowed = self.allowed, None
        try:
            yield
        finally:
            self.allowed = allowed

    def close(self) -> None:
        self.conn.set_authorizer(None)

    def _authorize(self, action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: Any) -> int:
        allowed = self.allowed
        if allowed is None:
            return sqlite3.SQLITE_OK
        if action in authorizer.READING:
            if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in authorizer.FORBIDDEN_FUNCTIONS:
                return self._refuse(authorizer.describe(action, arg1, arg2))
            return sqlite3.SQLITE_OK
        table = authorizer.table_of(action, arg1, arg2)
        if table is not None:
            lowered = table.lower()
            if lowered in allowed or (action == sqlite3.SQLITE_READ and lowered.startswith("sqlite_")):
                return sqlite3.SQLITE_OK
        elif action == sqlite3.SQLITE_PRAGMA:
            if arg2 is None or (arg1 or "").lower() in authorizer.SHAPE_PRAGMAS:
                return sqlite3.SQLITE_OK
        elif action == sqlite3.SQLITE_SAVEPOINT and not (arg2 or "").lower().startswith("esctl_"):
            return sqlite3.SQLITE_OK
        return self._refuse(authorizer.describe(action, arg1, arg2))

    def _refuse(self, what: str) -> int:
        if self.refused is None:
            self.refused = what
        return sqlite3.SQLITE_DENY
