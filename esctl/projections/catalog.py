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
from dataclasses import dataclass, field
from typing import Any

from esctl import codec
from esctl.errors import InvalidInput, NotFound, StoreError
from esctl.events import utc_now
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
    extra: dict[str, Any] = field(default_factory=dict)


def open_read_models(store_path: str, read_db: str | None, *, create: bool) -> sqlite3.Connection:
    """A connection to the read-model database, in autocommit mode (callers BEGIN).

    Read models can always be rebuilt from the log, so commits use synchronous=NORMAL
    (WAL keeps them atomic; a power cut can lose the last ones, never half of one)."""
    path = read_db or store_path
    if (not os.path.exists(path) or os.path.getsize(path) == 0) and not create:
        raise NotFound(f"no read-model database at {path}")
    try:
        conn = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: rebuilds touch many pages
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} cannot hold read models: {exc}") from None
    return conn


def ensure_catalog(conn: sqlite3.Connection) -> None:
    if not catalog_exists(conn):
        conn.execute(_CATALOG_DDL)


def catalog_exists(conn: sqlite3.Connection) -> bool:
    return bool(
        conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (CATALOG,)
        ).fetchone()[0]
    )


def records(conn: sqlite3.Connection) -> dict[str, Record]:
    if not catalog_exists(conn):
        return {}
    rows = conn.execute(
        f"SELECT name, checkpoint, fingerprint, tables, generation, failure, built_at, updated_at FROM {CATALOG}"
    ).fetchall()
    return {row[0]: _record(row) for row in rows}


def record(conn: sqlite3.Connection, name: str) -> Record | None:
    if not catalog_exists(conn):
        return None
    row = conn.execute(
        f"SELECT name, checkpoint, fingerprint, tables, generation, failure, built_at, updated_at"
        f" FROM {CATALOG} WHERE name = ?",
        (name,),
    ).fetchone()
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
        f"INSERT OR REPLACE INTO {CATALOG}"
        " (name, checkpoint, fingerprint, tables, generation, failure, built_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            rec.name,
            rec.checkpoint,
            rec.fingerprint,
            codec.dumps(rec.tables).decode(),
            rec.generation,
            codec.dumps(rec.failure).decode() if rec.failure else None,
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
    conn.execute(f"DROP TABLE IF EXISTS {quote(name)}")


def shadow_name(table: str) -> str:
    return SHADOW_PREFIX + table


class Guard:
    """An SQLite authorizer that, while armed, lets statements touch only the tables
    given (plus the schema tables SQLite and sqlite-utils read). Handlers run armed:
    a projection cannot read or write the events table, esctl's tables or another
    projection's tables, nor commit or roll back the transaction it runs in."""

    _READ_PRAGMAS = frozenset(
        {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"}
    )

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.allowed: frozenset[str] | None = None
        self.refused: str | None = None
        conn.set_authorizer(self._authorize)

    def arm(self, tables: list[str]) -> None:
        self.allowed = frozenset(t.lower() for t in tables)
        self.refused = None

    def disarm(self) -> None:
        self.allowed = None

    def close(self) -> None:
        self.conn.set_authorizer(None)

    def _authorize(self, action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: Any) -> int:
        allowed = self.allowed
        if allowed is None:
            return sqlite3.SQLITE_OK
        if action in _TABLE_ARG1:
            name = arg1
        elif action in _TABLE_ARG2:
            name = arg2
        elif action in _ALWAYS:
            return sqlite3.SQLITE_OK
        elif action == sqlite3.SQLITE_PRAGMA:
            if arg2 is None or (arg1 or "").lower() in self._READ_PRAGMAS:
                return sqlite3.SQLITE_OK
            return self._refuse(f"PRAGMA {arg1} = {arg2}")
        else:
            return self._refuse(_ACTION_NAMES.get(action, f"action {action}"))
        lowered = (name or "").lower()
        if lowered in allowed or (action == sqlite3.SQLITE_READ and lowered.startswith("sqlite_")):
            return sqlite3.SQLITE_OK
        return self._refuse(f"{_ACTION_NAMES.get(action, 'access')} {name}")

    def _refuse(self, what: str) -> int:
        if self.refused is None:
            self.refused = what
        return sqlite3.SQLITE_DENY


_TABLE_ARG1 = {
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_INSERT,
    sqlite3.SQLITE_UPDATE,
    sqlite3.SQLITE_DELETE,
    sqlite3.SQLITE_CREATE_TABLE,
    sqlite3.SQLITE_DROP_TABLE,
}
_TABLE_ARG2 = {
    sqlite3.SQLITE_CREATE_INDEX,
    sqlite3.SQLITE_DROP_INDEX,
    sqlite3.SQLITE_ALTER_TABLE,
    sqlite3.SQLITE_CREATE_TRIGGER,
    sqlite3.SQLITE_DROP_TRIGGER,
}
_ALWAYS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
_ACTION_NAMES = {
    sqlite3.SQLITE_READ: "reading",
    sqlite3.SQLITE_INSERT: "INSERT into",
    sqlite3.SQLITE_UPDATE: "UPDATE of",
    sqlite3.SQLITE_DELETE: "DELETE from",
    sqlite3.SQLITE_CREATE_TABLE: "CREATE TABLE",
    sqlite3.SQLITE_DROP_TABLE: "DROP TABLE",
    sqlite3.SQLITE_CREATE_INDEX: "CREATE INDEX on",
    sqlite3.SQLITE_DROP_INDEX: "DROP INDEX on",
    sqlite3.SQLITE_ALTER_TABLE: "ALTER TABLE",
    sqlite3.SQLITE_CREATE_TRIGGER: "CREATE TRIGGER on",
    sqlite3.SQLITE_DROP_TRIGGER: "DROP TRIGGER on",
    sqlite3.SQLITE_TRANSACTION: "a transaction statement (COMMIT/ROLLBACK)",
    sqlite3.SQLITE_SAVEPOINT: "a SAVEPOINT",
    sqlite3.SQLITE_ATTACH: "ATTACH",
    sqlite3.SQLITE_DETACH: "DETACH",
    sqlite3.SQLITE_CREATE_VIEW: "CREATE VIEW",
    sqlite3.SQLITE_DROP_VIEW: "DROP VIEW",
}
