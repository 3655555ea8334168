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
    while True:
        token = store.change_token()
        head = store.head_position()
        while position < head:
            rows, position = wanted.read(store, position, head, batch_size)
            yield Batch(rows, position, head)
        if should_stop():
            return
        if store.wait_for_change(token, poll_seconds) == token:
            yield Batch([], position, head)  # a quiet moment: a status line can say so
