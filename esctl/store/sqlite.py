"""EventStore: the SQLite append-only event store as a library."""

from __future__ import annotations

import contextlib
import functools
import heapq
import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from esctl.errors import InvalidInput, NotFound, StoreReadOnly
from esctl.events import ANY, ExpectedVersion, NewEvent, RecordedEvent, check_stream, parse_expected_version
from esctl.store import schema
from esctl.store.failures import classify, translate, translated
from esctl.store.writer import HEAD_POSITION, SELECT_EVENT, STREAM_VERSION, Writer, decode

T = TypeVar("T")

CHUNK = 5_000  # events per executemany inside an import
_MAX_STREAM_SET = 100_000
_SUMMARY_BATCH = 1_000  # streams looked up per query by `streams`


def _reading(method: Callable[..., T]) -> Callable[..., T]:
    """Environment failures (a damaged file, an I/O error) of a read, as esctl errors."""

    @functools.wraps(method)
    def read(self: EventStore, *args: Any, **kwargs: Any) -> T:
        with translated(self.path):
            return method(self, *args, **kwargs)

    return read


@dataclass(slots=True)
class ImportSummary:
    imported: int = 0
    duplicates: int = 0
    streams: int = 0
    first_position: int | None = None
    last_position: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "duplicates": self.duplicates,
            "streams": self.streams,
            "first_position": self.first_position,
            "last_position": self.last_position,
        }


@dataclass(slots=True)
class StreamSummary:
    stream: str
    category: str
    version: int
    first_recorded_at: str
    last_recorded_at: str
    last_position: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "category": self.category,
            "version": self.version,
            "first_recorded_at": self.first_recorded_at,
            "last_recorded_at": self.last_recorded_at,
            "last_position": self.last_position,
        }


@dataclass(slots=True)
class AppendResult:
    events: list[RecordedEvent] = field(default_factory=list)
    duplicates: int = 0


class EventStore:
    """An event store in one SQLite file.

    `EventStore.open(path)` opens an existing store; `create=True` creates it.
    """

    def __init__(
        self, path: str, conn: sqlite3.Connection, *, created: bool = False, read_only: str | None = None
    ) -> None:
        self.path = path
        self.conn = conn
        self.created = created  # this open created the store
        # Why the store cannot be written ('read-only file system', 'permission
        # denied', ...), or None. A read-only store can still be read.
        self.read_only = read_only

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = False) -> EventStore:
        """Open the store (StoreError, NotFound when that fails). A store that cannot
        be written (read-only media or file, a read-only directory) opens for
        reading, with `read_only` saying why; writing to it raises StoreReadOnly."""
        path = os.fspath(path)
        conn, created, read_only = schema.connect(path, create=create)
        return cls(path, conn, created=created, read_only=read_only)

    def _writable(self) -> None:
        if self.read_only is not None:
            raise StoreReadOnly(f"{self.read_only}: cannot write {self.path}")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing ------------------------------------------------------------------

    def append(
        self,
        stream: str,
        events: Iterable[NewEvent],
        expected_version: ExpectedVersion | str = ANY,
    ) -> AppendResult:
        """Append events to one stream atomically. `expected_version` (any, no-stream,
        exists or N) is checked before the first of them; each event's own
        `expected_version` is checked too."""
        check_stream(stream)
        expected = parse_expected_version(expected_version)
        batch = []
        for index, event in enumerate(events):
            if event.stream != stream:
                raise InvalidInput(f"event {index + 1} is for stream {event.stream!r}, not {stream!r}")
            own = parse_expected_version(event.expected_version)
            # A copy: the caller's objects stay as given.
            batch.append(
                ("", replace(event, expected_version=expected if index == 0 and expected is not ANY else own))
            )
        self._writable()
        writer = Writer(self.conn)
        try:
            writer.begin()
            written = writer.write(batch)
            writer.commit()
        except BaseException as exc:
            writer.rollback()
            error = translate(exc, self.path)
            if error is exc:
                raise
            raise error from None
        events_out = [o if isinstance(o, RecordedEvent) else decode(o) for o in written.outcomes]
        return AppendResult(events_out, written.duplicates)

    def import_events(
        self,
        events: Iterable[tuple[str, NewEvent]],
        *,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ImportSummary:
        """Import (location, event) pairs, e.g. from `esctl.ndjson.read_envelopes`.
        Atomic unless `batch_size` is given: then a commit follows every
        `batch_size` events, and a failure keeps the batches committed before it."""
        summary = ImportSummary()
        committed = ImportSummary()  # as of the last commit, for the error note
        last_where = ""
        # Streams touched, for the summary: a set while small; past _MAX_STREAM_SET the
        # position ranges written (merged while contiguous) are counted in SQL at the
        # end instead (~1 s per million events), so memory stays bounded.
        streams: set[str] | None = set()
        ranges: list[list[int]] = []
        writer = Writer(self.conn)
        chunk_size = min(CHUNK, batch_size) if batch_size else CHUNK
        in_batch = 0
        chunk: list[tuple[str, NewEvent]] = []

        def flush() -> None:
            nonlocal streams
            written = writer.write(chunk)
            summary.duplicates += written.duplicates
            if written.rows:
                summary.imported += len(written.rows)
                if summary.first_position is None:
                    summary.first_position = written.rows[0][2]
                summary.last_position = written.rows[-1][2]
                if streams is not None:
                    streams.update(row[0] for row in written.rows)
                    if len(streams) > _MAX_STREAM_SET:
                        streams = None
                first, last = written.rows[0][2], written.rows[-1][2]
                if ranges and ranges[-1][1] == first - 1:
                    ranges[-1][1] = last
                else:
                    ranges.append([first, last])
            if progress:
                progress(len(chunk))
            chunk.clear()

        self._writable()
        try:
            writer.begin()
            for item in events:
                chunk.append(item)
                in_batch += 1
                if len(chunk) >= chunk_size or (batch_size and in_batch >= batch_size):
                    flush()
                    if batch_size and in_batch >= batch_size:
                        writer.commit()
                        committed = replace(summary)
                        last_where = item[0]
                        writer.begin()
                        in_batch = 0
            if chunk:
                flush()
            writer.commit()
        except BaseException as exc:
            writer.rollback()
            error = translate(exc, self.path)
            if (
                batch_size
                and committed.imported + committed.duplicates
                and isinstance(error, (Exception, KeyboardInterrupt))
            ):
                upto = f" up to {last_where.rstrip(': ')}" if last_where else ""
                error.add_note(
                    f"the batches{upto} were committed ({committed.imported} events imported,"
                    f" {committed.duplicates} duplicates skipped); the failing batch was rolled back."
                    " Re-running the import skips lines with ids as duplicates; lines without ids"
                    " would be written twice, so resume after the committed lines instead"
                )
            if error is exc:
                raise
            raise error from None
        summary.streams = len(streams) if streams is not None else self._streams_in(ranges)
        return summary

    @_reading
    def _streams_in(self, ranges: list[list[int]]) -> int:
        """Distinct streams among the events at these position ranges."""
        if not ranges:
            return 0
        sql = (
            "SELECT count(DISTINCT e.stream) FROM json_each(?) AS r"
            " JOIN events AS e ON e.position BETWEEN r.value ->> 0 AND r.value ->> 1"
        )
        return self.conn.execute(sql, (json.dumps(ranges),)).fetchone()[0]

    # --- reading ------------------------------------------------------------------

    @_reading
    def head_position(self) -> int:
        return self.conn.execute(HEAD_POSITION).fetchone()[0]

    @_reading
    def stream_version(self, stream: str) -> int:
        return self.conn.execute(STREAM_VERSION, (stream,)).fetchone()[0]

    @_reading
    def read_stream(
        self,
        stream: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        raw: bool = False,
    ) -> Iterator[Any]:
        """Events of one stream in version order (or reversed). Raises NotFound for a
        stream with no events. With `raw`, yields undecoded rows (data as JSON text)."""
        check_stream(stream, allow_reserved=True)
        if self.stream_version(stream) == 0:
            raise NotFound(f"stream {stream!r} not found")
        sql = SELECT_EVENT + " WHERE stream = ? AND version >= ?"
        params: list[Any] = [stream, from_version]
        if to_version is not None:
            sql += " AND version <= ?"
            params.append(to_version)
        sql += " ORDER BY version DESC" if backwards else " ORDER BY version"
        return self._select(sql, params, limit, raw)

    @_reading
    def read_stream_data(
        self, stream: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Iterator[tuple[int, str, str]]:
        """(version, type, data as JSON text) of one stream's events in version order:
        the narrow read that replay uses when its handlers need nothing else; it costs
        about half of decoding whole rows. An empty or missing stream yields nothing."""
        sql = "SELECT version, type, data FROM events WHERE stream = ? AND version >= ?"
        params: list[Any] = [stream, from_version]
        if to_version is not None:
            sql += " AND version <= ?"
            params.append(to_version)
        return _rows(self.conn.execute(sql + " ORDER BY version", params), self.path)

    @_reading
    def read_all(
        self,
        *,
        from_position: int = 1,
        to_position: int | None = None,
        category: str | None = None,
        types: Iterable[str] = (),
        limit: int | None = None,
        raw: bool = False,
    ) -> Iterator[Any]:
        """Every event in position order, optionally filtered."""
        sql = SELECT_EVENT + " WHERE position >= ?"
        params: list[Any] = [from_position]
        if to_position is not None:
            sql += " AND position <= ?"
            params.append(to_position)
        if category is not None:
            sql += " AND category = ?"
            params.append(category)
        types = [types] if isinstance(types, str) else list(types)
        if types:
            sql += f" AND type IN ({', '.join('?' * len(types))})"
            params.extend(types)
        sql += " ORDER BY position"
        return self._select(sql, params, limit, raw)

    def _select(self, sql: str, params: list[Any], limit: int | None, raw: bool) -> Iterator[Any]:
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        cursor = self.conn.execute(sql, params)
        cursor.arraysize = 1000
        if raw:
            return _rows(cursor, self.path)
        return (decode(row) for row in _rows(cursor, self.path))

    @_reading
    def streams(self, *, category: str | None = None, limit: int | None = None) -> Iterator[StreamSummary]:
        """One summary per stream, in natural order of the names: the numbers in a name
        compare as numbers (account-2 before account-10), the rest as text. With
        `limit`, the first `limit` streams of that order.

        The order is computed in Python over every stream's name (heapq.nsmallest with
        a limit), then the summaries are looked up in batches in that order."""
        where = "WHERE category = ?" if category is not None else ""
        heads = self.conn.execute(
            f"SELECT stream, max(version) FROM events {where} GROUP BY stream",
            [category] if category is not None else [],
        )
        if limit is None:
            chosen = sorted(heads, key=_natural_head)
        else:
            chosen = heapq.nsmallest(limit, heads, key=_natural_head)
        return self._stream_summaries(chosen)

    def _stream_summaries(self, heads: list[tuple[str, int]]) -> Iterator[StreamSummary]:
        sql = """
            SELECT last.stream, last.category, last.version, first.recorded_at,
                   last.recorded_at, last.position
            FROM json_each(?) AS s
            JOIN events AS last ON last.stream = s.value ->> 0 AND last.version = s.value ->> 1
            JOIN events AS first ON first.stream = last.stream AND first.version = 1
            ORDER BY s.key
        """
        for start in range(0, len(heads), _SUMMARY_BATCH):
            batch = json.dumps(heads[start : start + _SUMMARY_BATCH])
            yield from (StreamSummary(*row) for row in _rows(self.conn.execute(sql, (batch,)), self.path))

    @_reading
    def info(self) -> dict[str, Any]:
        c = self.conn
        events, streams, head = c.execute(
            "SELECT count(*), count(DISTINCT stream), coalesce(max(position), 0) FROM events"
        ).fetchone()
        return {
            "path": os.path.abspath(self.path),
            "file_size": _file_size(self.path),
            "schema_version": schema.SCHEMA_VERSION,
            "events": events,
            "streams": streams,
            "last_position": head,
            "categories": dict(
                c.execute("SELECT category, count(*) FROM events GROUP BY category ORDER BY 2 DESC, 1")
            ),
            "types": dict(c.execute("SELECT type, count(*) FROM events GROUP BY type ORDER BY 2 DESC, 1")),
        }

    @_reading
    def stream_info(self, stream: str) -> dict[str, Any]:
        check_stream(stream, allow_reserved=True)
        version = self.stream_version(stream)
        if version == 0:
            raise NotFound(f"stream {stream!r} not found")
        # Straight to the two rows: read_stream would look the version up again each time.
        first, last = (
            decode(
                self.conn.execute(SELECT_EVENT + " WHERE stream = ? AND version = ?", (stream, v)).fetchone()
            )
            for v in (1, version)
        )
        types = dict(
            self.conn.execute(
                "SELECT type, count(*) FROM events WHERE stream = ? GROUP BY type ORDER BY 2 DESC, 1",
                (stream,),
            )
        )
        return {
            "stream": stream,
            "category": first.category,
            "version": version,
            "types": types,
            "first": first.to_dict(),
            "last": last.to_dict(),
        }


_NUMBER = re.compile(r"([0-9]+)")


def natural_key(name: str) -> tuple[tuple[str | int, ...], str]:
    """The natural sort key of a name: runs of digits compare as numbers
    ("account-2" < "account-10"); the name itself breaks ties ("a-01" vs "a-1")."""
    parts: list[str | int] = list(_NUMBER.split(name))
    parts[1::2] = [int(p) for p in parts[1::2]]
    return tuple(parts), name


def _natural_head(head: tuple[str, int]) -> tuple[tuple[str | int, ...], str]:
    return natural_key(head[0])


def _rows(cursor: sqlite3.Cursor, path: str) -> Iterator[tuple]:
    try:
        while batch := cursor.fetchmany():
            yield from batch
    except sqlite3.Error as exc:
        raise classify(exc, path) or exc from None
    finally:
        # A reader that stopped early (`| head`) may finalise us after the store closed.
        with contextlib.suppress(sqlite3.ProgrammingError):
            cursor.close()


def _file_size(path: str) -> int:
    # The WAL holds committed pages not yet checkpointed into the main file.
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


__all__ = ["AppendResult", "EventStore", "ImportSummary", "StreamSummary"]
