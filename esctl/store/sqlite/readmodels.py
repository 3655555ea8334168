"""Read models in a SQLite file: the store's own (default) or another (`--read-db`).

Tables sit in the file under their declared names; a rebuild fills shadow tables
(`esctl_shadow_<table>`) that a temporary view under each declared name shows to
the rebuilding connection (SQLite looks names up in `temp` before `main`), and
renames them over the old ones at the end. A handler's statements pass an
authorizer that lets them touch only its projection's tables. Rebuild claims and
consumers' leases are rows with a token and an expiry, renewed while held.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from esctl import codec
from esctl.errors import ConcurrencyError, InvalidInput, NotFound, StoreError, StoreReadOnly
from esctl.events import utc_now
from esctl.store.readmodels import CATALOG, Record, TableShape
from esctl.store.sqlite import authorizer
from esctl.store.sqlite.failures import classify, database_path, not_writable, primary_code
from esctl.store.sqlite.schema import open_read_only, read_only_uri
from esctl.transaction import immediate, rollback

SHADOW_PREFIX = "esctl_shadow_"
REBUILD_LEASE = 10.0  # seconds a killed rebuild holds its claim

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
COLUMNS = Record.COLUMNS
LEASES = "esctl_leases"
_LEASES_DDL = f"""
CREATE TABLE IF NOT EXISTS {LEASES} (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,   -- in words, for people: never used to tell if it runs
    token      TEXT NOT NULL,   -- this holding of it: a renewal by an older holder fails
    expires_at REAL NOT NULL    -- seconds since the epoch
)
"""


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def shadow_name(table: str) -> str:
    return SHADOW_PREFIX + table


class SQLiteReadModels:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, location: str) -> None:
        self.conn = conn
        self.location = location
        self._leases: dict[str, str] = {}  # leases this holds: name -> the token of its row
        self._beats: dict[str, _Heartbeat] = {}
        self._renewer: sqlite3.Connection | None = None  # the heartbeats' own connection

    @classmethod
    def open(cls, path: str, *, create: bool) -> SQLiteReadModels:
        """The read-model file, in autocommit mode (transactions are explicit).
        Without `create` it may be read-only (read-only media or directory) and
        NotFound when it does not exist; with it, a file that cannot be written
        raises StoreReadOnly.

        Read models can always be rebuilt from the log, so commits use
        synchronous=NORMAL (WAL keeps them atomic; a power cut can lose the last
        ones, never half of one)."""
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
                return cls(open_read_only(path, check_same_thread=False), path)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: rebuilds touch many pages
        except sqlite3.DatabaseError as exc:
            if primary_code(exc) == sqlite3.SQLITE_NOTADB:  # some other file, not a damaged one
                raise StoreError(f"{path} cannot hold read models: {exc}") from None
            raise classify(exc, path) or StoreError(f"{path} cannot hold read models: {exc}") from None
        return cls(conn, path)

    @classmethod
    def scratch_file(cls, path: str) -> SQLiteReadModels:
        """A throwaway file: nothing in it needs to survive a crash."""
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        return cls(conn, path)

    @classmethod
    def in_memory(cls) -> SQLiteReadModels:
        return cls(sqlite3.connect(":memory:", isolation_level=None), ":memory:")

    def close(self) -> None:
        for beat in self._beats.values():
            beat.stop()
        if self._renewer is not None:
            self._renewer.close()
        self.conn.close()

    def __enter__(self) -> SQLiteReadModels:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- SQL and transactions --------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> sqlite3.Cursor:
        return self.conn.executemany(sql, rows)

    def insert_sql(
        self, verb: str, reference: str, columns: Sequence[str], key: Sequence[str], every: Sequence[str]
    ) -> str:
        names = ", ".join(quote(c) for c in columns)
        return f"{verb} INTO {reference} ({names}) VALUES ({', '.join('?' * len(columns))})"

    @contextlib.contextmanager
    def transaction(self, name: str | None = None) -> Iterator[None]:
        # One writer at a time holds the file's write lock: no per-projection lock.
        with immediate(self.conn):
            yield

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[_Savepoint]:
        self.conn.execute("SAVEPOINT esctl_apply")
        try:
            yield _Savepoint(self.conn)
        finally:
            if self.conn.in_transaction:
                self.conn.execute("RELEASE esctl_apply")

    def rollback(self) -> None:
        rollback(self.conn)

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def translate(self, exc: BaseException) -> BaseException | None:
        if isinstance(exc, sqlite3.Error):
            return classify(exc, database_path(self.conn))
        return None

    # --- the catalog -----------------------------------------------------------------

    def _has_table(self, name: str) -> bool:
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
        return bool(self.conn.execute(sql, (name,)).fetchone()[0])

    def ensure_catalog(self) -> None:
        if not self._has_table(CATALOG):
            self.conn.execute(_CATALOG_DDL)

    def records(self) -> dict[str, Record]:
        if not self._has_table(CATALOG):
            return {}
        rows = self.conn.execute(f"SELECT {COLUMNS} FROM {CATALOG}").fetchall()
        return {row[0]: Record.from_row(row) for row in rows}

    def record(self, name: str, *, lock: bool = False) -> Record | None:
        # `lock` needs nothing here: a write transaction holds the whole file.
        if not self._has_table(CATALOG):
            return None
        row = self.conn.execute(f"SELECT {COLUMNS} FROM {CATALOG} WHERE name = ?", (name,)).fetchone()
        return Record.from_row(row) if row else None

    def save(self, rec: Record) -> None:
        sql = f"INSERT OR REPLACE INTO {CATALOG} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        self.conn.execute(sql, rec.to_row(utc_now()))

    def move_checkpoint(self, name: str, checkpoint: int, fingerprint: str | None = None) -> None:
        self.conn.execute(
            f"UPDATE {CATALOG} SET checkpoint = ?, failure = NULL, updated_at = ?,"
            " fingerprint = coalesce(?, fingerprint) WHERE name = ?",
            (checkpoint, utc_now(), fingerprint, name),
        )

    def record_failure(self, name: str, checkpoint: int, failure: dict[str, Any]) -> None:
        with immediate(self.conn):
            self.conn.execute(
                f"UPDATE {CATALOG} SET failure = ? WHERE name = ? AND checkpoint = ?",
                (codec.dumps_text(failure), name, checkpoint),
            )

    def forget(self, name: str) -> None:
        self.conn.execute(f"DELETE FROM {CATALOG} WHERE name = ?", (name,))

    # --- tables ----------------------------------------------------------------------

    def _existing(self) -> set[str]:
        sql = "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
        return {row[0].lower() for row in self.conn.execute(sql)}

    def present(self, name: str, *, shadow: bool = False) -> set[str]:
        existing = self._existing()
        if not shadow:
            return existing
        return {t[len(SHADOW_PREFIX) :] for t in existing if t.startswith(SHADOW_PREFIX)}

    def check_ownership(self, name: str, tables: Sequence[str]) -> None:
        recs = self.records()
        mine = {t.lower() for t in recs[name].tables} if name in recs else set()
        owners = {t.lower(): r.name for r in recs.values() if r.name != name for t in r.tables}
        present = self._existing()
        for table in tables:
            lowered = table.lower()
            if lowered in owners:
                raise InvalidInput(
                    f"projection {name!r} cannot own table {table!r}: projection {owners[lowered]!r}"
                    f" owns it (esctl project reset {owners[lowered]} frees it)"
                )
            if lowered in present and lowered not in mine:
                raise InvalidInput(
                    f"projection {name!r} cannot own table {table!r}: a table of that name"
                    " exists and is not one of its read models (esctl will not take it over)"
                )

    def create_table(self, name: str, table: TableShape, generation: int, *, shadow: bool = False) -> None:
        create_table(self.conn, table, shadow_name(table.name) if shadow else table.name, generation)

    def drop_tables(self, name: str, tables: Sequence[str], *, shadow: bool = False) -> None:
        for table in tables:
            # main.: a rebuild's temporary views of the same name must not be in the way.
            self.conn.execute(f"DROP TABLE IF EXISTS main.{quote(shadow_name(table) if shadow else table)}")

    def target(self, name: str, tables: Sequence[str], *, shadow: bool = False) -> Guard:
        return Guard(self.conn, tables, shadow=shadow)

    def swap_in_shadows(self, name: str, old: Sequence[str], new: Sequence[str]) -> None:
        _drop_views(self.conn, new)
        # Legacy rename leaves views that name the table alone: they see the new one.
        self.conn.execute("PRAGMA legacy_alter_table = ON")
        try:
            self.drop_tables(name, sorted({*old, *new}))
            for table in new:
                self.conn.execute(f"ALTER TABLE {quote(shadow_name(table))} RENAME TO {quote(table)}")
        finally:
            self.conn.execute("PRAGMA legacy_alter_table = OFF")

    def has_table(self, table: str) -> bool:
        return self._has_table(table)

    # --- leases ----------------------------------------------------------------------
    # A row with a token and an expiry. Nothing in SQLite ends with a process, so
    # the holder renews it from a thread of its own, on a connection of its own (the
    # holder's may be mid-transaction), every third of its time; a holder killed
    # with -9 holds it until it expires. A runner that lost it (paused past its
    # time, taken over) finds out in `holds_lease`, inside its next transaction.

    def acquire_lease(self, name: str, seconds: float) -> str | None:
        import socket
        import time
        import uuid

        with contextlib.nullcontext() if self.conn.in_transaction else immediate(self.conn):
            self.conn.execute(_LEASES_DDL)
            row = self.conn.execute(
                f"SELECT holder, expires_at FROM {LEASES} WHERE name = ?", (name,)
            ).fetchone()
            now = time.time()
            if row is not None and row[1] > now and name not in self._leases:
                return f"{row[0]} (until {_clock(row[1])} unless renewed)"
            token = self._leases.get(name) or str(uuid.uuid4())
            holder = f"process {os.getpid()} on {socket.gethostname()} since {utc_now()}"
            self.conn.execute(
                f"INSERT OR REPLACE INTO {LEASES} (name, holder, token, expires_at) VALUES (?, ?, ?, ?)",
                (name, holder, token, now + seconds),
            )
        if name not in self._leases:
            self._leases[name] = token
            self._beats[name] = _Heartbeat(self, name, seconds)
        return None

    def renew_lease(self, name: str, seconds: float) -> bool:
        import time

        token = self._leases.get(name)
        if token is None:
            return False
        if self._renewer is None:
            self._renewer = sqlite3.connect(
                self.location, timeout=60.0, isolation_level=None, check_same_thread=False
            )
        with immediate(self._renewer):
            cursor = self._renewer.execute(
                f"UPDATE {LEASES} SET expires_at = ? WHERE name = ? AND token = ?",
                (time.time() + seconds, name, token),
            )
        return cursor.rowcount == 1

    def release_lease(self, name: str) -> None:
        beat = self._beats.pop(name, None)
        if beat is not None:
            beat.stop()
        token = self._leases.pop(name, None)
        if token is not None:
            with contextlib.nullcontext() if self.conn.in_transaction else immediate(self.conn):
                self.conn.execute(f"DELETE FROM {LEASES} WHERE name = ? AND token = ?", (name, token))

    def holds_lease(self, name: str) -> bool:
        token = self._leases.get(name)
        beat = self._beats.get(name)
        if token is None or (beat is not None and beat.lost):
            return False
        row = self.conn.execute(
            f"SELECT 1 FROM {LEASES} WHERE name = ? AND token = ?", (name, token)
        ).fetchone()
        return row is not None

    def lease_holder(self, name: str) -> str | None:
        import time

        if not self._has_table(LEASES):
            return None
        row = self.conn.execute(f"SELECT holder, expires_at FROM {LEASES} WHERE name = ?", (name,)).fetchone()
        if row is None or row[1] <= time.time():
            return None
        return row[0]

    # --- rebuild claims: leases named after the projection ---------------------------

    def claim_rebuild(self, name: str) -> None:
        holder = self.acquire_lease(f"rebuild:{name}", REBUILD_LEASE)
        if holder is not None:
            raise ConcurrencyError(f"projection {name!r} is being rebuilt by {holder}: wait for it to finish")

    def release_rebuild(self, name: str) -> None:
        self.release_lease(f"rebuild:{name}")

    def holds_rebuild(self, name: str) -> bool:
        return self.holds_lease(f"rebuild:{name}")

    def rebuilder(self, name: str) -> str | None:
        if f"rebuild:{name}" in self._leases:
            return None  # this connection's own rebuild
        return self.lease_holder(f"rebuild:{name}")

    # --- verifying -------------------------------------------------------------------

    @contextlib.contextmanager
    def scratch(self, count: int) -> Iterator[list[SQLiteReadModels]]:
        with tempfile.TemporaryDirectory(prefix="esctl-verify-") as directory:
            dbs = [self.scratch_file(os.path.join(directory, f"rebuild{i}.db")) for i in range(1, count + 1)]
            try:
                yield dbs
            finally:
                for db in dbs:
                    db.close()

    @contextlib.contextmanager
    def compare(self, name: str, rebuilds: Sequence[SQLiteReadModels]) -> Iterator[_Comparison]:
        first, again = rebuilds
        conn = sqlite3.connect(pathlib.Path(first.location).as_uri(), uri=True, isolation_level=None)
        try:
            conn.execute("ATTACH DATABASE ? AS live", (read_only_uri(self.location),))
            conn.execute("ATTACH DATABASE ? AS again", (pathlib.Path(again.location).as_uri(),))
            conn.execute("BEGIN")  # one snapshot of the live tables and their checkpoint
            yield _Comparison(conn, name)
            conn.execute("COMMIT")
        finally:
            conn.close()


class _Savepoint:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK TO esctl_apply")


def create_table(conn: sqlite3.Connection, table: TableShape, physical: str, generation: int) -> None:
    """Create one table (through sqlite-utils) with its indexes, in the open transaction."""
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    db[physical].create(
        dict(table.columns),
        pk=table.key[0] if len(table.key) == 1 else table.key or None,
        not_null=set(table.not_null) or None,
        defaults=dict(table.defaults) or None,
    )
    for columns in table.index_columns():
        # Index names carry the build generation: a rebuild creates the new ones on its
        # shadow table while the old table (and its indexes) still exists.
        index_name = f"idx_{table.name}_{'_'.join(columns)}_g{generation}"
        db[physical].create_index(list(columns), index_name=index_name)


def _drop_views(conn: sqlite3.Connection, names: Iterable[str]) -> None:
    for table in names:
        conn.execute(f"DROP VIEW IF EXISTS temp.{quote(table)}")


class Guard:
    """A projection's tables on this connection, and an authorizer that, while
    armed, lets statements touch only them (plus the schema tables SQLite and
    sqlite-utils read). Handlers run armed: a projection cannot read or write the
    events table, esctl's tables or another projection's tables, nor commit or roll
    back the transaction it runs in. Savepoints of its own (sqlite-utils opens them)
    nest inside the batch's and are allowed.

    For a rebuild (`shadow`) the tables are the shadows, which temporary views
    under the declared names show to this connection."""

    def __init__(self, conn: sqlite3.Connection, tables: Sequence[str], *, shadow: bool) -> None:
        self.conn = conn
        physical = {t: shadow_name(t) if shadow else t for t in tables}
        self.references = {t: quote(p) for t, p in physical.items()}
        self.names = physical
        self._allowed = frozenset(n.lower() for n in (*physical, *physical.values()))
        self.allowed: frozenset[str] | None = None
        self.refused: str | None = None
        self._views = list(tables) if shadow else []
        for table in self._views:
            conn.execute(f"CREATE TEMP VIEW {quote(table)} AS SELECT * FROM main.{quote(physical[table])}")
        conn.set_authorizer(self._authorize)

    def arm(self) -> None:
        self.allowed = self._allowed
        self.refused = None

    def disarm(self) -> None:
        self.allowed = None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Unguarded for esctl's own statements in the middle of a handler's."""
        allowed, self.allowed = self.allowed, None
        try:
            yield
        finally:
            self.allowed = allowed

    def close(self) -> None:
        self.conn.set_authorizer(None)
        with contextlib.suppress(sqlite3.Error):  # a closed or rolled-back connection
            _drop_views(self.conn, self._views)

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


class _Comparison:
    """The first rebuild is `main`, the live file `live`, the second rebuild `again`.
    Values compare with their SQLite type (1 is not 1.0 is not '1'); rows of a
    keyless table match on rowid (two rebuilds insert in the same order)."""

    _SCHEMAS: ClassVar[dict[str, str]] = {"live": "live", "rebuilt": "main", "again": "again"}

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        self.conn = conn
        self.name = name

    def record(self) -> Record | None:
        row = self.conn.execute(
            f"SELECT {COLUMNS} FROM live.{CATALOG} WHERE name = ?", (self.name,)
        ).fetchone()
        return Record.from_row(row) if row else None

    def columns(self, table: str, side: str) -> list[str]:
        schema = self._SCHEMAS[side]
        return [row[1] for row in self.conn.execute(f"PRAGMA {schema}.table_info({quote(table)})")]

    def count(self, table: str) -> int:
        return self.conn.execute(f"SELECT count(*) FROM live.{quote(table)}").fetchone()[0]

    def differences(
        self, table: str, key: Sequence[str], columns: Sequence[str], side: str
    ) -> Iterator[tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any] | None, list[str]]]:
        keys = list(key) or ["rowid"]
        values = [c for c in columns if c not in keys]
        names = [*keys, *values]
        mine, theirs = f"main.{quote(table)}", f"{self._SCHEMAS[side]}.{quote(table)}"
        match = " AND ".join(f"o.{quote(k)} = m.{quote(k)}" for k in keys)

        def select(alias: str) -> str:
            return ", ".join(f"{alias}.{quote(c)}" for c in names)

        def as_dict(row: Sequence[Any]) -> dict[str, Any]:
            return dict(zip(names, row, strict=True))

        def key_of(d: dict[str, Any]) -> dict[str, Any]:
            return {k: d[k] for k in keys}

        absent = "WHERE NOT EXISTS (SELECT 1 FROM {} AS {} WHERE {})"
        for row in self.conn.execute(
            f"SELECT {select('m')} FROM {mine} AS m {absent.format(theirs, 'o', match)}"
        ):
            d = as_dict(row)
            yield "missing", key_of(d), None, d, []
        for row in self.conn.execute(
            f"SELECT {select('o')} FROM {theirs} AS o {absent.format(mine, 'm', match)}"
        ):
            d = as_dict(row)
            yield "extra", key_of(d), d, None, []
        if not values:
            return
        same = " AND ".join(
            f"(o.{quote(c)} IS m.{quote(c)} AND typeof(o.{quote(c)}) = typeof(m.{quote(c)}))" for c in values
        )
        width = len(names)
        for row in self.conn.execute(
            f"SELECT {select('m')}, {select('o')} FROM {mine} AS m JOIN {theirs} AS o ON {match} WHERE NOT ({same})"
        ):
            rebuilt, other = as_dict(row[:width]), as_dict(row[width:])
            changed = [c for c in values if rebuilt[c] != other[c] or type(rebuilt[c]) is not type(other[c])]
            yield "different", key_of(rebuilt), other, rebuilt, changed


def _clock(seconds: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%H:%M:%S UTC")


class _Heartbeat:
    """Renews one lease every third of its time until stopped; `lost` once a
    renewal finds the lease gone (expired and taken)."""

    def __init__(self, db: SQLiteReadModels, name: str, seconds: float) -> None:
        import threading

        self.lost = False
        self._done = threading.Event()
        self._db, self._name, self._seconds = db, name, seconds
        self._thread = threading.Thread(target=self._run, name=f"lease {name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(self._seconds / 3):
            try:
                renewed = self._db.renew_lease(self._name, self._seconds)
            except sqlite3.Error:
                renewed = False
            if not renewed:
                self.lost = True
                return

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=60)  # not mid-renewal when the lease is given back
