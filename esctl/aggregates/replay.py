"""Replay: folding a stream's stored events into an aggregate's state.

Events are streamed from the store, never loaded all at once: whole rows through
`read_stream(raw=True)` when a handler needs the envelope or an upcaster applies,
else `read_stream_data`, just (version, type, data). The per-event cost is kept near a bare loop: the handler is one dict lookup
on the type and is called with freshly decoded data; everything unusual (an
upcaster, a handler that wants the whole event, an unknown type) leaves the fast
path for `_slow`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from esctl.aggregates import statecodec
from esctl.aggregates.changes import changed_paths, diff
from esctl.aggregates.default_fold import DefaultFold, merge_changes
from esctl.aggregates.definition import (
    Aggregate,
    Handler,
    apply,
    class_defined_at,
    event_at,
    handler_failed,
    returned_none,
    spec_of,
)
from esctl.aggregates.errors import UnknownEventType
from esctl.aggregates.plain import to_plain
from esctl.aggregates.targets import check_version, resolve_target, stream_head, version_or_head
from esctl.errors import EsctlError, ModelError
from esctl.events import RecordedEvent
from esctl.fingerprint import fingerprint
from esctl.store import EventStore
from esctl.store.rows import StoredRow, check_stored_json  # StoredRow: what read_stream(raw=True) yields
from esctl.store.snapshot import Snapshot
from esctl.upcasting import Upcasters
from esctl.usercode import where

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
    definition: type[Aggregate] | None = None  # for error messages

    def to_dict(self) -> dict[str, Any]:
        try:
            state = to_plain(self.state)
        except ModelError as exc:
            raise unserialisable(exc, self.definition, self.stream, self.version) from None
        return {"stream": self.stream, "version": self.version, "position": self.position, "state": state}


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


def unserialisable(
    exc: ModelError,
    aggregate: type[Aggregate] | None,
    stream: str,
    version: int,
    handler: Handler | None = None,
) -> ModelError:
    """A state esctl cannot write as JSON, placed: the stream and version, and the
    handler that made it when known (else the aggregate's definition)."""
    if exc.where:  # a to_json that raised: its line
        where = exc.where
    elif handler is not None:
        where = handler.defined_at()
    else:
        where = class_defined_at(aggregate) if aggregate else ""
    by = f" after {handler.name}" if handler else ""
    place = f"{stream} v{version}{by}: " if stream else ""
    return ModelError(f"{place}{str(exc).removeprefix(exc.where)}", where)


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
                    raise self._returned_none(stream, version, event_type)
        except EsctlError:
            raise
        except Exception as exc:
            if isinstance(exc, orjson.JSONDecodeError):
                check_stored_json(f"{stream} v{version}", data=data)
            raise self._failure(exc, stream, version, event_type) from exc
        return state, version

    def fold(self, state: Any, rows: Iterable[StoredRow]) -> tuple[Any, StoredRow | None]:
        """Fold rows into `state`; returns the new state and the last row."""
        get = self._fast.get
        default = self._fast_default
        loads = orjson.loads
        slow = self._slow
        row = None
        try:
            for row in rows:
                fn = get(row.type, default)
                state = fn(state, loads(row.data)) if fn is not None else slow(state, row)
                if state is None:
                    raise self._returned_none(row.stream, row.version, row.type)
        except EsctlError:  # already explained (strict mode, upcasters)
            raise
        except Exception as exc:
            if row is None:
                raise self._failure(exc, "", 0, "") from exc
            if isinstance(exc, orjson.JSONDecodeError):
                where = f"event {row.position} ({row.stream} v{row.version})"
                check_stored_json(where, data=row.data, metadata=row.metadata)
            raise self._failure(exc, row.stream, row.version, row.type) from exc
        return state, row

    def apply_event(self, state: Any, event: RecordedEvent) -> tuple[Any, bool]:
        """One decoded, upcast event: (new state, whether it was skipped)."""
        handler = self.spec.handler_for(event.type)
        if handler is None:
            self._unknown(event.stream, event.version, event.type)
            return state, True
        return apply(
            handler, state, event.data, event, event_at(event.stream, event.version, event.type)
        ), False

    def _slow(self, state: Any, row: StoredRow) -> Any:
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

    # The fast loops catch once around the loop (free until something raises) and
    # report through the same helpers as `apply`.

    def _returned_none(self, stream: str, version: int, event_type: str) -> ModelError:
        handler = self.spec.handler_for(event_type)
        assert handler is not None  # only a handler's result can be None
        return returned_none(handler, event_at(stream, version, event_type))

    def _failure(self, exc: Exception, stream: str, version: int, event_type: str) -> ModelError:
        handler = self.spec.handler_for(event_type) if stream else None
        if handler is None:  # before the first event, or not in a handler
            at = event_at(stream, version, event_type) if stream else ""
            return ModelError(f"{self.spec.name} failed: {type(exc).__name__}: {exc}{at}", where(exc))
        return handler_failed(handler, exc, event_at(stream, version, event_type))


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
        self.snapshots = store.snapshots
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
        note: Callable[[str], None] | None = None,
    ) -> int:
        return resolve_target(
            self.store, stream, to_version=to_version, as_of=as_of, until_type=until_type, note=note
        )

    def replay(self, stream: str, target: int | None = None) -> Replayed:
        """The state at version `target` (default: the head), from the newest valid
        snapshot at or below it when snapshots are on."""
        target = version_or_head(self.store, stream, target)
        self.folder.skipped.clear()
        state, start = self._start(stream, target)
        result = Replayed(
            stream, start, None, None, state, self.name, start or None, definition=self.aggregate
        )
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
            result.position, result.recorded_at = row.position, row.recorded_at

    # --- snapshots ------------------------------------------------------------------

    def snapshot(self, stream: str, target: int | None = None) -> Snapshot:
        """Replay (from the newest snapshot) and store a snapshot of the state."""
        replayed = self.replay(stream, target)
        return self.save_snapshot(replayed)

    def save_snapshot(self, replayed: Replayed, *, wait_seconds: float | None = None) -> Snapshot:
        if replayed.version < 1:
            raise ModelError(f"nothing to snapshot: {replayed.stream} at version 0")
        try:
            encoded = statecodec.dumps(replayed.state)
        except ModelError as exc:
            raise unserialisable(exc, self.aggregate, replayed.stream, replayed.version) from None
        return self.snapshots.save(
            replayed.stream,
            replayed.version,
            self.spec.name,
            self.fingerprint,
            encoded,
            wait_seconds=wait_seconds,
        )

    def maybe_snapshot(self, replayed: Replayed) -> None:
        """An aggregate with `snapshot_every = N` gets a snapshot whenever N or more
        events were folded beyond its newest one. Best effort: a read-only or busy
        store is left alone, with a note."""
        every = self.spec.snapshot_every
        if not every or not self.use_snapshots or replayed.applied < every:
            return
        try:
            self.save_snapshot(replayed, wait_seconds=0.2)  # a read must not wait long on a writer
        except EsctlError as exc:
            self.notes.append(f"automatic snapshot skipped: {exc}")

    # --- event by event -------------------------------------------------------------

    def steps(self, stream: str, target: int | None = None, *, states: bool = True) -> Iterator[Step]:
        """Every event from version 1 to `target` with the changes it caused; with
        `states=False` (for `versions`) Step.state is None.

        For an aggregate the changes are a diff of the plain state before and after
        each event. The default fold knows what an event changes from its data
        alone (a merge patch), so there the cost per event follows the event, not
        the state (and without states, nothing is copied)."""
        target = version_or_head(self.store, stream, target)
        self.folder.skipped.clear()
        state = self.spec.initial_state()
        if target == 0:
            return
        from_patch = self.aggregate is DefaultFold
        before = None if from_patch else self.plain(state, stream, 0)
        for event in self.store.read_stream(stream, to_version=target):
            event = self.upcasters.event(event)
            if from_patch:
                changes = merge_changes(state, event.data)
                state, skipped = self.folder.apply_event(state, event)
                after = self.plain(state, stream, event.version, event.type) if states else None
            else:
                state, skipped = self.folder.apply_event(state, event)
                after = self.plain(state, stream, event.version, event.type)
                changes = diff(before, after)
                before = after
            yield Step(event, changes, after, skipped)

    def versions(self, stream: str) -> Iterator[dict[str, Any]]:
        """The version history: one row per event with the state paths it changed."""
        for s in self.steps(stream, states=False):
            e = s.event
            yield {
                "version": e.version,
                "position": e.position,
                "type": e.type,
                "recorded_at": e.recorded_at,
                "changed": changed_paths(s.changes),
            }

    def initial_plain(self) -> Any:
        return self.plain(self.spec.initial_state(), "", 0)

    def plain(self, state: Any, stream: str, version: int, event_type: str | None = None) -> Any:
        """`to_plain(state)`; a state that cannot be made plain is reported with the
        stream, the version and the handler that made it (else the aggregate)."""
        try:
            return to_plain(state)
        except ModelError as exc:
            handler = self.spec.handler_for(event_type) if event_type else None
            raise unserialisable(exc, self.aggregate, stream, version, handler) from None

    def changes_between(self, stream: str, a: int, b: int) -> list[dict[str, Any]]:
        """The changes that take the state at version `a` to the state at version `b`."""
        head = stream_head(self.store, stream)
        check_version(stream, a, head)
        check_version(stream, b, head)
        low = self.replay(stream, min(a, b))
        low_plain = self.plain(low.state, stream, low.version)
        high = self.continue_to(low, max(a, b))
        high_plain = self.plain(high.state, stream, high.version)
        return diff(low_plain, high_plain) if a <= b else diff(high_plain, low_plain)


__all__ = ["Folder", "Replayed", "Replayer", "Skipped", "Step"]
