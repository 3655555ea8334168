"""Copying a store to another, on any backends: the log as it is (positions,
versions, ids, timestamps, metadata, the JSON text byte for byte), so that both
export the same bytes. Resumable: a destination that holds a prefix of the
source's log (an interrupted copy) continues after it."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from typing import Any

from esctl.errors import StoreError
from esctl.store.protocol import EventStoreBackend

BATCH = 10_000  # events per transaction: an interruption keeps what was committed


def copy_events(
    source: EventStoreBackend,
    destination: EventStoreBackend,
    *,
    batch_size: int = BATCH,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Copy `source`'s events that `destination` lacks; returns what was done."""
    started = time.monotonic()
    if _same_store(source, destination):
        raise StoreError(f"{source.location} and {destination.location} are the same store: nothing to copy")
    kept = destination.head_position()
    if kept:
        _check_prefix(source, destination, kept)
    head = source.head_position()
    copied = 0
    rows = source.read_all(from_position=kept + 1, to_position=head, raw=True)
    while batch := list(itertools.islice(rows, batch_size)):
        destination.import_stored(batch)
        copied += len(batch)
        if progress:
            progress(len(batch))
    return {
        "source": source.location,
        "destination": destination.location,
        "copied": copied,
        "already_there": kept,
        "last_position": kept + copied,
        "seconds": round(time.monotonic() - started, 3),
    }


def _same_store(source: EventStoreBackend, destination: EventStoreBackend) -> bool:
    if source.location == destination.location:
        return True
    try:
        return os.path.samefile(source.path, destination.path)
    except (OSError, ValueError):  # a URL, or a file that is not there
        return False


def _check_prefix(source: EventStoreBackend, destination: EventStoreBackend, kept: int) -> None:
    """The destination's log must be the start of the source's: its first and last
    events the source's at those positions, stored alike (what an interrupted copy
    leaves; ids alone could be shared by two logs whose writers chose them)."""
    for position in sorted({1, kept}):
        _same_event(source, destination, position)


def _same_event(source: EventStoreBackend, destination: EventStoreBackend, position: int) -> None:
    theirs = next(iter(destination.read_all(from_position=position, limit=1, raw=True)))
    ours = next(iter(source.read_all(from_position=position, limit=1, raw=True)), None)
    if ours != theirs:
        if ours is None:
            mine = f"the source ends at {source.head_position()}"
        elif (ours.stream, ours.version) == (theirs.stream, theirs.version):
            mine = "the source's is stored otherwise"
        else:
            mine = f"the source's is {ours.stream} v{ours.version}"
        raise StoreError(
            f"{destination.location} holds other events: its position {position} is"
            f" {theirs.stream} v{theirs.version}, {mine}; copy continues only a copy"
            " of the same log (into an empty store, or one an interrupted copy left)"
        )
