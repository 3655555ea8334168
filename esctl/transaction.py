"""One way to run a write transaction on a connection in autocommit mode."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

_STEP_MS = 100  # how long one wait for the lock lasts: Ctrl-C is noticed between waits


def begin_immediate(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE: take the write lock, waiting up to the connection's busy
    timeout for another writer. The wait is made of short ones, so that a Ctrl-C
    (which Python only sees between SQLite calls) is not held up for the whole
    timeout. SQLITE_BUSY once the timeout has passed."""
    timeout_ms = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    if timeout_ms <= _STEP_MS:
        conn.execute("BEGIN IMMEDIATE")
        return
    deadline = time.monotonic() + timeout_ms / 1000
    conn.execute(f"PRAGMA busy_timeout = {_STEP_MS}")
    try:
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                busy = (exc.sqlite_errorcode or 0) & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                if not busy or time.monotonic() >= deadline:
                    raise
    finally:
        conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")


def rollback(conn: sqlite3.Connection) -> None:
    """ROLLBACK if a transaction is open (SQLite may have rolled it back itself,
    after a full disk or an I/O error). A failing ROLLBACK is not raised over the
    error that led to it: SQLite rolls the transaction back when it next opens the
    file, or when the connection closes."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE (take the write lock now, waiting up to the busy timeout);
    COMMIT on success, ROLLBACK on any exception (a failed COMMIT included)."""
    begin_immediate(conn)
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
