"""Time travel: which version a replay stops at.

`--to-version N`, `--as-of TIMESTAMP` (the last event recorded at or before it) and
`--until-type T` (just before the first event of type T) each give a version; the
replay stops at the lowest of them, or at the head. 0 means "before any event"."""

from __future__ import annotations

from collections.abc import Callable

from esctl.errors import NotFound
from esctl.events import parse_timestamp
from esctl.store import EventStore


def stream_head(store: EventStore, stream: str) -> int:
    head = store.stream_version(stream)
    if head == 0:
        raise NotFound(f"stream {stream!r} not found")
    return head


def check_version(stream: str, version: int, head: int) -> int:
    if version < 0 or version > head:
        raise NotFound(f"stream {stream!r} has no version {version} (its version is {head})")
    return version


def version_or_head(store: EventStore, stream: str, version: int | None) -> int:
    """`version` if the stream has it, the stream's head if None; NotFound otherwise."""
    head = stream_head(store, stream)
    return head if version is None else check_version(stream, version, head)


def resolve_target(
    store: EventStore,
    stream: str,
    *,
    to_version: int | None = None,
    as_of: str | None = None,
    until_type: str | None = None,
    note: Callable[[str], None] | None = None,
) -> int:
    """The version to replay to. `note` hears about a limit that did not apply
    (an --until-type the stream never has)."""
    target = version_or_head(store, stream, to_version)
    if as_of is not None:
        # Versions form a prefix: stop before the first event recorded after the instant.
        after = store.first_version_after(stream, parse_timestamp(as_of))
        if after is not None:
            target = min(target, after - 1)
    if until_type is not None:
        first = store.first_version_of_type(stream, until_type)
        if first is not None:
            target = min(target, first - 1)
        elif note is not None:
            note(f"{stream} has no {until_type} event: --until-type does not stop the replay")
    return target
