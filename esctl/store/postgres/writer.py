"""The PostgreSQL write path: the shared checks of esctl.store.writing, over one
connection in autocommit mode whose transactions the caller opens (`begin`).

`begin` locks the head row (esctl.store.postgres explains why); a chunk goes in as
one statement, so the events_added trigger runs once per chunk: INSERT from arrays
for an append, COPY for a large chunk of an import. A chunk with given ids runs
under a savepoint, rolled back when a stored id meets the unique index."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from psycopg import errors

from esctl.events import NewEvent, RecordedEvent
from esctl.store.writing import COLUMNS, ChunkWriter, Row, decode

SELECT_EVENT = f"SELECT {COLUMNS} FROM events"
_LOCK_HEAD = "SELECT position FROM esctl_head FOR UPDATE"
_INSERT = (
    f"INSERT INTO events ({COLUMNS})"
    " SELECT s, v, p, t, d::json, m::json, i, r FROM unnest("
    "%s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[]"
    ") AS u(s, v, p, t, d, m, i, r)"
)
_COPY = f"COPY events ({COLUMNS}) FROM STDIN"
_COPY_FROM = 1_000  # rows: from here COPY beats INSERT from arrays
_ID_INDEX = "events_id_key"


class Writer(ChunkWriter):
    def __init__(self, conn: Any) -> None:
        super().__init__()
        self.conn = conn
        self._in_transaction = False

    def begin(self) -> None:
        self.conn.execute("BEGIN")
        self._in_transaction = True
        self.head = self.conn.execute(_LOCK_HEAD).fetchone()[0]
        self._versions.clear()

    def commit(self) -> None:
        self.conn.execute("COMMIT")
        self._in_transaction = False

    def rollback(self) -> None:
        self._versions.clear()
        if self._in_transaction and not self.conn.closed:
            self._in_transaction = False
            with contextlib.suppress(Exception):  # a lost connection: the server rolled it back
                self.conn.execute("ROLLBACK")

    def _tracked_version(self, stream: str) -> int:
        row = self.conn.execute("SELECT version FROM streams WHERE stream = %s", (stream,)).fetchone()
        return row[0] if row else 0

    def _load_versions(self, events: Sequence[tuple[str, NewEvent]]) -> None:
        wanted = {event.stream for _, event in events} - self._versions.keys()
        if len(wanted) < 2:
            return  # `version` reads it when needed
        found = dict(
            self.conn.execute(
                "SELECT stream, version FROM streams WHERE stream = ANY(%s::text[])", (list(wanted),)
            ).fetchall()
        )
        for stream in wanted:
            self._versions[stream] = found.get(stream, 0)

    def _insert(self, rows: list[Row]) -> None:
        if len(rows) >= _COPY_FROM:
            with self.conn.cursor().copy(_COPY) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            self.conn.execute(_INSERT, [list(column) for column in zip(*rows, strict=True)])

    def _insert_unless_stored(self, rows: list[Row], head: int) -> bool:
        self.conn.execute("SAVEPOINT esctl_chunk")
        try:
            self._insert(rows)
        except errors.UniqueViolation as exc:
            self.conn.execute("ROLLBACK TO SAVEPOINT esctl_chunk")
            if exc.diag.constraint_name != _ID_INDEX:
                raise
            return False
        self.conn.execute("RELEASE SAVEPOINT esctl_chunk")
        return True

    def _stored(self, event_id: str) -> RecordedEvent | None:
        row = self.conn.execute(SELECT_EVENT + " WHERE id = %s", (event_id,)).fetchone()
        return decode(row) if row else None
