"""The write path every backend shares: checking a chunk of events against the
streams' versions, building its rows, and telling idempotent duplicates apart.

A backend's writer subclasses `ChunkWriter` and supplies the four storage steps
(`_tracked_version`, `_insert`, `_insert_unless_stored`, `_stored`); the caller
owns the transaction. Generated ids (UUIDv7) are new by construction. A chunk
with given ids is inserted as it is; when a stored id makes the insert fail, the
backend undoes what it inserted and the chunk is written event by event instead,
so that an idempotent duplicate is recognised before its expected version is
judged. So is a chunk that repeats an id, or where an event with an id fails its
version check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

from esctl import codec
from esctl.errors import DuplicateEventId, InvalidInput, StoreError, WrongExpectedVersion
from esctl.events import ANY, MAX_EVENT_BYTES, NewEvent, RecordedEvent, utc_now, validate, version_matches
from esctl.ids import uuid7, uuid7s
from esctl.store.rows import check_stored_json

# One column order for every row esctl reads or writes: the envelope's.
COLUMNS = "stream, version, position, type, data, metadata, id, recorded_at"
Row = tuple[str, int, int, str, str, str, str, str]
_MAX_CACHED_STREAMS = 100_000


@dataclass(slots=True)
class Written:
    """What one `write` did, one outcome per input event in input order: the row
    inserted, or the stored event that the input repeated (an idempotent duplicate)."""

    outcomes: list[Row | RecordedEvent]
    rows: list[Row]
    duplicates: int = 0


class ChunkWriter:
    """Writes chunks of (location, event) pairs inside the caller's transaction."""

    chunk = 0  # events per insert inside an import; 0: the shared default (esctl.store.base)

    def __init__(self) -> None:
        self.head = 0  # the last position written, set by the backend's `begin`
        self._versions: dict[str, int] = {}

    # --- what a backend supplies ------------------------------------------------------

    def _tracked_version(self, stream: str) -> int:
        """The stream's version as stored (0 for a new stream)."""
        raise NotImplementedError

    def _load_versions(self, streams: Iterable[str]) -> None:
        """Read the versions of the chunk's streams into the cache in one go, where
        the backend can; else `version` reads each when first needed."""

    def _insert(self, rows: list[Row]) -> None:
        """Insert rows whose ids are new."""
        raise NotImplementedError

    def _insert_unless_stored(self, rows: list[Row], head: int) -> bool:
        """Insert rows with given ids; False, with nothing inserted, when one is stored."""
        raise NotImplementedError

    def _stored(self, event_id: str) -> RecordedEvent | None:
        raise NotImplementedError

    def _is_stored_id(self, exc: Exception) -> bool:
        """Whether an insert failed because an id is stored already."""
        raise NotImplementedError

    def defer_indexes(self) -> None:
        """An import in one transaction is starting: into an empty store, a backend
        may drop the indexes that the write path does not read, for
        `rebuild_deferred_indexes` to build once, sorted."""

    def rebuild_deferred_indexes(self) -> None:
        pass

    # --- shared ---------------------------------------------------------------------------

    def version(self, stream: str) -> int:
        version = self._versions.get(stream)
        if version is None:
            version = self._versions[stream] = self._tracked_version(stream)
        return version

    def write(self, events: Sequence[tuple[str, NewEvent]]) -> Written:
        """Insert `events` (each with a location prefix for error messages)."""
        if len(self._versions) > _MAX_CACHED_STREAMS:
            # Bound memory on imports of very many streams. Only between chunks: rows of
            # the chunk being built are not stored yet, so their versions live only here.
            self._versions.clear()
        for where, event in events:
            validate(event, where)
        ids = [event.id for _, event in events if event.id is not None]
        if len(set(ids)) != len(ids):
            return self._careful(events)
        self._load_versions(event.stream for _, event in events)  # may start the transaction
        head = self.head
        rows = self._fast_rows(events, len(ids))
        if rows is None:
            return self._careful(events)
        if not ids:
            self._insert(rows)
        elif not self._insert_unless_stored(rows, head):
            self.head = head
            self._versions.clear()
            return self._careful(events)
        return Written(rows, rows)  # type: ignore[arg-type]

    def write_stored(self, rows: Sequence[Row]) -> None:
        """Insert events exactly as another store holds them (esctl.store.copying):
        each must continue the log and its stream, or StoreError says where not."""
        self._load_versions(row[0] for row in rows)  # may start the transaction
        versions = self._versions
        position = self.head
        for row in rows:
            stream, version = row[0], row[1]
            current = versions.get(stream)
            if current is None:
                current = self.version(stream)
            if row[2] != position + 1 or version != current + 1:
                raise StoreError(
                    f"event {row[2]} ({stream} v{version}) does not continue the destination"
                    f" (its log ends at {position}, {stream} at version {current})"
                )
            position += 1
            versions[stream] = version
        try:
            self._insert(list(rows))
        except Exception as exc:
            if not self._is_stored_id(exc):
                raise
            raise StoreError(
                f"events {rows[0][2]} to {rows[-1][2]}: the destination holds one of their ids"
                " already, with another event: it holds another log; nothing of them was written"
            ) from None
        self.head = position

    def _fast_rows(self, events: Sequence[tuple[str, NewEvent]], given: int) -> list[Row] | None:
        """Rows for a chunk with `given` ids, advancing head and versions; None when
        an event fails its version check in a chunk with ids (then the version cache
        is dropped, to be read again, as after any undone chunk)."""
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
    """A RecordedEvent from a row (as read in COLUMNS order, or built for INSERT).
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
