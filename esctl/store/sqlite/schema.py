"""The store's schema: the tables, indexes and triggers that carry its guarantees,
and the checks that refuse a file which is not an esctl store (without touching it)."""

from __future__ import annotations

import os
import pathlib
import sqlite3
from dataclasses import dataclass

from esctl.errors import NotFound, StoreError, StoreReadOnly
from esctl.store.sqlite import compat, migrations
from esctl.store.sqlite.failures import cannot_open, classify, not_writable, primary_code
from esctl.store.sqlite.triggers import disable_triggers
from esctl.transaction import immediate

SCHEMA_VERSION = migrations.LATEST


def triggers(version: int) -> dict[str, str]:
    """The triggers a store at schema `version` has, name to SQL (whitespace
    collapsed): what its guarantees rest on, for `check` to compare."""
    if version not in _TRIGGERS:
        conn = sqlite3.connect(":memory:")
        migrations.upgrade(conn, 0, upto=version)
        _TRIGGERS[version] = {
            name: " ".join(sql.split())
            for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        }
        conn.close()
    return _TRIGGERS[version]


_TRIGGERS: dict[int, dict[str, str]] = {}
APPLICATION_ID = 0x45534354  # "ESCT": marks the file as an esctl store
_SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(slots=True)
class Connected:
    """An open store: its connection, whether this open created it, why it cannot
    be written (None when it can: a store on read-only media, or in a directory
    where SQLite cannot create its -wal and -shm files, is opened for reading only),
    its schema version, and whether the connection runs with triggers off (then
    the writer maintains the derived tables itself; see esctl.store.sqlite.triggers)."""

    conn: sqlite3.Connection
    created: bool
    read_only: str | None
    version: int
    triggers_off: bool


def connect(path: str, *, create: bool) -> Connected:
    """Open the store at `path`, creating it when `create` is true.

    A file that is not an esctl store, or has a schema newer than this esctl's,
    raises StoreError and is left exactly as it was. A store with an older schema
    opens for reading (esctl.store.sqlite.compat); `esctl migrate` upgrades it.
    """
    exists = os.path.exists(path)
    if not exists:
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            missing = "does not exist" if not os.path.exists(directory) else "is not a directory"
            if not create:
                raise NotFound(f"no event store at {path} (directory {directory} {missing})")
            raise StoreError(f"directory {directory} {missing}")
        if not create:
            raise NotFound(f"no event store at {path}")
    else:
        _check_header(path, create)
    try:
        conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(cannot_open(path, exc)) from None
    created = False
    read_only: str | None = None
    triggers_off = False
    try:
        try:
            version = _check_identity(conn, path, create)
        except sqlite3.OperationalError as exc:
            if not exists or primary_code(exc) not in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY):
                raise
            conn.close()
            conn = open_read_only(path)
            read_only = not_writable(path)
            version = _check_identity(conn, path, create)
        if read_only is None and exists and not os.access(path, os.W_OK):
            read_only = not_writable(path)
        if read_only is None:
            conn.execute("PRAGMA synchronous = FULL")  # a successful append is on disk
        # 64 MiB of page cache (allocated only as used): the (stream, version) and id
        # indexes of a million-event import outgrow the 2 MiB default, which measured
        # ~35% slower imports.
        conn.execute("PRAGMA cache_size = -65536")
        if conn.execute("PRAGMA application_id").fetchone()[0] == 0:
            if read_only is not None:
                raise StoreReadOnly(f"{read_only}: cannot create the store {path}")
            created = _create(conn, path)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        migrations.register_functions(conn)
        if version < SCHEMA_VERSION:
            compat.install(conn)
        elif read_only is None:
            triggers_off = disable_triggers(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        error = classify(exc, path)
        if error is not None and primary_code(exc) != sqlite3.SQLITE_NOTADB:
            raise error from None
        if isinstance(exc, sqlite3.OperationalError):
            raise StoreError(f"cannot open {path}: {exc}") from None
        raise StoreError(f"{path} is not an esctl event store ({exc})") from None
    except BaseException:
        conn.close()
        raise
    return Connected(conn, created, read_only, version, triggers_off)


def open_read_only(path: str, **options: object) -> sqlite3.Connection:
    """A read-only connection to the database at `path` (see read_only_uri)."""
    return sqlite3.connect(read_only_uri(path), uri=True, isolation_level=None, **options)  # type: ignore[call-overload]


def read_only_uri(path: str) -> str:
    """An SQLite URI that reads the WAL database at `path`, also where its -shm
    cannot be created (read-only media, a read-only directory).

    `mode=ro` works wherever the -shm exists or can be created. Elsewhere only
    `immutable=1` opens it: SQLite then takes no locks and ignores any -wal, so it is
    used only when there is no -wal holding changes (on read-only media nobody can
    write anyway; in a read-only directory a writer with more rights that starts
    meanwhile is not seen)."""
    uri = pathlib.Path(path).absolute().as_uri() + "?mode=ro"
    try:
        probe = sqlite3.connect(uri, uri=True)
        try:
            probe.execute("PRAGMA application_id").fetchone()
        finally:
            probe.close()
        return uri
    except sqlite3.OperationalError as exc:
        if primary_code(exc) not in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY):
            raise
    wal = path + "-wal"
    if os.path.exists(wal) and os.path.getsize(wal) > 0:
        raise StoreReadOnly(
            f"{not_writable(path)}: cannot read {path}: its -wal file holds changes that SQLite can"
            " only apply where it may write (copy the store with its -wal and -shm to a writable place)"
        )
    return uri + "&immutable=1"


def _check_header(path: str, create: bool) -> None:
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from None
    if not header:
        if not create:
            raise NotFound(f"no event store at {path} (the file is empty)")
        return
    if header[:16] != _SQLITE_HEADER:
        raise StoreError(f"{path} is not an esctl event store (not a SQLite database)")
    # The header names the application before SQLite touches the file (opening a
    # database with a hot journal would roll it back: a change to someone else's file).
    app_id = int.from_bytes(header[68:72], "big")
    if len(header) == 100 and app_id not in (0, APPLICATION_ID):
        raise StoreError(f"{path} is a SQLite database but not an esctl event store")


def _check_identity(conn: sqlite3.Connection, path: str, create: bool) -> int:
    """The store's schema version (0 for an empty database that may become one)."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path} has schema version {version}, newer than this esctl knows"
                f" ({SCHEMA_VERSION}): upgrade esctl"
            )
        if version < 1:
            raise StoreError(f"{path} has unknown schema version {version}")
        return version
    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if app_id != 0 or tables:
        raise StoreError(f"{path} is a SQLite database but not an esctl event store")
    if not create:
        raise NotFound(f"no event store at {path} (the database is empty)")
    return 0


def _create(conn: sqlite3.Connection, path: str) -> bool:
    # WAL lets readers run beside the single writer; it persists in the file.
    conn.execute("PRAGMA journal_mode = WAL")
    with immediate(conn):
        # Another process may have created the store while we waited for the lock.
        created = conn.execute("PRAGMA application_id").fetchone()[0] == 0
        if created:
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise StoreError(f"{path} is a SQLite database but not an esctl event store")
            migrations.upgrade(conn, 0)
            from esctl import __version__
            from esctl.events import utc_now

            conn.executemany(
                "INSERT INTO esctl_meta (key, value) VALUES (?, ?)",
                [("created_at", utc_now()), ("created_by", f"esctl {__version__}")],
            )
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    return created
