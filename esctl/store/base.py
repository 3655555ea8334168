"""What every backend's store shares: the write half of the interface (`append`,
`import_events`, `import_stored` over the backend's ChunkWriter, see
esctl.store.writing) and the look-ups that the same SQL answers on any backend."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any, Self, TypeVar

from esctl.errors import InvalidInput, NotFound
from esctl.events import ANY, ExpectedVersion, NewEvent, check_stream, parse_expected_version
from esctl.ids import CANONICAL_ID
from esctl.store.results import AppendResult, ImportSummary, stream_document
from esctl.store.rows import StoredRow
from esctl.store.writing import COLUMNS, decode

T = TypeVar("T")

CHUNK = 5_000  # events per insert inside an import
_MAX_STREAM_SET = 100_000
_LAST_CHAR = "\U0010ffff"  # above every character a name can hold


class Lookups:
    """The look-ups every backend answers with the same SQL, through its `_fetch`
    (the SQL's `?` in the backend's own parameter style)."""

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        raise NotImplementedError

    def first_version_of_type(self, stream: str, event_type: str) -> int | None:
        """The stream's lowest version of type `event_type`; None when it has none."""
        sql = "SELECT min(version) FROM events WHERE stream = ? AND type = ?"
        return self._fetch(sql, (stream, event_type))[0][0]

    def first_version_after(self, stream: str, instant: str) -> int | None:
        """The stream's lowest version recorded after `instant` (recorded_at form)."""
        sql = "SELECT min(version) FROM events WHERE stream = ? AND recorded_at > ?"
        return self._fetch(sql, (stream, instant))[0][0]

    def stream_names(self, prefix: str = "", limit: int | None = None) -> list[str]:
        """Stream names starting with `prefix`, in code-point order (for completion)."""
        sql = "SELECT stream FROM streams WHERE stream >= ? AND stream < ? ORDER BY stream"
        params: list[Any] = [prefix, prefix + _LAST_CHAR]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [name for (name,) in self._fetch(sql, params)]

    def stream_info(self, stream: str) -> dict[str, Any]:
        """What `info STREAM` shows: its first and last events and counts by type."""
        check_stream(stream, allow_reserved=True)
        found = self._fetch("SELECT first_position, last_position FROM streams WHERE stream = ?", (stream,))
        if not found:
            raise NotFound(f"stream {stream!r} not found")
        first, last = (
            decode(self._fetch(f"SELECT {COLUMNS} FROM events WHERE position = ?", (p,))[0]) for p in found[0]
        )
        types = dict(
            self._fetch(
                "SELECT type, count(*) FROM events WHERE stream = ? GROUP BY type ORDER BY 2 DESC, 1",
                (stream,),
            )
        )
        return stream_document(first, last, types)

    # --- checking ------------------------------------------------------------------------

    def check(self) -> list[str]:
        """What is wrong with the store, one line each (empty when nothing is): a
        position missing or below 1, a stream's versions out of step with its
        positions (a gap, a repeat, an order that differs), an id held twice, the
        streams table or the counters not what the events say, and the backend's own
        checks (its triggers, its files). One read transaction, so a writer going on
        meanwhile is not mistaken for damage. Reads every event, as an export does."""
        with self._one_read():
            return self._log_findings() + self._derived_findings() + self._backend_findings()

    def _log_findings(self) -> list[str]:
        findings: list[str] = []
        count, low, high = self._fetch(
            "SELECT count(*), coalesce(min(position), 1), coalesce(max(position), 0) FROM events", ()
        )[0]
        if count and (low != 1 or count != high):
            if low < 1:
                findings.append(f"position {low}: not a position (they start at 1)")
            first = 1  # the first position missing, if any
            if self._fetch("SELECT 1 FROM events WHERE position = 1", ()):
                first = self._fetch(
                    "SELECT min(e.position) + 1 FROM events AS e WHERE e.position >= 1 AND e.position < ?"
                    " AND NOT EXISTS (SELECT 1 FROM events AS n WHERE n.position = e.position + 1)",
                    (high,),
                )[0][0]
            if first is not None:
                findings.append(f"position {first}: missing ({count} events, the last at position {high})")
        for stream, position, version, previous in self._fetch(
            "SELECT stream, position, version, previous FROM (SELECT stream, position, version,"
            " lag(version, 1, 0) OVER (PARTITION BY stream ORDER BY position) AS previous FROM events) AS w"
            " WHERE version <> previous + 1 ORDER BY position LIMIT 5",
            (),
        ):
            after = f"follows version {previous}" if previous else "is the stream's first"
            findings.append(f"position {position}: {stream} version {version} {after}")
        for event_id, n in self._fetch(
            "SELECT id, count(*) FROM events GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT 5", ()
        ):
            findings.append(f"id {event_id}: held by {n} events")
        return findings

    def _derived_findings(self) -> list[str]:
        return self._differences(
            "streams row",
            "SELECT stream AS k1, category AS k2, max(version) AS k3, min(position) AS k4, max(position) AS k5"
            " FROM events GROUP BY stream, category",
            "SELECT stream AS k1, category AS k2, version AS k3, first_position AS k4, last_position AS k5"
            " FROM streams",
        ) + self._differences(
            "counter",
            "SELECT 'category' AS k1, category AS k2, count(*) AS k3 FROM events GROUP BY category"
            " UNION ALL SELECT 'type', type, count(*) FROM events GROUP BY type"
            " UNION ALL SELECT 'streams', '', (SELECT count(DISTINCT stream) FROM events)"
            " WHERE EXISTS (SELECT 1 FROM events)",
            # A zero count of streams is how an empty store starts; no other count is ever 0.
            "SELECT kind AS k1, name AS k2, count AS k3 FROM esctl_counts"
            " WHERE NOT (kind = 'streams' AND name = '' AND count = 0)",
        )

    def _differences(self, what: str, computed: str, kept: str) -> list[str]:
        """Rows the events imply that the table lacks or holds otherwise, and rows it
        holds that no event implies: the first five of each, found in SQL (EXCEPT),
        so memory stays flat however many streams there are."""
        out = []

        def minus(a: str, b: str) -> str:
            return f"SELECT * FROM (SELECT * FROM ({a}) AS a EXCEPT SELECT * FROM ({b}) AS b) AS d ORDER BY 1, 2 LIMIT 5"

        for row in self._fetch(minus(computed, kept), ()):
            same = self._fetch(f"SELECT * FROM ({kept}) AS k WHERE k1 = ? AND k2 = ?", row[:2])
            held = str(tuple(same[0])) if same else "nothing"
            out.append(f"{what} {row[0]} {row[1]}: the events say {tuple(row)}, the store keeps {held}")
        for row in self._fetch(minus(kept, computed), ()):
            if not self._fetch(f"SELECT 1 FROM ({computed}) AS c WHERE k1 = ? AND k2 = ?", row[:2]):
                out.append(f"{what} {row[0]} {row[1]}: kept, {tuple(row)}, but no event says so")
        return out

    def _one_read(self) -> contextlib.AbstractContextManager[None]:
        """A read transaction around several statements: one snapshot for them all."""
        raise NotImplementedError

    def _backend_findings(self) -> list[str]:
        return []


class Appending:
    """Mixed into a backend's store, which supplies `_writer`, `_translate` and
    `_streams_in`."""

    def _writer(self) -> Any:
        """A ChunkWriter with begin/commit/rollback, after checking the store is writable."""
        raise NotImplementedError

    def _translate(self, exc: BaseException) -> BaseException:
        """`exc` as the esctl error it stands for (an environment failure), else itself."""
        raise NotImplementedError

    def _streams_in(self, ranges: list[list[int]]) -> int:
        """Distinct streams among the events at these position ranges."""
        raise NotImplementedError

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
            wanted = (
                expected
                if index == 0 and expected is not ANY
                else parse_expected_version(event.expected_version)
            )
            if wanted is not event.expected_version or not _canonical_or_none(event.id):
                event = replace(event, expected_version=wanted)  # a copy: the caller's stays as given
            batch.append(("", event))
        written = self._in_one_transaction(lambda writer: writer.write(batch))
        return AppendResult(written.outcomes, written.duplicates)

    def import_stored(self, rows: Sequence[StoredRow]) -> None:
        """Write events as another store holds them, in one transaction: positions,
        versions, ids, timestamps and the JSON text itself kept as they are. They
        must continue this store's log (esctl.store.copying checks the prefix)."""
        self._in_one_transaction(lambda writer: writer.write_stored(rows))

    def _in_one_transaction(self, write: Callable[[Any], T]) -> T:
        """`write(writer)` in a transaction of its own, committed, or rolled back with
        the failure explained (an environment failure as the esctl error it is)."""
        writer = self._writer()
        try:
            writer.begin()
            done = write(writer)
            writer.commit()
        except BaseException as exc:
            writer.rollback()
            error = self._translate(exc)
            if error is exc:
                raise
            raise error from None
        return done

    def import_events(
        self,
        events: Iterable[tuple[str, NewEvent]],
        *,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ImportSummary:
        """Import (location, event) pairs, e.g. from `esctl.ndjson.read_envelopes`.
        Atomic unless `batch_size` is given: then a commit follows every
        `batch_size` events, and a failure keeps the batches committed before it.

        Python's cyclic garbage collector is paused meanwhile (as Mercurial does
        around its parsers): an import makes millions of short-lived objects without
        cycles, which reference counting frees, and the collector's passes over
        them cost about a tenth of an import."""
        with _collector_paused():
            return self._import(events, batch_size, progress)

    def _import(
        self,
        events: Iterable[tuple[str, NewEvent]],
        batch_size: int | None,
        progress: Callable[[int], None] | None,
    ) -> ImportSummary:
        summary = ImportSummary()
        committed = ImportSummary()  # as of the last commit, for the error note
        last_where = ""
        # Streams touched, for the summary: a set while small; past _MAX_STREAM_SET the
        # position ranges written (merged while contiguous) are counted in SQL at the
        # end instead (~1 s per million events), so memory stays bounded.
        streams: set[str] | None = set()
        ranges: list[list[int]] = []
        writer = self._writer()
        per_insert = writer.chunk or CHUNK
        chunk_size = min(per_insert, batch_size) if batch_size else per_insert
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

        try:
            writer.begin()
            if not batch_size:
                writer.defer_indexes()  # the writer judges: into an empty store, in one transaction
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
            writer.rebuild_deferred_indexes()
            writer.commit()
        except BaseException as exc:
            writer.rollback()
            error = self._translate(exc)
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


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _canonical_or_none(event_id: object) -> bool:
    """Whether writing an event with this id leaves the id as it is."""
    return event_id is None or (type(event_id) is str and CANONICAL_ID.fullmatch(event_id) is not None)


class Store(Appending, Lookups):
    """What a backend's store class derives from: the shared write path and
    look-ups, and `with store:` closing it."""

    def close(self, *, discard_if_new_and_empty: bool = False) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
