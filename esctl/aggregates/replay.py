"""Replay: folding a stream's stored events into an aggregate's state.

Events are streamed from the store, never loaded all at once: whole rows through
`read_stream(raw=True)` when a handler needs the envelope or an upcaster applies,
else `read_stream_data`, just (version, type, data). The per-event cost is kept near a bare loop: the handler is one dict lookup
on the type and is called with freshly decoded data; everything unusual (an
upcaster, a handler that wants the whole event, an unknown type) leaves the fast
path for `_slow`."""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from esctl.aggregates import statecodec
from esctl.aggregates.changes import diff
from esctl.aggregates.default_fold import DefaultFold
from esctl.aggregates.definition import Aggregate, Handler, spec_of
from esctl.aggregates.errors import ModelError, UnknownEventType
from esctl.aggregates.plain import to_plain
from esctl.aggregates.snapshots import Snapshot, Snapshots
from esctl.aggregates.targets import check_version, resolve_target, stream_head
from esctl.aggregates.upcasting import Upcasters
from esctl.errors import EsctlError
from esctl.events import RecordedEvent
from esctl.fingerprint import fingerprint
from esctl.store import EventStore

Row = tuple[str, int, int, str, str, str, str, str]  # read_stream(raw=True)
SNAPSHOT_FORMAT = "esctl-snapshot-1"  # part of the fingerprint: bump when the snapshot encoding changes


@dataclass(slots=True)
class Replayed:
    """A stream's state at a version."""

    stream: str
    version: int
    position: int | None
    recorded_at: str | None
    state: Any
    aggregate: str
    from_snapshot: int | None = None  # the snapshot version replay started from
    applied: int = 0  # events folded (after the snapshot)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "version": self.version,
            "position": self.position,
            "state": to_plain(self.state),
        }


@dataclass(slots=True)
class Step:
    """One event of a step-through: the event (as upcast) and what it changed."""

    event: RecordedEvent
    changes: list[dict[str, Any]]
    state: Any  # plain
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        e = self.event
        return {
            "version": e.version,
            "position": e.position,
            "type": e.type,
            "changes": self.changes,
            "state": self.state,
        }


@dataclass(slots=True)
class Skipped:
    """Events of a type the aggregate has no handler for (without --strict)."""

    count: int
    first_version: int


class Folder:
    """How one aggregate folds rows: compiled once, used for every event."""

    def __init__(self, aggregate: type[Aggregate], upcasters: Upcasters, strict: bool = False) -> None:
        self.spec = spec = spec_of(aggregate)
        self.upcasters = upcasters
        self.strict = strict
        self.skipped: dict[str, Skipped] = {}
        upcast_types = upcasters.types
        # type -> fn(state, data) on the fast path; None sends the type to _slow.
        fast: dict[str, Any] = {
            t: None if (h.takes_extra or t in upcast_types) else h.fn for t, h in spec.evolvers.items()
        }
        for t in upcast_types:
            fast.setdefault(t, None)
        fallback = spec.fallback
        self._fast = fast
        self._fast_default = fallback.fn if fallback and not fallback.takes_extra else None
        # True when every event can go the fast path (or is skipped): no upcaster
        # and no handler that wants the whole envelope.
        self.narrow = all(fn is not None for fn in fast.values()) and not (fallback and fallback.takes_extra)

    def fold_narrow(
        self, state: Any, rows: Iterable[tuple[int, str, str]], stream: str
    ) -> tuple[Any, int | None]:
        """Fold (version, type, data) rows; only for a `narrow` folder. Returns the
        new state and the last version folded."""
        get = self._fast.get
        default = self._fast_default
        loads = orjson.loads
        version = event_type = None
        try:
            for version, event_type, data in rows:
                fn = get(event_type, default)
                if fn is None:
                    self._unknown(stream, version, event_type)
                    continue
                state = fn(state, loads(data))
                if state is None:
                    raise self._returned_none((stream, version, 0, event_type))
        except EsctlError:
            raise
        except Exception as exc:
            raise self._failure(exc, (stream, version, 0, event_type)) from exc
        return state, version

    def fold(self, state: Any, rows: Iterable[Row]) -> tuple[Any, Row | None]:
        """Fold rows into `state`; returns the new state and the last row."""
        get = self._fast.get
        default = self._fast_default
        loads = orjson.loads
        slow = self._slow
        row = None
        try:
            for row in rows:
                fn = get(row[3], default)
                state = fn(state, loads(row[4])) if fn is not None else slow(state, row)
                if state is None:
                    raise self._returned_none(row)
        except EsctlError:  # already explained (strict mode, upcasters)
            raise
        except Exception as exc:
            raise self._failure(exc, row) from exc
        return state, row

    def apply_event(self, state: Any, event: RecordedEvent) -> tuple[Any, bool]:
        """One decoded, upcast event: (new state, whether it was skipped)."""
        handler = self.spec.handler_for(event.type)
        if handler is None:
            self._unknown(event.stream, event.version, event.type)
            return state, True
        try:
            new = (
                handler.fn(state, event.data, event) if handler.takes_extra else handler.fn(state, event.data)
            )
        except Exception as exc:
            raise self._failure(exc, (event.stream, event.version, 0, event.type)) from exc
        if new is None:
            raise self._returned_none((event.stream, event.version, 0, event.type))
        return new, False

    def _slow(self, state: Any, row: Row) -> Any:
        stream, version, position, event_type, data_text, metadata_text, event_id, recorded_at = row
        handler = self.spec.handler_for(event_type)
        if handler is None:
            self._unknown(stream, version, event_type)
            return state
        data = orjson.loads(data_text)
        metadata = None
        if event_type in self.upcasters.types:
            data, metadata = self.upcasters.upcast(
                event_type, data, orjson.loads(metadata_text), f"{stream} v{version}: "
            )
        if not handler.takes_extra:
            return handler.fn(state, data)
        if metadata is None:
            metadata = orjson.loads(metadata_text)
        event = RecordedEvent(stream, version, position, event_type, data, metadata, event_id, recorded_at)
        return handler.fn(state, data, event)

    def _unknown(self, stream: str, version: int, event_type: str) -> None:
        if self.strict:
            raise UnknownEventType(self.spec.name, stream, version, event_type)
        seen = self.skipped.get(event_type)
        if seen is None:
            self.skipped[event_type] = Skipped(1, version)
        else:
            seen.count += 1

    def _handler_name(self, event_type: str) -> str:
        handler: Handler | None = self.spec.handler_for(event_type)
        return handler.name if handler else self.spec.name

    def _returned_none(self, row: Any) -> ModelError:
        return ModelError(
            f"{self._handler_name(row[3])} returned None for {row[0]} v{row[1]} ({row[3]}):"
            " an evolve handler returns the new state"
        )

    def _failure(self, exc: Exception, row: Any) -> ModelError:
        where = ""
        frames = traceback.extract_tb(exc.__traceback__)
        if len(frames) > 1:  # the innermost frame below the fold loop: the user's line
            where = f" ({frames[-1].filename}, line {frames[-1].lineno})"
        if row is None:
            return ModelError(f"{self.spec.name} failed: {type(exc).__name__}: {exc}{where}")
        return ModelError(
            f"{self._handler_name(row[3])} raised {type(exc).__name__}: {exc}{where}"
            f" at {row[0]} v{row[1]} ({row[3]})"
        )


class Replayer:
    """Replays streams of one store through one aggregate (the default fold if None)."""

    def __init__(
        self,
        store: EventStore,
        aggregate: type[Aggregate] | None = None,
        *,
        upcasters: Upcasters | None = None,
        strict: bool = False,
        snapshots: bool = True,
    ) -> None:
        self.store = store
        self.aggregate = aggregate or DefaultFold
        self.upcasters = upcasters or Upcasters()
        self.folder = Folder(self.aggregate, self.upcasters, strict)
        self.spec = self.folder.spec
        self.use_snapshots = snapshots
        self.snapshots = Snapshots(store.conn)
        self.notes: list[str] = []  # for the user: snapshots ignored, auto-snapshot failures
        self._fingerprint: str | None = None

    @property
    def name(self) -> str:
        return "the default fold" if self.aggregate is DefaultFold else self.spec.name

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            roots = [self.aggregate, *self.upcasters.functions(self._types_handled())]
            self._fingerprint = fingerprint(roots, [SNAPSHOT_FORMAT])
        return self._fingerprint

    @property
    def skipped(self) -> dict[str, Skipped]:
        return self.folder.skipped

    def _types_handled(self) -> Iterable[str] | None:
        # A wildcard handler sees every type, so every upcaster matters to it.
        return None if self.spec.fallback else self.spec.evolvers.keys()

    # --- whole-state replay ---------------------------------------------------------

    def target(
        self,
        stream: str,
        *,
        to_version: int | None = None,
        as_of: str | None = None,
        until_type: str | None = None,
    ) -> int:
        return resolve_target(self.store, stream, to_version=to_version, as_of=as_of, until_type=until_type)

    def replay(self, stream: str, target: int | None = None) -> Replayed:
        """The state at version `target` (default: the head), from the newest valid
        snapshot at or below it when snapshots are on."""
        head = stream_head(self.store, stream)
        target = head if target is None else check_version(stream, target, head)
        self.folder.skipped.clear()
        state, start = self._start(stream, target)
        result = Replayed(stream, start, None, None, state, self.name, start or None)
        if target > start:
            self.continue_to(result, target)
        elif target > 0:
            self._locate(result)
        self.maybe_snapshot(result)
        return result

    def continue_to(self, replayed: Replayed, target: int) -> Replayed:
        """Fold the events after `replayed` up to `target` into its state (in place)."""
        if target <= replayed.version:
            return replayed
        stream, start = replayed.stream, replayed.version
        if self.folder.narrow:
            # No handler needs more than type and data: read only those (and the
            # version), half the cost of decoding whole rows.
            rows = self.store.read_stream_data(stream, from_version=start + 1, to_version=target)
            replayed.state, last_version = self.folder.fold_narrow(replayed.state, rows, stream)
            if last_version is not None:
                replayed.version = last_version
                self._locate(replayed)
        else:
            rows = self.store.read_stream(stream, from_version=start + 1, to_version=target, raw=True)
            replayed.state, last = self.folder.fold(replayed.state, rows)
            if last is not None:
                replayed.version, replayed.position, replayed.recorded_at = last[1], last[2], last[7]
        replayed.applied += replayed.version - start
        return replayed

    def _start(self, stream: str, target: int) -> tuple[Any, int]:
        if self.use_snapshots and target > 0:
            snapshot = self.snapshots.latest(stream, self.fingerprint, target)
            if snapshot is not None:
                try:
                    return statecodec.loads(snapshot.state), snapshot.version
                except Exception as exc:
                    self.notes.append(
                        f"snapshot of {stream} at v{snapshot.version} could not be read ({exc}): replaying from v1"
                    )
        return self.spec.initial_state(), 0

    def _locate(self, result: Replayed) -> None:
        for row in self.store.read_stream(
            result.stream, from_version=result.version, to_version=result.version, raw=True
        ):
            result.position, result.recorded_at = row[2], row[7]

    # --- snapshots ------------------------------------------------------------------

    def snapshot(self, stream: str, target: int | None = None) -> Snapshot:
        """Replay (from the newest snapshot) and store a snapshot of the state."""
        replayed = self.replay(stream, target)
        return self.save_snapshot(replayed)

    def save_snapshot(self, replayed: Replayed) -> Snapshot:
        if replayed.version < 1:
            raise ModelError(f"nothing to snapshot: {replayed.stream} at version 0")
        return self.snapshots.save(
            replayed.stream,
            replayed.version,
            self.spec.name,
            self.fingerprint,
            statecodec.dumps(replayed.state),
        )

    def maybe_snapshot(self, replayed: Replayed) -> None:
        """An aggregate with `snapshot_every = N` gets a snapshot whenever N or more
        events were folded beyond its newest one. Best effort: a read-only or busy
        store is left alone, with a note."""
        every = self.spec.snapshot_every
        if not every or not self.use_snapshots or replayed.applied < every:
            return
        conn = self.store.conn
        previous = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        conn.execute("PRAGMA busy_timeout = 200")  # a read must not wait long on a writer
        try:
            self.save_snapshot(replayed)
        except EsctlError as exc:
            self.notes.append(f"automatic snapshot skipped: {exc}")
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(previous)}")

    # --- event by event -------------------------------------------------------------

    def steps(self, stream: str, target: int | None = None) -> Iterator[Step]:
        """Every event from version 1 to `target` with the changes it caused."""
        head = stream_head(self.store, stream)
        target = head if target is None else check_version(stream, target, head)
        self.folder.skipped.clear()
        state = self.spec.initial_state()
        before = to_plain(state)
        if target == 0:
            return
        for event in self.store.read_stream(stream, to_version=target):
            event = self.upcasters.event(event)
            state, skipped = self.folder.apply_event(state, event)
            after = to_plain(state)
            yield Step(event, diff(before, after), after, skipped)
            before = after

    def initial_plain(self) -> Any:
        return to_plain(self.spec.initial_state())

    def changes_between(self, stream: str, a: int, b: int) -> list[dict[str, Any]]:
        """The changes that take the state at version `a` to the state at version `b`."""
        head = stream_head(self.store, stream)
        check_version(stream, a, head)
        check_version(stream, b, head)
        low = self.replay(stream, min(a, b))
        low_plain = to_plain(low.state)
        high_plain = to_plain(self.continue_to(low, max(a, b)).state)
        return diff(low_plain, high_plain) if a <= b else diff(high_plain, low_plain)


__all__ = ["Folder", "Replayed", "Replayer", "Skipped", "Step"]
