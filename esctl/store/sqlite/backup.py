"""Copying a live store to another file with SQLite's online backup API."""

from __future__ import annotations

import contextlib
import os
import sqlite3

from esctl.errors import StoreError
from esctl.store.sqlite.schema import read_only_uri


def copy_store(path: str, dest: str) -> None:
    """Copy the committed state of the store at `path` to a new file `dest`, which
    must not exist. The copy is written beside `dest` and renamed into place when
    complete and on disk, so `dest` never names half a copy. Writers may keep
    going meanwhile (a caller that holds the write lock gets the state as of now)."""
    if os.path.lexists(dest):
        raise StoreError(f"{dest} exists already: move it away, or give another backup path")
    partial = dest + ".part"
    with contextlib.suppress(FileNotFoundError):
        os.remove(partial)
    try:
        source = sqlite3.connect(read_only_uri(path), uri=True)
        try:
            target = sqlite3.connect(partial)
            try:
                source.backup(target)  # WAL mode as the store; closing folds the -wal in
            finally:
                target.close()
        finally:
            source.close()
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, dest)
        _fsync_directory(os.path.dirname(os.path.abspath(dest)))
    except (sqlite3.Error, OSError) as exc:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise StoreError(f"cannot write the backup {dest}: {reason}") from None


def holds_the_same_log(copy: str, path: str) -> bool:
    """Whether the file `copy` is an esctl store with the same schema and the same
    events as the store at `path` (the log is append-only: the same head position
    with the same id there means the same events), e.g. the backup of an upgrade
    that was interrupted after its copy was made."""
    head = (
        "SELECT (SELECT application_id FROM pragma_application_id),"
        " (SELECT user_version FROM pragma_user_version), position, id"
        " FROM events ORDER BY position DESC LIMIT 1"
    )
    try:
        with contextlib.closing(sqlite3.connect(read_only_uri(copy), uri=True)) as c:
            theirs = c.execute(head).fetchone()
        with contextlib.closing(sqlite3.connect(read_only_uri(path), uri=True)) as c:
            ours = c.execute(head).fetchone()
    except sqlite3.Error:
        return False
    return ours is not None and theirs == ours  # an empty store is simply copied again


def _fsync_directory(path: str) -> None:
    """Make the rename itself durable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
