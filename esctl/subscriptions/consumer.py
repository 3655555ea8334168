"""A durable consumer: a named group that hands each event it wants to a handler,
once it succeeds, in position order, with retries, a circuit breaker and parking.

- **At least once, keyed:** the checkpoint moves only after the handler succeeded
  (or the event was parked), so a runner killed mid-event delivers it again; the
  idempotency key (`GROUP:EVENT_ID`) is the same every time, for the handler to
  apply it once.
- **Retry and the circuit breaker:** as `resilience` sets out; the attempt count,
  the time of the next attempt and the breaker are stored with the consumer, so a
  restarted consumer resumes the schedule and `consumers` shows the breaker.
- **Parking:** an event whose retries ran out is parked with its error. In
  `event` mode the consumer moves on; in `stream` mode the later events of that
  stream are held behind it (parked as `held`) while other streams go on, so a
  handler never sees version 5 of a stream before version 4. `dlq retry` puts them
  back in line, delivered first, in order; `dlq skip` gives one up.
- **One runner at a time:** the group's lease (the backend's, which keeps it
  while it is held); every step that moves the checkpoint first checks, in its
  transaction, that the lease is still held.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from esctl.errors import ConcurrencyError, InvalidInput, StoreError
from esctl.store.consumers import OPEN, Consumer, ConsumerStore, Parked, history_entry
from esctl.store.protocol import EventStoreBackend
from esctl.store.readmodels import ReadModels
from esctl.store.rows import StoredRow
from esctl.subscriptions.filter import EventFilter
from esctl.subscriptions.follow import changes
from esctl.subscriptions.resilience import Clock, Settings, SystemClock, due, failed, finished, start, trial

READ_AHEAD = 100  # events read per look at the log


@dataclass(frozen=True)
class Delivery:
    """One attempt to hand an event to the handler."""

    group: str
    row: StoredRow
    attempt: int

    @property
    def idempotency_key(self) -> str:
        return f"{self.group}:{self.row.id}"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    exit_code: int | None = None
    error: str = ""


Handler = Callable[[Delivery], Outcome]


@dataclass
class Report:
    """What one delivery came to, for the caller to show: outcome is `ok`,
    `failed` (retried later), `open` (failed, and the breaker opened), `parked`,
    `held` (behind a parked event of its stream) or `queued` (behind events of its
    stream put back in line)."""

    position: int
    stream: str
    version: int
    type: str
    attempt: int
    outcome: str
    exit_code: int | None = None
    retry_in: float | None = None
    error: str = ""

    @classmethod
    def of(cls, row: StoredRow, attempt: int, outcome: Outcome) -> Report:
        """The last attempt on an event: delivered, or parked with its error."""
        if outcome.ok:
            return cls(row.position, row.stream, row.version, row.type, attempt, "ok", outcome.exit_code)
        return cls(
            row.position,
            row.stream,
            row.version,
            row.type,
            attempt,
            "parked",
            outcome.exit_code,
            error=outcome.error,
        )

    def to_dict(self) -> dict[str, Any]:
        doc = {k: v for k, v in self.__dict__.items() if v is not None and v != ""}
        if self.retry_in is not None:
            doc["retry_in"] = round(self.retry_in, 3)
        return doc


@dataclass
class Summary:
    delivered: int = 0
    parked: int = 0
    held: int = 0
    failures: int = 0
    stopped_by_breaker: float | None = None  # when --once met an open breaker: its trial time


class Stopped(Exception):
    """The run ended early: asked to stop, or the breaker is open in a drain."""


class ConsumerRunner:
    def __init__(
        self,
        store: EventStoreBackend,
        db: ReadModels,
        group: str,
        wanted: EventFilter,
        handler: Handler,
        settings: Settings = Settings(),
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        on_report: Callable[[Report], None] = lambda report: None,
        on_wait: Callable[[str], None] = lambda note: None,
        on_start: Callable[[], None] = lambda: None,
        poll_seconds: float = 0.2,
    ) -> None:
        self.store, self.db, self.group, self.wanted = store, db, group, wanted
        self.handler, self.settings = handler, settings
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.on_report, self.on_wait, self.on_start = on_report, on_wait, on_start
        self.poll_seconds = poll_seconds
        self.state = ConsumerStore(db)
        self.lease = f"consumer:{group}"
        self._unsaved = False  # deliveries since the consumer's row was last saved

    # --- running ---------------------------------------------------------------------

    def run(self, *, once: bool = False, should_stop: Callable[[], bool] = lambda: False) -> Summary:
        """Deliver until caught up (`once`) or until `should_stop`."""
        summary = Summary()
        self.state.ensure()
        self._take_lease(should_stop)
        try:
            consumer = self._open()  # read once the lease is ours: a runner before may have moved it
            self.on_start()
            self._loop(consumer, summary, once, should_stop)
        except Stopped:
            pass
        finally:
            with contextlib.suppress(Exception):
                self.db.release_lease(self.lease)
        return summary

    def _open(self) -> Consumer:
        with self.db.transaction(self.lease):
            consumer = self.state.get(self.group, lock=True)
            if consumer is None:
                consumer = Consumer(self.group, self.wanted.to_dict(), self.settings.park_mode)
                self.state.create(consumer)
        if consumer.filter != self.wanted.to_dict():
            raise InvalidInput(
                f"consumer {self.group!r} follows {EventFilter.of(**consumer.filter).describe()}:"
                " give the same filters (a Subscriber: the same handlers), or a new group name, which"
                " starts from the first event (a group's events are fixed: those it passed by would"
                " never reach a new handler)"
            )
        if consumer.park_mode != self.settings.park_mode:
            raise InvalidInput(
                f"consumer {self.group!r} parks by {consumer.park_mode}: park by {consumer.park_mode}"
                f" (--park, or a Subscriber's park=), or start a new group name"
            )
        return consumer

    def _take_lease(self, should_stop: Callable[[], bool]) -> None:
        said = False
        while True:
            holder = self.db.acquire_lease(self.lease, self.settings.lease_seconds)
            if holder is None:
                return
            if not self.settings.wait_for_lease:
                raise ConcurrencyError(f"consumer {self.group!r} is being run by {holder}")
            if not said:
                self.on_wait(f"consumer {self.group!r} is being run by {holder}: waiting for it")
                said = True
            if should_stop():
                raise Stopped
            time.sleep(min(0.5, self.settings.lease_seconds / 4))

    def _loop(
        self, consumer: Consumer, summary: Summary, once: bool, should_stop: Callable[[], bool]
    ) -> None:
        # Quiet wake-ups too: a `dlq retry` may change nothing the change feed sees.
        for _ in changes(self.store, self.poll_seconds, should_stop, quiet=True):
            while self._step(consumer, summary, once, should_stop):
                pass
            if once:
                return

    def _step(
        self, consumer: Consumer, summary: Summary, once: bool, should_stop: Callable[[], bool]
    ) -> bool:
        """Deliver what is next (the first event back in line, else a batch of the
        log); False when there is nothing to do."""
        if should_stop():
            raise Stopped
        redrive = self.state.parked(self.group, states=("retry",))
        if redrive:
            self._redeliver(consumer, redrive[0], summary, once, should_stop)
            return True
        head = self.store.head_position()
        if consumer.checkpoint >= head:
            return False
        rows, reached = self.wanted.read(self.store, consumer.checkpoint, head, READ_AHEAD)
        held = self.state.held_streams(self.group) if self.settings.park_mode == "stream" else set()
        try:
            for row in rows:
                if should_stop():
                    raise Stopped
                self._deliver_live(consumer, row, held, summary, once, should_stop)
            consumer.checkpoint = max(consumer.checkpoint, reached)  # past unwanted events too
            self._unsaved = True
        finally:
            self._save_delivered(consumer)
        return True

    def _save_delivered(self, consumer: Consumer) -> None:
        """The checkpoint of the deliveries since the last save: one transaction per
        batch, not per event. A runner killed before it delivers those again."""
        if self._unsaved:
            with self._moving():
                self.state.save(consumer)
            self._unsaved = False

    @contextlib.contextmanager
    def _moving(self) -> Iterator[None]:
        """A transaction that moves the consumer on: refused once the lease is lost."""
        with self.db.transaction(self.lease):
            if not self.db.holds_lease(self.lease):  # renewed by the backend while held
                raise StoreError(
                    f"consumer {self.group!r} lost its lease (another runner took over): stopping"
                )
            yield

    # --- one event -------------------------------------------------------------------

    def _deliver_live(
        self,
        consumer: Consumer,
        row: StoredRow,
        held: set[str],
        summary: Summary,
        once: bool,
        should_stop: Callable[[], bool],
    ) -> None:
        """`held`: the streams parked in `stream` mode (this adds to it, and looks
        again before holding an event: a `dlq retry` or `skip` may have changed it).
        An event of a stream whose earlier events are back in line (`retry`) joins
        the line behind them; behind a parked one, it is held."""
        if row.stream in held:
            with self._moving():
                waiting = self.state.waiting_in(self.group, row.stream)
                state = "held" if waiting & {"parked", "held"} else "retry"
                if waiting:
                    why = "held behind an earlier parked event of its stream" if state == "held" else ""
                    self.state.park(_parked(self.group, row, state, 0, None, why))
                    consumer.checkpoint = row.position
                    self.state.save(consumer)
            if waiting:
                summary.held += state == "held"
                outcome = "held" if state == "held" else "queued"  # behind its re-driven events
                self._report(summary, Report(row.position, row.stream, row.version, row.type, 0, outcome))
                return
            held.discard(row.stream)
        outcome, attempt = self._attempt(consumer, row, summary, once, should_stop)
        consumer.checkpoint = row.position
        finished(consumer, outcome.ok)
        if outcome.ok:  # saved with the batch (or before a failure is): at least once allows it
            summary.delivered += 1
            self._unsaved = True
        else:
            with self._moving():
                self.state.park(_parked(self.group, row, "parked", attempt, outcome.exit_code, outcome.error))
                summary.parked += 1
                if self.settings.park_mode == "stream":
                    held.add(row.stream)
                self.state.save(consumer)
            self._unsaved = False
        self._report(summary, Report.of(row, attempt, outcome))

    def _redeliver(
        self,
        consumer: Consumer,
        parked: Parked,
        summary: Summary,
        once: bool,
        should_stop: Callable[[], bool],
    ) -> None:
        if self.settings.park_mode == "stream":
            before = [
                p
                for p in self.state.parked(self.group, states=("parked", "held"))
                if p.stream == parked.stream and p.position < parked.position
            ]
            if before:  # its stream's earlier event is parked again: wait behind it
                with self._moving():
                    parked.state = "held"
                    parked.history.append(history_entry("held again", behind=before[-1].position))
                    self.state.update(parked)
                return
        row = self._row(parked.position)
        # The live event's retry schedule stays its own: a re-drive keeps one of its own.
        live = (consumer.attempt, consumer.attempt_at, consumer.retry_at)
        consumer.attempt, consumer.attempt_at, consumer.retry_at = 0, row.position, 0.0
        try:
            outcome, attempt = self._attempt(consumer, row, summary, once, should_stop)
        finally:
            consumer.attempt, consumer.attempt_at, consumer.retry_at = live
        with self._moving():
            fresh = self.state.one(self.group, parked.position) or parked  # dlq may have acted meanwhile
            fresh.attempts += attempt
            if fresh.state != "retry":
                fresh.history.append(
                    history_entry(
                        f"delivered while {fresh.state}" if outcome.ok else f"failed while {fresh.state}",
                        attempt=attempt,
                    )
                )
            elif outcome.ok:
                fresh.state = "done"
                fresh.history.append(history_entry("delivered", attempt=attempt))
            else:
                fresh.state = "parked"
                fresh.exit_code, fresh.error = outcome.exit_code, outcome.error
                fresh.history.append(
                    history_entry("parked again", attempts=attempt, exit_code=outcome.exit_code)
                )
            summary.delivered += outcome.ok
            summary.parked += not outcome.ok
            self.state.update(fresh)
            if outcome.ok:
                finished(consumer, True)
            self.state.save(consumer)
        self._report(summary, Report.of(row, attempt, outcome))

    def _row(self, position: int) -> StoredRow:
        (row,) = self.store.read_all(from_position=position, to_position=position, raw=True)
        return row

    def _attempt(
        self,
        consumer: Consumer,
        row: StoredRow,
        summary: Summary,
        once: bool,
        should_stop: Callable[[], bool],
    ) -> tuple[Outcome, int]:
        """Call the handler until it succeeds or the retries run out: (the last
        outcome, attempts made on this event). Raises Stopped when the breaker is
        open in a drain, or when asked to stop while waiting."""
        start(consumer, row.position)
        while True:
            self._wait_for_breaker(consumer, summary, once, should_stop)
            self._wait_until(consumer.retry_at, should_stop)
            attempt = consumer.attempt + 1
            try:
                outcome = self.handler(Delivery(self.group, row, attempt))
            except Exception as exc:  # a Python handler's failure is a failed attempt
                outcome = Outcome(False, None, f"{type(exc).__name__}: {exc}")
            now = self.clock.now()
            if outcome.ok:
                return outcome, attempt
            summary.failures += 1
            with self._moving():
                last = failed(consumer, self.settings, now, self.rng)
                self.state.save(consumer)
            if last:
                return outcome, attempt
            self._report(
                summary,
                Report(
                    row.position,
                    row.stream,
                    row.version,
                    row.type,
                    attempt,
                    "open" if consumer.breaker == OPEN else "failed",
                    outcome.exit_code,
                    retry_in=due(consumer) - now,
                    error=outcome.error,
                ),
            )

    def _wait_for_breaker(
        self, consumer: Consumer, summary: Summary, once: bool, should_stop: Callable[[], bool]
    ) -> None:
        if consumer.breaker != OPEN:
            return
        if once and self.clock.now() < consumer.trial_at:
            summary.stopped_by_breaker = consumer.trial_at
            raise Stopped
        self._wait_until(consumer.trial_at, should_stop)
        if trial(consumer, self.clock.now()):
            with self._moving():
                self.state.save(consumer)

    def _wait_until(self, when: float, should_stop: Callable[[], bool]) -> None:
        while True:
            left = when - self.clock.now()
            if left <= 0:
                return
            if should_stop():
                raise Stopped
            self.clock.sleep(min(left, self.poll_seconds * 5))

    def _report(self, summary: Summary, report: Report) -> None:
        self.on_report(report)


def _parked(
    group: str, row: StoredRow, state: str, attempts: int, exit_code: int | None, error: str
) -> Parked:
    from esctl.events import utc_now

    entry = history_entry(state, attempts=attempts) if state == "parked" else history_entry(state)
    return Parked(
        group,
        row.position,
        row.stream,
        row.version,
        row.type,
        row.id,
        state,
        attempts,
        exit_code,
        error,
        utc_now(),
        [entry],
    )
