"""SQLite's errors as esctl explains them.

An environment failure (a full disk, a read-only location, a damaged file, an I/O
error, a lock held too long) becomes a StoreError subclass that names the file;
anything else (a constraint, an SQL error: a bug) is left as it is. Errors are told
apart by `sqlite_errorcode` (Python 3.11+), never by their message text.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator

from esctl.errors import (
    EsctlError,
    InvalidInput,
    StoreBusy,
    StoreDamaged,
    StoreError,
    StoreFull,
    StoreReadOnly,
)


def primary_code(exc: sqlite3.Error) -> int | None:
    """The primary result code (SQLITE_READONLY for SQLITE_READONLY_DIRECTORY)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def classify(exc: sqlite3.Error, path: str | None) -> EsctlError | None:
    """The esctl error for an environment failure of the database at `path`, or
    None when `exc` is not one (then it is a bug, or the caller's to explain)."""
    code = primary_code(exc)
    where = path or "the database"
    if code == sqlite3.SQLITE_FULL:
        return StoreFull(f"disk full: cannot write {where}; the transaction was rolled back")
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM):
        return StoreReadOnly(f"{not_writable(path)}: cannot write {where}")
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StoreDamaged(f"{where} is damaged ({exc}): restore it from a backup")
    if code == sqlite3.SQLITE_IOERR:
        return StoreError(f"I/O error on {where} ({exc.sqlite_errorname})")
    if code == sqlite3.SQLITE_CANTOPEN:
        return StoreError(cannot_open(path, exc))
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreBusy(f"{where} is busy: another process holds its lock; try again")
    if code == sqlite3.SQLITE_NOMEM:
        return StoreError(f"out of memory while using {where}")
    if code == sqlite3.SQLITE_TOOBIG:
        return InvalidInput(f"a value is too big for SQLite ({exc})")
    if code == sqlite3.SQLITE_PROTOCOL or code == sqlite3.SQLITE_NOLFS:
        return StoreError(f"cannot use {where}: {exc} ({exc.sqlite_errorname})")
    return None


def translate(exc: BaseException, path: str | None) -> BaseException:
    """`exc` as the esctl error it stands for (an environment failure), else itself."""
    if isinstance(exc, sqlite3.Error):
        return classify(exc, path) or exc
    return exc


@contextlib.contextmanager
def translated(path: str | None) -> Iterator[None]:
    """Raise environment failures of the database at `path` as esctl errors."""
    try:
        yield
    except sqlite3.Error as exc:
        error = classify(exc, path)
        if error is None:
            raise
        raise error from None


def database_path(conn: sqlite3.Connection) -> str | None:
    """The file behind a connection's main database, for messages."""
    try:
        for _, name, file in conn.execute("PRAGMA database_list"):
            if name == "main":
                return file or None
    except sqlite3.Error:
        pass
    return None


def cannot_write(path: str) -> str | None:
    """Why `path` (a database file, perhaps not there yet) cannot be written:
    'read-only file system', 'permission denied', ...; None when the file system
    does not say it cannot (SQLite may still find out)."""
    directory = os.path.dirname(os.path.abspath(path))
    with contextlib.suppress(OSError):  # the file itself may be a read-only mount
        if os.statvfs(path if os.path.exists(path) else directory).f_flag & os.ST_RDONLY:
            return "read-only file system"
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return "permission denied"
    if not os.access(directory, os.W_OK):
        # WAL: the -wal and -shm files live beside the database.
        return f"permission denied (directory {os.path.dirname(path) or '.'})"
    return None


def not_writable(path: str | None) -> str:
    """Why a database that SQLite refused to write cannot be written."""
    return (cannot_write(path) if path is not None else None) or "read-only"


def cannot_open(path: str | None, exc: BaseException) -> str:
    """Why SQLite could not open `path`, in the file system's words rather than
    SQLite's 'unable to open database file'."""
    if path is None:
        return f"cannot open the database: {exc}"
    directory = os.path.dirname(path) or "."
    if not os.path.exists(directory):
        return f"directory {directory} does not exist"
    if not os.path.isdir(directory):
        return f"{directory} is not a directory"
    if os.path.isdir(path):
        return f"{path} is a directory"
    reason = cannot_write(path)
    if reason is not None:
        return f"{reason}: cannot write {path}"
    return f"cannot open {path}: {exc}"
