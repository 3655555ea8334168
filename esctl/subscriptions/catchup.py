"""Catching an in-process subscription up from its checkpoint, with exactly-once
effect: the engine every Python handler runs on (projections; reactors and sagas).

Each batch is one transaction in which the handlers' writes and the new
checkpoint commit together, so an event is never applied twice or skipped,
whatever fails or is interrupted. The checkpoint row is read again, locked, in
that transaction: another runner, a rebuild or a reset that moved it is
respected, so two runners at once still apply each event once.

A handler that raises rolls its batch back. The failure is recorded with its
retry schedule (`resilience`), and the batch is tried again once the backoff
(and an open breaker's cool-down) has passed: waited for by a drain, handed back
as `retry_at` to a follower that has other work. When the retries run out it
raises GaveUp, and the next run starts again from the same event.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from esctl.store.protocol import EventStoreBackend
from esctl.store.rows import StoredRow
from esctl.subscriptions.filter import EventFilter
from esctl.subscriptions.resilience import (
    Clock,
    Retry,
    RetryState,
    SystemClock,
    due,
    failed,
    finished,
    start,
    trial,
)

BATCH = 2_000  # events per transaction when catching up
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Failure:
    """The event a handler failed on, and why."""

    position: int
    stream: str
    version: int
    type: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "stream": self.stream,
            "version": self.version,
            "type": self.type,
            "message": self.message,
        }

    def describe(self) -> str:
        return (
            f"position {self.position} (stream {self.stream!r}, version {self.version},"
            f" type {self.type}): {self.message}"
        )


class HandlerFailed(Exception):
    """Raised by a subscription's `apply`: the event its handler failed on."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


class GaveUp(Exception):
    """The retries on an event ran out: it is recorded, the checkpoint is before it."""

    def __init__(self, failure: Failure, attempts: int) -> None:
        super().__init__(failure.describe())
        self.failure, self.attempts = failure, attempts


class Subscription(Protocol):
    """What the engine needs of an in-process subscription."""

    name: str
    wanted: EventFilter
    retry: Retry

    def open(self) -> tuple[int, RetryState]:
        """Ready to run (its tables, its row): the checkpoint, and the stored
        retry schedule of the event after it."""

    def transaction(self) -> AbstractContextManager[int | None]:
        """A transaction of the handler's database with the checkpoint row locked:
        yields the checkpoint as stored (None: the subscription was reset)."""

    def apply(self, rows: Sequence[StoredRow]) -> int:
        """In the transaction: hand the rows to the handlers; how many reached one.
        Raises HandlerFailed."""

    def advance(self, checkpoint: int) -> None:
        """In the transaction: the new checkpoint (and the failure cleared)."""

    def record_failure(self, checkpoint: int, failure: Failure, schedule: RetryState, last: bool) -> None:
        """In a transaction of its own: the failure and its schedule, for `status`
        and for the next run."""


@dataclass
class Caught:
    name: str
    start: int  # the checkpoint before
    checkpoint: int
    head: int
    applied: int  # events that reached a handler
    retry_at: float | None = None  # a failed event's next attempt, not waited for


def catch_up(
    store: EventStoreBackend,
    subscription: Subscription,
    *,
    to_position: int | None = None,
    batch_size: int = BATCH,
    progress: Progress | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    wait: bool = True,
) -> Caught:
    """Apply every wanted event after the checkpoint, up to `to_position` (default
    the head). With `wait` False a retry that is not yet due ends the run, its
    time in `retry_at`. Raises GaveUp when an event's retries run out."""
    clock = clock or SystemClock()
    rng = rng or random.Random()
    checkpoint, schedule = subscription.open()
    result = Caught(subscription.name, checkpoint, checkpoint, 0, 0)
    while True:
        head = store.head_position()
        upto = head if to_position is None else min(head, to_position)
        result.head = head
        if checkpoint >= upto:
            break
        if schedule.attempt and schedule.attempt_at > checkpoint:  # the next batch holds it
            when = due(schedule)
            if when > clock.now():
                if not wait:
                    result.retry_at = when
                    break
                _sleep_until(clock, when)
            trial(schedule, clock.now())
        rows, reached = subscription.wanted.read(store, checkpoint, upto, batch_size)
        try:
            with subscription.transaction() as current:
                moved = current != checkpoint
                if not moved:
                    applied = subscription.apply(rows)
                    subscription.advance(reached)
        except HandlerFailed as exc:
            start(schedule, exc.failure.position)
            last = failed(schedule, subscription.retry, clock.now(), rng)
            subscription.record_failure(checkpoint, exc.failure, schedule, last)
            if last:
                raise GaveUp(exc.failure, schedule.attempt) from None
            continue
        if moved:  # another runner, a rebuild or a reset: go on from there
            checkpoint, schedule = subscription.open()
            continue
        result.applied += applied
        finished(schedule, True)
        if progress is not None:
            progress(reached - checkpoint)
        checkpoint = reached
    result.checkpoint = checkpoint
    return result


def _sleep_until(clock: Clock, when: float) -> None:
    while (left := when - clock.now()) > 0:
        clock.sleep(left)
