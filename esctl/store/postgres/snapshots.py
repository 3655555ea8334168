"""Snapshots on PostgreSQL: the rules of esctl.store.sqlite.snapshots (kept per
fingerprint, other code's pruned after STALE_AFTER), in the esctl_snapshots table
that schema 2 creates."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from esctl.errors import StoreError
from esctl.events import utc_now
from esctl.store.snapshot import STALE_AFTER, Snapshot

_COLUMNS = "stream, version, aggregate, fingerprint, state, created_at"


class Snapshots:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def latest(self, stream: str, fingerprint: str, max_version: int) -> Snapshot | None:
        if max_version < 1:
            return None
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM esctl_snapshots"
            " WHERE stream = %s AND fingerprint = %s AND version <= %s ORDER BY version DESC LIMIT 1",
            (stream, fingerprint, max_version),
        ).fetchone()
        return Snapshot(*row) if row else None

    def list(self, stream: str) -> list[Snapshot]:
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM esctl_snapshots WHERE stream = %s ORDER BY version, fingerprint",
            (stream,),
        ).fetchall()
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
        snapshot = Snapshot(stream, version, aggregate, fingerprint, state, utc_now())
        cutoff = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - STALE_AFTER))
        try:
            with self.conn.transaction():
                if wait_seconds is not None:
                    self.conn.execute(f"SET LOCAL lock_timeout = {max(1, int(wait_seconds * 1000))}")
                self.conn.execute(
                    "DELETE FROM esctl_snapshots WHERE stream = %s AND fingerprint IN ("
                    " SELECT fingerprint FROM esctl_snapshots WHERE stream = %s AND fingerprint <> %s"
                    " GROUP BY fingerprint HAVING max(created_at) < %s)",
                    (stream, stream, fingerprint, cutoff),
                )
                self.conn.execute(
                    "INSERT INTO esctl_snapshots (stream, fingerprint, version, aggregate, state, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (stream, fingerprint, version)"
                    " DO UPDATE SET aggregate = excluded.aggregate, state = excluded.state,"
                    " created_at = excluded.created_at",
                    (stream, fingerprint, version, aggregate, state, snapshot.created_at),
                )
        except psycopg.Error as exc:
            raise StoreError(f"cannot write a snapshot of {stream!r}: {exc}") from None
        return snapshot
