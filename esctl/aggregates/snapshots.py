"""Snapshots: an aggregate's state at a version, kept so replay need not start at 1.

They live in a table of their own, `esctl_snapshots`, in the store file (never in
the events table), created on the first write. Each row records the stream, the
version the state reflects, the aggregate and a fingerprint of its code; a
snapshot whose fingerprint differs from the code's is ignored, and pruned when the
same aggregate next writes one. Reading never creates the table."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from esctl.errors import StoreError
from esctl.events import utc_now

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


@dataclass(frozen=True, slots=True)
class Snapshot:
    stream: str
    version: int
    aggregate: str
    fingerprint: str
    state: str  # encoded; decode with statecodec.loads
    created_at: str

    def to_dict(self, current_fingerprint: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "stream": self.stream,
            "version": self.version,
            "aggregate": self.aggregate,
            "fingerprint": self.fingerprint,
            "bytes": len(self.state.encode()),
            "created_at": self.created_at,
        }
        if current_fingerprint is not None:
            doc["valid"] = self.fingerprint == current_fingerprint
        return doc


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
            f"SELECT stream, version, aggregate, fingerprint, state, created_at FROM {TABLE}"
            " WHERE stream = ? AND fingerprint = ? AND version <= ? ORDER BY version DESC LIMIT 1",
            (stream, fingerprint, max_version),
        ).fetchone()
        return Snapshot(*row) if row else None

    def list(self, stream: str) -> list[Snapshot]:
        if not self._exists():
            return []
        rows = self.conn.execute(
            f"SELECT stream, version, aggregate, fingerprint, state, created_at FROM {TABLE}"
            " WHERE stream = ? ORDER BY version, fingerprint",
            (stream,),
        )
        return [Snapshot(*row) for row in rows]

    def save(self, stream: str, version: int, aggregate: str, fingerprint: str, state: str) -> Snapshot:
        """Write a snapshot (replacing one by the same code at the same version) and
        drop this aggregate's snapshots of the stream made by other code."""
        snapshot = Snapshot(stream, version, aggregate, fingerprint, state, utc_now())
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(DDL)
                conn.execute(
                    f"DELETE FROM {TABLE} WHERE stream = ? AND aggregate = ? AND fingerprint <> ?",
                    (stream, aggregate, fingerprint),
                )
                conn.execute(
                    f"INSERT OR REPLACE INTO {TABLE}"
                    " (stream, fingerprint, version, aggregate, state, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (stream, fingerprint, version, aggregate, state, snapshot.created_at),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write a snapshot of {stream!r}: {exc}") from None
        return snapshot
