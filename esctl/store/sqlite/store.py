"""EventStore: the SQLite append-only event store as a library."""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from esctl.errors import NotFound, StoreOutdated, StoreReadOnly
from esctl.events import check_stream
from esctl.store.base import Store
from esctl.store.natural import natural_key
from esctl.store.results import (
    COUNTS,
    AppendResult,
    ImportSummary,
    StreamSummary,
    info_document,
)
from esctl.store.rows import StoredRow
from esctl.store.sqlite import compat, migrations, schema
from esctl.store.sqlite.failures import classify, translate, translated
from esctl.store.sqlite.snapshots import Snapshots
from esctl.store.sqlite.triggers import disable_triggers
from esctl.store.sqlite.writer import HEAD_POSITION, SELECT_EVENT, STREAM_VERSION, Writer
from esctl.store.writing import decode
from esctl.transaction import begin_immediate, rollback

if TYPE_CHECKING:
    from esctl.store.sqlite.readmodels import SQLiteReadModels

T = TypeVar("T")

_POLL_SECONDS = 0.005


def _reading(method: Callable[..., T]) -> Callable[..., T]:
    """Environment failures (a damaged file, an I/O error) of a read, as esctl errors."""

    @functools.wraps(method)
    def read(self: EventStore, *args: Any, **kwargs: Any) -> T:
        with translated(self.path):
            return method(self, *args, **kwargs)

    return read


class EventStore(Store):
    """An event store in one SQLite file.

    `EventStore.open(path)` opens an existing store; `create=True` creates it.
    """

    def __init__(
        self,
        path: str,
        conn: sqlite3.Connection,
        *,
        created: bool = False,
        read_only: str | None = None,
        schema_version: int | None = None,
        triggers_off: bool = False,
    ) -> None:
        """Usually made by `open`; given a connection of your own, the schema's
        triggers (on, unless `triggers_off`) maintain the derived tables."""
        self.path = path
        self.conn = conn
        self.created = created  # this open created the store
        # Why the store cannot be written ('read-only file system', 'permission
        # denied', ...), or None. A read-only store can still be read.
        self.read_only = read_only
        if schema_version is None:
            schema_version = conn.execute("PRAGMA user_version").fetchone()[0]
            if schema_version < schema.SCHEMA_VERSION:
                compat.install(conn)
        # Below schema.SCHEMA_VERSION the store reads normally; `migrate` upgrades it.
        self.schema_version = schema_version
        self._triggers_off = triggers_off
        self._own_connection = False  # opened by `open`: its triggers are esctl's to turn off
        self.snapshots = Snapshots(conn)  # aggregates' states at versions, beside the events

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = False) -> EventStore:
        """Open the store (StoreError, NotFound when that fails). A store that cannot
        be written (read-only media or file, a read-only directory) opens for
        reading, with `read_only` saying why; writing to it raises StoreReadOnly."""
        path = os.fspath(path)
        c = schema.connect(path, create=create)
        store = cls(
            path,
            c.conn,
            created=c.created,
            read_only=c.read_only,
            schema_version=c.version,
            triggers_off=c.triggers_off,
        )
        store._own_connection = True
        return store

    @property
    def location(self) -> str:
        """How messages name the store: its path as given."""
        return self.path

    @property
    def outdated(self) -> bool:
        """The store has an older schema: it reads; `migrate` upgrades it."""
        return self.schema_version < schema.SCHEMA_VERSION

    def _writable(self) -> None:
        if self.read_only is not None:
            raise StoreReadOnly(f"{self.read_only}: cannot write {self.path}")
        if self.outdated:
            raise StoreOutdated(
                f"{self.path} has schema {self.schema_version}, from an earlier esctl:"
                f" run 'esctl migrate' to upgrade it (reading works meanwhile)"
            )

    def _writer(self) -> Writer:
        self._writable()
        return Writer(self.conn, tracks=self._triggers_off)

    def _translate(self, exc: BaseException) -> BaseException:
        return translate(exc, self.path)

    @contextlib.contextmanager
    def _one_read(self) -> Iterator[None]:
        self.conn.execute("BEGIN")  # deferred: a read transaction, one snapshot, no lock taken
        try:
            yield
        finally:
            rollback(self.conn)

    def _backend_findings(self) -> list[str]:
        """SQLite's own check of the file, and the schema's triggers there as the
        schema defines them."""
        findings = [f"the file: {line}" for (line,) in self._fetch("PRAGMA quick_check", ()) if line != "ok"]
        present = dict(self._fetch("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'", ()))
        for name, sql in schema.triggers(self.schema_version).items():
            if name not in present:
                findings.append(f"trigger {name}: missing")
            elif " ".join(present[name].split()) != sql:
                findings.append(f"trigger {name}: not as the schema defines it")
        return findings

    @_reading
    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    def read_models(self, *, create: bool) -> SQLiteReadModels | None:
        from esctl.store.sqlite.readmodels import SQLiteReadModels

        try:
            return SQLiteReadModels.open(self.path, create=create)
        except NotFound:
            return None

    def close(self, *, discard_if_new_and_empty: bool = False) -> None:
        """Close the connection. With `discard_if_new_and_empty`, a store that this
        open created and that holds no event is removed with its -wal and -shm (a
        refused first write leaves no empty store behind)."""
        discard = discard_if_new_and_empty and self.created and self._is_empty()
        self.conn.close()
        if discard:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path + suffix)

    def _is_empty(self) -> bool:
        try:
            return self.head_position() == 0
        except Exception:  # a damaged new file: leave it for the user to see
            return False

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

    # --- upgrading ----------------------------------------------------------------

    def backup_path(self) -> str:
        """Where `migrate` copies the store before upgrading it."""
        return f"{self.path}.schema{self.schema_version}.bak"

    def migrate(self, *, backup: bool = True) -> dict[str, Any]:
        """Upgrade the store to this esctl's schema in one transaction, first copying
        it to `backup_path()` unless `backup` is false. A store already at the
        schema is left alone. Returns what was done."""
        started = time.monotonic()
        doc: dict[str, Any] = {
            "path": os.path.abspath(self.path),
            "from_schema": self.schema_version,
            "to_schema": schema.SCHEMA_VERSION,
            "steps": [],
            "backup": None,
        }
        if self.schema_version >= schema.SCHEMA_VERSION:
            return self._migrated(doc, [], started)
        if self.read_only is not None:
            raise StoreReadOnly(f"{self.read_only}: cannot upgrade {self.path}")
        destination = self.backup_path() if backup else None
        conn = self.conn
        try:
            with translated(self.path):
                begin_immediate(conn)
                # Another process may have upgraded it since this one opened it.
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if destination is not None and version < schema.SCHEMA_VERSION:
                    from esctl.store.sqlite.backup import copy_store, holds_the_same_log

                    # A copy left by an upgrade that was interrupted is kept, not redone.
                    if not holds_the_same_log(destination, self.path):
                        copy_store(self.path, destination)  # as of now: we hold the write lock
                    doc["backup"] = os.path.abspath(destination)
                compat.remove(conn)
                steps = migrations.upgrade(conn, version)
                conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            if conn.execute("PRAGMA user_version").fetchone()[0] < schema.SCHEMA_VERSION:
                compat.install(conn)
            raise
        self.schema_version = schema.SCHEMA_VERSION
        if self._own_connection:
            self._triggers_off = disable_triggers(conn, self.path)
        doc["from_schema"] = version
        return self._migrated(doc, steps, started)

    def _migrated(self, doc: dict[str, Any], steps: list[migrations.Step], started: float) -> dict[str, Any]:
        info = self.info()
        return doc | {
            "steps": [step.to_dict() for step in steps],
            "events": info["events"],
            "streams": info["streams"],
            "seconds": round(time.monotonic() - started, 3),
        }

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

    def change_token(self) -> int:
        """A number that changes whenever another connection commits to the store
        (SQLite's data_version): what `--follow` waits on."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def wait_for_change(self, token: int, timeout: float) -> int:
        """Wait until the change token differs from `token`, or `timeout` seconds;
        the new token (`token` itself at the timeout). SQLite has no notification
        across processes: data_version is read every few milliseconds, a read of
        shared memory that costs microseconds."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.change_token()
            left = deadline - time.monotonic()
            if current != token or left <= 0:
                return current
            time.sleep(min(_POLL_SECONDS, left))

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
        """Every event in position order, optionally filtered.

        A filter reads the index on what it names. With types, each type is read
        from its own index range and the ranges are merged by position, so a read
        with a limit stops after `limit` events whichever types are rare; with a
        category too, the counters say which of the two indexes holds fewer events."""
        sql = SELECT_EVENT + " WHERE position >= ?"
        params: list[Any] = [from_position]
        if to_position is not None:
            sql += " AND position <= ?"
            params.append(to_position)
        types = sorted({types} if isinstance(types, str) else set(types))
        # Read by type unless the category holds fewer events (or there is no index).
        by_type = bool(types) and not self.outdated
        if by_type and category is not None:
            by_type = self._types_are_fewer(types, category)
        if category is not None:
            sql += " AND +category = ?" if by_type else " AND category = ?"  # + : not its index
            params.append(category)
        if types and not by_type:
            sql += f" AND +type IN ({', '.join('?' * len(types))})"
            params.extend(types)
        if not by_type or len(types) == 1:
            if by_type:
                sql += " AND type = ?"
                params.append(types[0])
            return self._select(sql + " ORDER BY position", params, limit, raw)
        if to_position is None:
            # Separate statements read separate snapshots: bound them all by the head
            # as of now, so that no commit in between shows one type's later event
            # without another's earlier one.
            sql += " AND position <= ?"
            params.append(self.head_position())
        sql += " AND type = ? ORDER BY position" + (" LIMIT ?" if limit is not None else "")
        ranges = []
        for event_type in types:
            cursor = self.conn.execute(sql, [*params, event_type] + ([limit] if limit is not None else []))
            cursor.arraysize = 1000
            ranges.append(_rows(cursor, self.path))
        rows: Iterator[tuple] = heapq.merge(*ranges, key=_position)
        if limit is not None and limit >= 0:  # SQLite's LIMIT -1: no limit
            rows = itertools.islice(rows, limit)
        return map(StoredRow._make, rows) if raw else (decode(row) for row in rows)

    def _types_are_fewer(self, types: list[str], category: str) -> bool:
        """Whether the events of these types are fewer than those of the category."""
        of_types, of_category = self.conn.execute(
            "SELECT (SELECT sum(count) FROM esctl_counts"
            f"         WHERE kind = 'type' AND name IN ({', '.join('?' * len(types))})),"
            " (SELECT count FROM esctl_counts WHERE kind = 'category' AND name = ?)",
            [*types, category],
        ).fetchone()
        return (of_types or 0) < (of_category or 0)

    def _select(self, sql: str, params: list[Any], limit: int | None, raw: bool) -> Iterator[Any]:
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        cursor = self.conn.execute(sql, params)
        cursor.arraysize = 1000
        if raw:
            return _stored_rows(cursor, self.path)
        return (decode(row) for row in _rows(cursor, self.path))

    @_reading
    def streams(self, *, category: str | None = None, limit: int | None = None) -> Iterator[StreamSummary]:
        """One summary per stream, in natural order of the names: the numbers in a name
        compare as numbers (account-2 before account-10), the rest as text. With
        `limit`, the first `limit` streams of that order.

        The streams table keeps each name's natural sort key under an index, so this
        reads the streams it returns. Streams first written around esctl have no key
        yet; they are sorted here and merged in."""
        where = "WHERE s.category = ?" if category is not None else "WHERE true"
        params: list[Any] = [category] if category is not None else []
        keyed = self.conn.execute(
            f"{_SUMMARY} {where} AND s.sort_key IS NOT NULL ORDER BY s.sort_key"
            + (" LIMIT ?" if limit is not None else ""),
            params + ([limit] if limit is not None else []),
        )
        unkeyed = sorted(
            self.conn.execute(f"{_SUMMARY} {where} AND s.sort_key IS NULL", params),
            key=_natural_summary,
        )
        rows = heapq.merge(_rows(keyed, self.path), unkeyed, key=_natural_summary)
        if limit is not None and limit >= 0:
            rows = itertools.islice(rows, limit)
        return (StreamSummary(*row) for row in rows)

    @_reading
    def info(self) -> dict[str, Any]:
        return info_document(
            os.path.abspath(self.path),
            _file_size(self.path),
            self.schema_version,
            self.conn.execute(COUNTS),
            self.head_position(),
        )


# A stream's summary: its streams row, and the two events it points to.
_SUMMARY = """
    SELECT s.stream, s.category, s.version, f.recorded_at, l.recorded_at, s.last_position
    FROM streams AS s
    JOIN events AS f ON f.position = s.first_position
    JOIN events AS l ON l.position = s.last_position
"""


def _position(row: tuple) -> int:
    return row[2]


def _natural_summary(row: tuple) -> tuple[tuple[object, ...], str]:
    return natural_key(str(row[0]))  # str(): a foreign writer may have stored bytes


def _stored_rows(cursor: sqlite3.Cursor, path: str) -> Iterator[StoredRow]:
    make = StoredRow._make
    for batch in _batches(cursor, path):
        yield from map(make, batch)


def _rows(cursor: sqlite3.Cursor, path: str) -> Iterator[tuple]:
    for batch in _batches(cursor, path):
        yield from batch


def _batches(cursor: sqlite3.Cursor, path: str) -> Iterator[list[tuple]]:
    try:
        while batch := cursor.fetchmany():
            yield batch
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
