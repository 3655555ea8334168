"""The SQLite write path: every append and import goes through `Writer.write`
(the shared checks in esctl.store.writing).

Inside one BEGIN IMMEDIATE transaction a chunk of events is checked against the
streams' versions in Python and inserted with one `executemany`; then the chunk's
streams rows and counters are updated, one statement per stream and per name, not
per event (the connection runs with the schema's triggers off, see
esctl.store.sqlite.triggers; where they stay on, they do this and the writer does not).

A chunk that meets a stored id is undone by deleting the rows it inserted (a
savepoint undoes them where the triggers are on and refuse the DELETE).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from operator import itemgetter

from esctl.errors import StoreBusy
from esctl.events import RecordedEvent, category_of
from esctl.store.natural import sort_key
from esctl.store.sqlite.failures import primary_code
from esctl.store.writing import COLUMNS, ChunkWriter, Row, decode
from esctl.transaction import begin_immediate, rollback

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

# The events' indexes for readers; (stream, version) is one: the writer's versions
# come from the streams table.
_DEFERRABLE = ("events_stream_version", "events_type", "events_category")
_SORT_CACHE = -16384  # KiB: 16 MiB


class Writer(ChunkWriter):
    """Appends to one connection; the caller owns the transaction (`begin`/`commit`)."""

    def __init__(self, conn: sqlite3.Connection, *, tracks: bool) -> None:
        super().__init__()
        self.conn = conn
        self.tracks = tracks  # this writer maintains streams and esctl_counts
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
        stays, as it finds repeated ids across chunks. Not where triggers are on:
        theirs read (stream, version) for every row."""
        if not self.tracks or self.head != 0:
            return
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

    def _tracked_version(self, stream: str) -> int:
        row = self.conn.execute(_TRACKED_VERSION, (stream,)).fetchone()
        return row[0] if row else 0

    def _insert(self, rows: list[Row]) -> None:
        self.conn.executemany(INSERT, rows)
        if self.tracks:
            self._track(rows)

    def _insert_unless_stored(self, rows: list[Row], head: int) -> bool:
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
            return False
        if self.tracks:
            self._track(rows)
        else:
            self.conn.execute("RELEASE esctl_chunk")
        return True

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

    def _is_stored_id(self, exc: Exception) -> bool:
        # Rows whose positions and versions were checked: the id is the unique
        # constraint left to fail.
        return isinstance(exc, sqlite3.IntegrityError)

    def _stored(self, event_id: str) -> RecordedEvent | None:
        row = self.conn.execute(SELECT_EVENT + " WHERE id = ?", (event_id,)).fetchone()
        return decode(row) if row else None
