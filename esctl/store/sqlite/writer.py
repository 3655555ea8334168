"""The write path: every append and import goes through `Writer.write`.

Inside one BEGIN IMMEDIATE transaction a chunk of events is checked against the
streams' versions in Python and inserted with one `executemany`; then the chunk's
streams rows and counters are updated, one statement per stream and per name, not
per event (the connection runs with the schema's triggers off, see
esctl.store.sqlite.triggers; where they stay on, they do this and the writer does not).

Generated ids (UUIDv7) are new by construction. A chunk with given ids is inserted
as it is: a stored id makes the insert fail, the rows it inserted are deleted again
(a savepoint undoes them where the triggers are on and refuse the DELETE), and the
chunk is written event by event instead, so that an idempotent duplicate is
recognised before its expected version is judged. So is a chunk that repeats an id,
or where an event with an id fails its version check.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter

import orjson

from esctl import codec
from esctl.errors import DuplicateEventId, InvalidInput, StoreBusy, WrongExpectedVersion
from esctl.events import (
    ANY,
    MAX_EVENT_BYTES,
    NewEvent,
    RecordedEvent,
    category_of,
    utc_now,
    validate,
    version_matches,
)
from esctl.ids import uuid7, uuid7s
from esctl.store.natural import sort_key
from esctl.store.sqlite.failures import check_stored_json, primary_code
from esctl.transaction import begin_immediate, rollback

# One column order for every row esctl reads or writes: the envelope's.
COLUMNS = "stream, version, position, type, data, metadata, id, recorded_at"
SELECT_EVENT = f"SELECT {COLUMNS} FROM events"
INSERT = f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
STREAM_VERSION = "SELECT coalesce(max(version), 0) FROM events WHERE stream = ?"
HEAD_POSITION = "SELECT coalesce(max(position), 0) FROM events"
_TRACKED_VERSION = "SELECT version FROM streams WHERE stream = ?"
_NEW_STREAM = (
    "INSERT INTO streams (stream, category, version, first_position, last_position, sort_key)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_GROWN_STREAM = "UPDATE streams SET version = ?, last_position = ? WHERE stream = ?"
# Streams that writers other than esctl created have no sort key yet (only Python
# computes it); the index finds them at once, and there are usually none.
_KEY_UNKEYED = "UPDATE streams SET sort_key = esctl_sort_key(stream) WHERE sort_key IS NULL"
_COUNT = (
    "INSERT INTO esctl_counts (kind, name, count) VALUES (?, ?, ?)"
    " ON CONFLICT DO UPDATE SET count = count + excluded.count"
)

Row = tuple[str, int, int, str, str, str, str, str]
# The events' indexes for readers; (stream, version) is one: the writer's versions
# come from the streams table.
_DEFERRABLE = ("events_stream_version", "events_type", "events_category")
_SORT_CACHE = -16384  # KiB: 16 MiB
_MAX_CACHED_STREAMS = 100_000


@dataclass(slots=True)
class Written:
    """What one `write` did, one outcome per input event in input order: the row
    inserted, or the stored event that the input repeated (an idempotent duplicate)."""

    outcomes: list[Row | RecordedEvent]
    rows: list[Row]
    duplicates: int = 0


class Writer:
    """Appends to one connection; the caller owns the transaction (`begin`/`commit`)."""

    def __init__(self, conn: sqlite3.Connection, *, tracks: bool) -> None:
        self.conn = conn
        self.tracks = tracks  # this writer maintains streams and esctl_counts
        self.head = 0
        self._versions: dict[str, int] = {}
        self._deferred: list[str] = []  # CREATE INDEX statements to run before COMMIT

    def begin(self) -> None:
        try:
            begin_immediate(self.conn)
        except sqlite3.OperationalError as exc:
            if primary_code(exc) not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
            timeout = self.conn.execute("PRAGMA busy_timeout").fetchone()[0] / 1000
            raise StoreBusy(
                f"the store is busy: another writer held it for {timeout:.0f} s (a long import?); try again"
            ) from None
        self.head = self.conn.execute(HEAD_POSITION).fetchone()[0]
        self._versions.clear()
        if self.tracks:
            self.conn.execute(_KEY_UNKEYED)

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def defer_indexes(self) -> None:
        """Drop the events' indexes that the write path does not read, to build them
        once, sorted, by `rebuild_deferred_indexes` before the commit: what a
        restore into an empty database does (pg_restore too). Inside the
        transaction, so no reader ever sees them missing; the unique index on ids
        stays, as it finds repeated ids across chunks."""
        self._deferred = [
            sql
            for (sql,) in self.conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
                f" AND name IN ({', '.join('?' * len(_DEFERRABLE))}) ORDER BY name",
                _DEFERRABLE,
            )
        ]
        for name in _DEFERRABLE:
            self.conn.execute(f"DROP INDEX IF EXISTS {name}")

    def rebuild_deferred_indexes(self) -> None:
        if not self._deferred:
            return
        # SQLite sorts for CREATE INDEX in a buffer as large as the page cache, on
        # top of the cache itself: a smaller cache meanwhile keeps the import's
        # memory where it is without deferral (the sort spills to temporary files).
        cache = self.conn.execute("PRAGMA cache_size").fetchone()[0]
        self.conn.execute(f"PRAGMA cache_size = {_SORT_CACHE}")
        try:
            for sql in self._deferred:
                self.conn.execute(sql)
        finally:
            self.conn.execute(f"PRAGMA cache_size = {cache}")
        self._deferred = []

    def rollback(self) -> None:
        rollback(self.conn)
        self._versions.clear()

    def version(self, stream: str) -> int:
        version = self._versions.get(stream)
        if version is None:
            row = self.conn.execute(_TRACKED_VERSION, (stream,)).fetchone()
            version = self._versions[stream] = row[0] if row else 0
        return version

    def write(self, events: Sequence[tuple[str, NewEvent]]) -> Written:
        """Insert `events` (each with a location prefix for error messages)."""
        if len(self._versions) > _MAX_CACHED_STREAMS:
            # Bound memory on imports of very many streams. Only between chunks: rows of
            # the chunk being built are not in the table yet, so their versions live
            # only in this cache.
            self._versions.clear()
        for where, event in events:
            validate(event, where)
        ids = [event.id for _, event in events if event.id is not None]
        if len(set(ids)) != len(ids):
            return self._careful(events)
        head = self.head
        rows = self._fast_rows(events, len(ids))
        if rows is None:
            return self._careful(events)
        if not ids:
            self._insert(rows)
            return Written(rows, rows)  # type: ignore[arg-type]
        # Undone by deleting what it inserted where esctl's triggers are off (no
        # savepoint to keep: a few per cent of an import), else by a savepoint.
        if not self.tracks:
            self.conn.execute("SAVEPOINT esctl_chunk")
        try:
            self.conn.executemany(INSERT, rows)
        except sqlite3.IntegrityError:
            # A stored id (the unique index, or the trigger where triggers are on);
            # anything else the careful path meets again and reports.
            if self.tracks:
                self.conn.execute("DELETE FROM events WHERE position > ?", (head,))
            else:
                self.conn.execute("ROLLBACK TO esctl_chunk")
                self.conn.execute("RELEASE esctl_chunk")
            self.head = head
            self._versions.clear()
            return self._careful(events)
        if self.tracks:
            self._track(rows)
        else:
            self.conn.execute("RELEASE esctl_chunk")
        return Written(rows, rows)  # type: ignore[arg-type]

    def _insert(self, rows: list[Row]) -> None:
        self.conn.executemany(INSERT, rows)
        if self.tracks:
            self._track(rows)

    def _track(self, rows: list[Row]) -> None:
        """Bring streams and esctl_counts up to date with `rows`, just inserted."""
        first: dict[str, Row] = {}
        last: dict[str, Row] = {}
        for row in rows:
            if row[0] not in first:
                first[row[0]] = row
            last[row[0]] = row
        new, grown = [], []
        counts: dict[tuple[str, str], int] = {}
        for stream, end in last.items():
            start = first[stream]
            category = category_of(stream)
            key = ("category", category)
            counts[key] = counts.get(key, 0) + end[1] - start[1] + 1
            if start[1] == 1:
                new.append((stream, category, end[1], start[2], end[2], sort_key(stream)))
            else:
                grown.append((end[1], end[2], stream))
        for event_type, n in Counter(map(itemgetter(3), rows)).items():
            counts["type", event_type] = n
        if new:
            self.conn.executemany(_NEW_STREAM, new)
            counts["streams", ""] = len(new)
        if grown:
            self.conn.executemany(_GROWN_STREAM, grown)
        self.conn.executemany(_COUNT, [(kind, name, n) for (kind, name), n in counts.items()])

    def _fast_rows(self, events: Sequence[tuple[str, NewEvent]], given: int) -> list[Row] | None:
        """Rows for a chunk with `given` ids, advancing head and versions; None when
        an event fails its version check in a chunk with ids (then the version cache
        is dropped, to be read again from the streams table, as after any undone
        chunk)."""
        rows: list[Row] = []
        append = rows.append
        new_id = iter(uuid7s(len(events) - given)).__next__  # for the events without one
        now = utc_now()
        position = self.head
        versions = self._versions
        for where, event in events:
            stream = event.stream
            current = versions.get(stream)
            if current is None:
                current = self.version(stream)
            expected = event.expected_version
            if expected is not ANY and not version_matches(expected, current):
                if given:
                    # This event, or one before it in the chunk, may be a stored
                    # duplicate (counted here as if new): the careful path judges it.
                    versions.clear()
                    return None
                raise WrongExpectedVersion(stream, expected, current, where)
            position += 1
            versions[stream] = current = current + 1
            append(_row(where, event, position, current, now, None if event.id else new_id()))
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
                        raise DuplicateEventId(event.id, stored.stream, stored.version, where)
                    written.outcomes.append(stored)
                    written.duplicates += 1
                    continue
            current = self.version(event.stream)
            if not version_matches(event.expected_version, current):
                raise WrongExpectedVersion(event.stream, event.expected_version, current, where)
            row = _row(where, event, self.head + 1, current + 1, now, None)
            self._insert([row])
            self.head += 1
            self._versions[event.stream] = current + 1
            written.rows.append(row)
            written.outcomes.append(row)
        return written

    def _stored(self, event_id: str) -> RecordedEvent | None:
        row = self.conn.execute(SELECT_EVENT + " WHERE id = ?", (event_id,)).fetchone()
        return decode(row) if row else None


_DUMPS_OPTION = orjson.OPT_NON_STR_KEYS


def _row(where: str, event: NewEvent, position: int, version: int, now: str, new_id: str | None) -> Row:
    # orjson.dumps directly (codec's default and option), not codec.dumps: this runs
    # once per event of an import.
    try:
        data = orjson.dumps(event.data, default=codec.default, option=_DUMPS_OPTION)
        metadata = (
            orjson.dumps(event.metadata, default=codec.default, option=_DUMPS_OPTION)
            if event.metadata
            else b"{}"
        )
    except TypeError as exc:  # e.g. an integer beyond 64 bits, or an object JSON cannot hold
        raise InvalidInput(f"{where}event data cannot be stored as JSON: {exc}") from None
    if len(data) + len(metadata) > MAX_EVENT_BYTES:
        raise InvalidInput(f"{where}event is larger than 16 MiB ({len(data) + len(metadata)} bytes)")
    return (
        event.stream,
        version,
        position,
        event.type,
        data.decode(),
        metadata.decode(),
        event.id or new_id or uuid7(),
        event.recorded_at or now,
    )


def decode(row: Row) -> RecordedEvent:
    """A RecordedEvent from a row (selected with SELECT_EVENT, or built for INSERT).
    A stored row whose data or metadata is not JSON raises StoreDamaged."""
    s, v, p, t, data, metadata, i, r = row
    try:
        return RecordedEvent(s, v, p, t, orjson.loads(data), orjson.loads(metadata), i, r)
    except (orjson.JSONDecodeError, TypeError):
        check_stored_json(f"event {p} ({s} v{v})", data=data, metadata=metadata)
        raise


def _canonical(value: object) -> bytes:
    # Type-strict: true is not 1, and 1.0 is not 1; key order does not matter.
    return codec.dumps(value, sort_keys=True)


def _same(stored: RecordedEvent, event: NewEvent) -> bool:
    return (
        stored.stream == event.stream
        and stored.type == event.type
        and _canonical(stored.data) == _canonical(orjson.loads(codec.dumps(event.data)))
        and _canonical(stored.metadata) == _canonical(orjson.loads(codec.dumps(event.metadata)))
    )
