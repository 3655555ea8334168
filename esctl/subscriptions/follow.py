"""Following the log: the events a filter wants, as they are committed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from esctl.store.protocol import EventStoreBackend
from esctl.store.rows import StoredRow
from esctl.subscriptions.filter import EventFilter

BATCH = 1_000


@dataclass(frozen=True)
class Batch:
    """Events read in one go (maybe none: a wake-up with nothing wanted, or a
    timeout), the position read up to, and the head as then known."""

    rows: list[StoredRow]
    position: int
    head: int


def follow(
    store: EventStoreBackend,
    wanted: EventFilter,
    *,
    after: int | None = None,
    poll_seconds: float = 0.2,
    should_stop: Callable[[], bool] = lambda: False,
    batch_size: int = BATCH,
) -> Iterator[Batch]:
    """Batches of the wanted events after position `after` (None: from the head as
    it is now), in position order, each event once, until `should_stop` (asked at
    least every `poll_seconds`). Woken by the store's change feed; the token is
    read before the head, so a commit made while reading still wakes the next wait."""
    position = store.head_position() if after is None else after
    for changed in changes(store, poll_seconds, should_stop, quiet=True):
        head = store.head_position()
        if not changed and position >= head:
            yield Batch([], position, head)  # a quiet moment: a status line can say so
        while position < head:
            rows, position = wanted.read(store, position, head, batch_size)
            yield Batch(rows, position, head)


def changes(
    store: EventStoreBackend, poll_seconds: float, should_stop: Callable[[], bool], *, quiet: bool = False
) -> Iterator[bool]:
    """Yield True at once, then whenever another connection has committed to the
    store (and, with `quiet`, False after each `poll_seconds` without a commit),
    until `should_stop`. The token is read before each yield: a commit made while
    the caller reads must wake the next wait, not the one after."""
    seen = store.change_token()
    yield True
    while not should_stop():
        current = store.wait_for_change(seen, poll_seconds)  # returns early on a commit
        if current != seen:
            seen = current
            yield True
        elif quiet:
            yield False
