"""The PostgreSQL write path: the shared checks of esctl.store.writing, over one
connection in autocommit mode whose transactions the caller opens (`begin`).

The transaction's first statement locks the head row (esctl.store.postgres
explains why) and reads the head's position; a chunk goes in as
one statement, so the events_added trigger runs once per chunk: INSERT from arrays
for an append, COPY for a large chunk of an import. A chunk with given ids runs
under a savepoint, rolled back when a stored id meets the unique index."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import errors
from psycopg.pq import TransactionStatus

from esctl.events import RecordedEvent
from esctl.store.writing import COLUMNS, ChunkWriter, Row, decode

SELECT_EVENT = f"SELECT {COLUMNS} FROM events"
_LOCK_HEAD = "SELECT position FROM esctl_head FOR UPDATE"
_VERSIONS = "SELECT stream, version FROM streams WHERE stream = ANY(%s::text[])"
_INSERT = (
    f"INSERT INTO events ({COLUMNS})"
    " SELECT s, v, p, t, d::json, m::json, i, r FROM unnest("
    "%b::text[], %b::bigint[], %b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[]"
    ") AS u(s, v, p, t, d, m, i, r)"
)
_COPY = f"COPY events ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
# Binary: nothing to escape. json's binary form is its text, as text's is.
_COPY_TYPES = ["text", "int8", "int8", "text", "text", "text", "text", "text"]
_COPY_FROM = 1_000  # rows: an import's chunks go by COPY, an append's events by INSERT
_ID_INDEX = "events_id_key"


class Writer(ChunkWriter):
    # Larger than SQLite's: the trigger then updates each stream's row once per
    # 20,000 events rather than per 5,000 (a third off a 200,000-event import here).
    chunk = 20_000

    def __init__(self, conn: Any) -> None:
        super().__init__()
        self.conn = conn
        self._started = False

    def begin(self) -> None:
        """Open the transaction; BEGIN and the head's lock go with its first statement
        (`_start`), which also reads the versions of the first chunk's streams: one
        round trip where three would do the same."""
        self._started = False
        self._versions.clear()

    def _start(self, streams: list[str]) -> None:
        cur = psycopg.ClientCursor(self.conn)  # parameters bound here: several statements, one trip
        # READ COMMITTED whatever the session's default: a writer that waited for the
        # head must then see the rows the previous writer committed.
        cur.execute(f"BEGIN ISOLATION LEVEL READ COMMITTED; {_LOCK_HEAD}; {_VERSIONS}", (streams,))
        cur.nextset()
        self.head = cur.fetchone()[0]
        cur.nextset()
        found = dict(cur.fetchall())
        self._started = True
        for stream in streams:
            self._versions[stream] = found.get(stream, 0)

    def commit(self) -> None:
        if self._started:
            self.conn.execute("COMMIT")
        self._started = False

    def rollback(self) -> None:
        self._versions.clear()
        self._started = False
        # Whatever state a failure left: BEGIN may have gone with a statement that failed.
        if self.conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            with contextlib.suppress(psycopg.Error):  # a lost connection: the server rolled it back
                self.conn.execute("ROLLBACK")

    def _tracked_version(self, stream: str) -> int:
        self._load_versions([stream])
        return self._versions[stream]

    def _load_versions(self, streams: Iterable[str]) -> None:
        wanted = list(set(streams) - self._versions.keys())
        if not self._started:
            self._start(wanted)
        elif wanted:
            found = dict(self.conn.execute(_VERSIONS, (wanted,)).fetchall())
            for stream in wanted:
                self._versions[stream] = found.get(stream, 0)

    def _insert(self, rows: list[Row]) -> None:
        if len(rows) >= _COPY_FROM:
            with self.conn.cursor().copy(_COPY) as copy:
                copy.set_types(_COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
        else:
            # %b: the arrays go in binary, with nothing to escape (bench_postgres: 10.6 ms
            # an append of 100 events with text arrays, 4.6 ms so).
            self.conn.execute(_INSERT, [list(column) for column in zip(*rows, strict=True)])

    def _insert_unless_stored(self, rows: list[Row], head: int) -> bool:
        self.conn.execute("SAVEPOINT esctl_chunk")
        try:
            self._insert(rows)
        except errors.UniqueViolation as exc:
            self.conn.execute("ROLLBACK TO SAVEPOINT esctl_chunk")
            if not self._is_stored_id(exc):
                raise
            return False
        self.conn.execute("RELEASE SAVEPOINT esctl_chunk")
        return True

    def _is_stored_id(self, exc: Exception) -> bool:
        return isinstance(exc, errors.UniqueViolation) and exc.diag.constraint_name == _ID_INDEX

    def _stored(self, event_id: str) -> RecordedEvent | None:
        if not self._started:
            self._start([])
        row = self.conn.execute(SELECT_EVENT + " WHERE id = %s", (event_id,)).fetchone()
        return decode(row) if row else None
