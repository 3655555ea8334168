"""Snapshots: an aggregate's state at a version, kept so replay need not start at 1.

They live in a table of their own, `esctl_snapshots`, in the store file (never in
the events table), created on the first write. Each row records the stream, the
version the state reflects, the aggregate and a fingerprint of its code; a
snapshot whose fingerprint differs from the code's is ignored. Reading never
creates the table, and never deletes.

Snapshots are kept per fingerprint: two deployments running different code
against one store (a rolling upgrade, a batch job on last month's release) each
keep theirs. Other code's snapshots of a stream are pruned only when a snapshot is
written and that code has written none of the stream for STALE_AFTER: code that
still runs keeps refreshing them; code that is gone stops, and its rows go."""

from __future__ import annotations

import sqlite3
import time

from esctl.errors import StoreError
from esctl.events import utc_now
from esctl.store.snapshot import STALE_AFTER, Snapshot
from esctl.transaction import immediate

TABLE = "esctl_snapshots"

DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    stream      TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,   -- of the aggregate's code: other code ignores the row
    version     INTEGER NOT NULL,   -- the last event folded into the state
    aggregate   TEXT    NOT NULL,
    state       TEXT    NOT NULL,   -- typed JSON (esctl.aggregates.statecodec)
    created_at  TEXT    NOT NULL,
    PRIMARY KEY (stream, fingerprint, version)
) WITHOUT ROWID
"""


# The table's columns in Snapshot's field order.
_COLUMNS = "stream, version, aggregate, fingerprint, state, created_at"


class Snapshots:
    """The snapshot table of one store connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _exists(self) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
        ).fetchone()
        return row is not None

    def latest(self, stream: str, fingerprint: str, max_version: int) -> Snapshot | None:
        """The newest snapshot by this code at or below `max_version`."""
        if max_version < 1 or not self._exists():
            return None
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM {TABLE}"
            " WHERE stream = ? AND fingerprint = ? AND version <= ? ORDER BY version DESC LIMIT 1",
            (stream, fingerprint, max_version),
        ).fetchone()
        return Snapshot(*row) if row else None

    def list(self, stream: str) -> list[Snapshot]:
        if not self._exists():
            return []
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM {TABLE} WHERE stream = ? ORDER BY version, fingerprint",
            (stream,),
        )
        return [Snapshot(*row) for row in rows]

    def save(
        self,
        stream: str,
        version: int,
        aggregate: str,
        fingerprint: str,
        state: str,
        *,
        wait_seconds: float | None = None,
    ) -> Snapshot:
        """Write a snapshot (replacing one by the same code at the same version) and
        prune the stream's snapshots by code that has written none for STALE_AFTER.
        `wait_seconds` bounds the wait for another writer (else the store's own
        timeout): an automatic snapshot during a read must not wait long."""
        if wait_seconds is None:
            return self._save(stream, version, aggregate, fingerprint, state)
        previous = self.conn.execute("PRAGMA busy_timeout").fetchone()[0]
        self.conn.execute(f"PRAGMA busy_timeout = {int(wait_seconds * 1000)}")
        try:
            return self._save(stream, version, aggregate, fingerprint, state)
        finally:
            self.conn.execute(f"PRAGMA busy_timeout = {int(previous)}")

    def _save(self, stream: str, version: int, aggregate: str, fingerprint: str, state: str) -> Snapshot:
        snapshot = Snapshot(stream, version, aggregate, fingerprint, state, utc_now())
        cutoff = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - STALE_AFTER))
        try:
            with immediate(self.conn) as conn:
                conn.execute(DDL)
                conn.execute(
                    f"DELETE FROM {TABLE} WHERE stream = ? AND fingerprint IN ("
                    f" SELECT fingerprint FROM {TABLE} WHERE stream = ? AND fingerprint <> ?"
                    " GROUP BY fingerprint HAVING max(created_at) < ?)",
                    (stream, stream, fingerprint, cutoff),
                )
                conn.execute(
                    f"INSERT OR REPLACE INTO {TABLE}"
                    " (stream, fingerprint, version, aggregate, state, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (stream, fingerprint, version, aggregate, state, snapshot.created_at),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write a snapshot of {stream!r}: {exc}") from None
        return snapshot
