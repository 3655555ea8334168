"""The write path: every append and import goes through `Writer.write`.

Inside one BEGIN IMMEDIATE transaction a chunk of events is checked against the
streams' versions and inserted with one `executemany`. A chunk that meets anything
unusual (a given id that may be stored already, a version mismatch) is rolled back
to its savepoint and replayed event by event, so that an idempotent duplicate is
recognised before its expected version is judged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from esctl import codec
from esctl.errors import DuplicateEventId, InvalidInput, WrongExpectedVersion
from esctl.events import MAX_EVENT_BYTES, NewEvent, RecordedEvent, utc_now, version_matches
from esctl.ids import uuid7

INSERT = (
    "INSERT INTO events (position, stream, version, type, data, metadata, id, recorded_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
Row = tuple[int, str, int, str, str, str, str, str]


@dataclass(slots=True)
class Written:
    """What one `write` did, one outcome per input event in input order: the row
    inserted, or the stored event that the input repeated (an idempotent duplicate)."""

    outcomes: list[Row | RecordedEvent]
    rows: list[Row]
    duplicates: int = 0


class _NeedsCareful(Exception):
    """The fast path met something only the event-by-event path can judge."""


class Writer:
    """Appends to one connection; the caller owns the transaction (`begin`/`commit`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.head = 0
        self._versions: dict[str, int] = {}

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.head = self.conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
        self._versions.clear()

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self._versions.clear()

    def version(self, stream: str) -> int:
        version = self._versions.get(stream)
        if version is None:
            if len(self._versions) > 100_000:  # bound memory on imports of many streams
                self._versions.clear()
            version = self.conn.execute(
                "SELECT coalesce(max(version), 0) FROM events WHERE stream = ?", (stream,)
            ).fetchone()[0]
            self._versions[stream] = version
        return version

    def write(self, events: Sequence[tuple[str, NewEvent]]) -> Written:
        """Insert `events` (each with a location prefix for error messages)."""
        head, versions = self.head, dict(self._versions)
        self.conn.execute("SAVEPOINT chunk")
        try:
            rows = self._fast(events)
            written = Written(rows, rows)  # type: ignore[arg-type]
        except (_NeedsCareful, sqlite3.IntegrityError):
            self.conn.execute("ROLLBACK TO chunk")
            self.head, self._versions = head, versions
            written = self._careful(events)
        except BaseException:
            self.conn.execute("ROLLBACK TO chunk")
            self.head, self._versions = head, versions
            raise
        finally:
            self.conn.execute("RELEASE chunk")
        return written

    def _fast(self, events: Sequence[tuple[str, NewEvent]]) -> list[Row]:
        rows: list[Row] = []
        now = utc_now()
        position = self.head
        for where, event in events:
            current = self.version(event.stream)
            if not version_matches(event.expected_version, current):
                if event.id is not None:
                    raise _NeedsCareful  # it may be a stored duplicate
                raise WrongExpectedVersion(event.stream, event.expected_version, current)
            position += 1
            rows.append(self._row(where, event, position, current + 1, now))
            self._versions[event.stream] = current + 1
        self.conn.executemany(INSERT, rows)
        self.head = position
        return rows

    def _careful(self, events: Sequence[tuple[str, NewEvent]]) -> Written:
        written = Written([], [])
        now = utc_now()
        for where, event in events:
            if event.id is not None:
                stored = self._stored(event.id)
                if stored is not None:
                    if not _same(stored, event):
                        raise DuplicateEventId(event.id, stored.stream, stored.version)
                    written.outcomes.append(stored)
                    written.duplicates += 1
                    continue
            current = self.version(event.stream)
            if not version_matches(event.expected_version, current):
                raise WrongExpectedVersion(event.stream, event.expected_version, current)
            row = self._row(where, event, self.head + 1, current + 1, now)
            self.conn.execute(INSERT, row)
            self.head += 1
            self._versions[event.stream] = current + 1
            written.rows.append(row)
            written.outcomes.append(row)
        return written

    @staticmethod
    def _row(where: str, event: NewEvent, position: int, version: int, now: str) -> Row:
        data = codec.dumps(event.data)
        metadata = codec.dumps(event.metadata)
        if len(data) + len(metadata) > MAX_EVENT_BYTES:
            raise InvalidInput(f"{where}event is larger than 16 MiB ({len(data) + len(metadata)} bytes)")
        return (
            position,
            event.stream,
            version,
            event.type,
            data.decode(),
            metadata.decode(),
            event.id or uuid7(),
            event.recorded_at or now,
        )

    def _stored(self, event_id: str) -> RecordedEvent | None:
        row = self.conn.execute(SELECT_EVENT + " WHERE id = ?", (event_id,)).fetchone()
        return decode(row) if row else None


SELECT_EVENT = "SELECT stream, version, position, type, data, metadata, id, recorded_at FROM events"


def decode_row(row: Row) -> RecordedEvent:
    """A RecordedEvent from an inserted row (column order of INSERT)."""
    p, s, v, t, data, metadata, i, r = row
    return RecordedEvent(s, v, p, t, codec.loads(data), codec.loads(metadata), i, r)


def decode(row: tuple) -> RecordedEvent:
    """A RecordedEvent from a row selected with SELECT_EVENT."""
    s, v, p, t, data, metadata, i, r = row
    return RecordedEvent(s, v, p, t, codec.loads(data), codec.loads(metadata), i, r)


def _same(stored: RecordedEvent, event: NewEvent) -> bool:
    # Compare decoded JSON, so key order and number spelling do not matter.
    return (
        stored.stream == event.stream
        and stored.type == event.type
        and stored.data == codec.loads(codec.dumps(event.data))
        and stored.metadata == codec.loads(codec.dumps(event.metadata))
    )
