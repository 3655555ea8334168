"""The CQRS write side: load an aggregate, run a command handler, append its events.

The events are appended with the version the state was loaded at as the expected
version (`no-stream` for a new stream). When another writer got there first, the
stream is reloaded and the command run again, up to `retries` more times. A
rejected command raises CommandRejected and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from esctl.aggregates.definition import Aggregate, CommandContext, Emitted
from esctl.aggregates.replay import Replayed, Replayer
from esctl.errors import ConcurrencyError, InvalidInput, WrongExpectedVersion, shown
from esctl.events import NO_STREAM, NewEvent, RecordedEvent, metadata_id
from esctl.ids import uuid7
from esctl.store import EventStore
from esctl.upcasting import SCHEMA_KEY, Upcasters


@dataclass(slots=True)
class Executed:
    stream: str
    command: str
    command_id: str
    correlation_id: str
    attempts: int
    version: int  # the stream's version after the command
    state: Any
    events: list[RecordedEvent] = field(default_factory=list)


def execute(
    store: EventStore,
    stream: str,
    aggregate: type[Aggregate],
    command: str,
    args: dict[str, Any] | None = None,
    *,
    upcasters: Upcasters | None = None,
    retries: int = 3,
    correlation_id: str | None = None,
    command_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    snapshots: bool = True,
    on_conflict: Callable[[WrongExpectedVersion, int], None] | None = None,
) -> Executed:
    """Run `command` against `stream` and append the events it decides on.

    Every event's metadata gets `correlation_id` (fresh unless given, here or in
    `metadata`), `causation_id` (the command's id, likewise) and `command` (its
    name), on top of `metadata`; events of a type with upcasters are stamped with
    its current schema. Executed reports the ids the events carry."""
    upcasters = upcasters or Upcasters()
    replayer = Replayer(store, aggregate, upcasters=upcasters, snapshots=snapshots)
    command_id = _id("command id", command_id, "causation_id", metadata)
    correlation_id = _id("correlation id", correlation_id, "correlation_id", metadata)
    args = {} if args is None else args
    for attempt in range(1, retries + 2):
        loaded = _load(replayer, stream)
        context = CommandContext(stream, loaded.version, command, command_id, correlation_id)
        emitted = aggregate.decide(loaded.state, command, args, context)
        executed = Executed(
            stream, command, command_id, correlation_id, attempt, loaded.version, loaded.state
        )
        if not emitted:
            return executed
        events = [
            _new_event(stream, e, upcasters, metadata, correlation_id, command_id, command) for e in emitted
        ]
        expected = loaded.version if loaded.version else NO_STREAM
        try:
            executed.events = store.append(stream, events, expected).events
        except WrongExpectedVersion as exc:
            if on_conflict is not None:
                on_conflict(exc, attempt)
            if attempt > retries:
                raise ConcurrencyError(
                    f"{command} on {stream!r} conflicted with other writers {attempt} times"
                    f" (retries: {retries}); last: {exc}"
                ) from None
            continue
        # Fold what was written, so the state is current (and maybe snapshotted).
        replayer.continue_to(loaded, executed.events[-1].version)
        replayer.maybe_snapshot(loaded)
        executed.version, executed.state = loaded.version, loaded.state
        return executed
    raise AssertionError("unreachable")  # pragma: no cover


def _id(what: str, given: str | None, key: str, metadata: dict[str, Any] | None) -> str:
    """An id given as an argument or in the metadata (not both, unless equal), else a fresh one."""
    in_metadata = (metadata or {}).get(key)
    if in_metadata is not None and not isinstance(in_metadata, str):
        raise InvalidInput(f"metadata {key} must be a string, got {shown(in_metadata)}")
    found = metadata_id(what, given, key, metadata)
    return found if isinstance(found, str) else uuid7()


def _load(replayer: Replayer, stream: str) -> Replayed:
    if replayer.store.stream_version(stream) == 0:
        return Replayed(stream, 0, None, None, replayer.spec.initial_state(), replayer.name)
    return replayer.replay(stream)


def _new_event(
    stream: str,
    emitted: Emitted,
    upcasters: Upcasters,
    metadata: dict[str, Any] | None,
    correlation_id: str,
    command_id: str,
    command: str,
) -> NewEvent:
    meta = {**(metadata or {}), **(emitted.metadata or {})}
    meta.setdefault("correlation_id", correlation_id)
    meta.setdefault("causation_id", command_id)
    meta.setdefault("command", command)
    if emitted.type in upcasters.types:
        meta[SCHEMA_KEY] = upcasters.current_schema(emitted.type)
    return NewEvent(stream, emitted.type, emitted.data, meta)
