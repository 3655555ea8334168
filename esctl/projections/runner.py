"""Running a projection: its catch-up on the subscription engine
(esctl.subscriptions.catchup), on the read-model database, and following the log.

Each batch is one transaction of the read-model database: the handlers' writes
and the new checkpoint commit together, so an event is never applied twice or
skipped, whatever fails or is interrupted. A handler that raises rolls its batch
back, the failing event is recorded in the catalog (status `retrying` while its
retries last, then `failed`) and the next run starts again from the same event.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from esctl.errors import StoreError
from esctl.projections.apply import Applier, ProjectionFailed
from esctl.projections.definition import Projection
from esctl.store.protocol import EventStoreBackend
from esctl.store.readmodels import ReadModels, Record
from esctl.store.rows import StoredRow
from esctl.subscriptions import catchup
from esctl.subscriptions.catchup import BATCH, Failure, GaveUp, Progress
from esctl.subscriptions.filter import EventFilter
from esctl.subscriptions.follow import changes
from esctl.subscriptions.resilience import Clock, RetryState, SystemClock

LEASE_SECONDS = 5.0  # a follower's hold on each projection it runs


class ProjectionNeedsRebuild(StoreError):
    """A table the projection has built is gone (dropped by hand): running on would
    build on an empty table, so only a rebuild (or a reset) can go on."""

    def __init__(self, name: str, lost: list[str], checkpoint: int) -> None:
        self.name, self.lost = name, lost
        super().__init__(
            f"projection {name!r} has lost its table {', '.join(lost)} (built up to position"
            f" {checkpoint}): esctl project rebuild {name} builds it again"
        )


@dataclass
class RunResult:
    name: str
    start: int  # the checkpoint before
    checkpoint: int
    head: int
    applied: int  # events that reached a handler
    seconds: float = 0.0
    adopted_code: bool = False  # a failed projection resumed with changed (fixed) code
    retry_at: float | None = None  # a failed event's next attempt, when not waited for


def read_batch(
    store: EventStoreBackend, projection: Projection, after: int, upto: int, limit: int
) -> tuple[list[StoredRow], int]:
    """Raw rows of the events after `after` up to `upto` that the projection
    handles, and the checkpoint reached once they are applied."""
    return wanted(projection).read(store, after, upto, limit)


def wanted(projection: Projection) -> EventFilter:
    return EventFilter.of(categories=projection.categories or (), types=projection.event_types)


def lost_tables(rec: Record, projection: Projection, present: set[str]) -> list[str]:
    """Tables the projection has built (checkpoint > 0) that no longer exist."""
    if rec.checkpoint <= 0:
        return []
    return [t for t in projection.tables if t in rec.tables and t.lower() not in present]


def prepare(db: ReadModels, projection: Projection) -> Record:
    """Check the projection's tables are its own, create missing ones and its catalog
    row. Returns the record. Writes nothing when all is in place (so a follower's
    polling never commits, and never wakes itself up)."""
    name = projection.name
    rec = db.record(name)
    if rec is not None:
        present = db.present(name)
        if all(t.lower() in present and t in rec.tables for t in projection.tables):
            return rec
    with db.transaction(name):
        db.ensure_catalog()
        db.check_ownership(name, list(projection.tables))
        rec = db.record(name, lock=True)
        present = db.present(name)
        if rec is None:
            rec = Record(name, 0, projection.fingerprint, list(projection.tables))
        lost = lost_tables(rec, projection, present)
        if lost:
            raise ProjectionNeedsRebuild(name, lost, rec.checkpoint)
        for table_name, table in projection.tables.items():
            if table_name.lower() not in present:
                db.create_table(name, table, rec.generation)
            if table_name not in rec.tables:
                rec.tables.append(table_name)
        db.save(rec)
    return rec


class ProjectionSubscription:
    """A projection as the engine's subscription: its catalog row holds the
    checkpoint, and the failure with its retry schedule."""

    def __init__(self, db: ReadModels, projection: Projection) -> None:
        self.db, self.projection = db, projection
        self.name = projection.name
        self.wanted = wanted(projection)
        self.retry = projection.retry
        self.adopting = False  # resuming a failed projection with its changed (fixed) code
        self.adopted_code = False
        self.applier: Applier | None = None

    def close(self) -> None:
        if self.applier is not None:
            self.applier.close()
            self.applier = None

    def open(self) -> tuple[int, RetryState]:
        self.close()
        rec = prepare(self.db, self.projection)
        self.applier = Applier(self.projection, self.db)  # its guard after prepare's own statements
        failure = rec.failure or {}
        # A failed projection whose code changed: that change is the fix. Resume with it.
        self.adopting = bool(failure) and rec.fingerprint != self.projection.fingerprint
        self.adopted_code = self.adopted_code or self.adopting
        # A schedule still running resumes; one that ran out, or a fix, starts afresh.
        resume = failure.get("retrying") and not self.adopting
        return rec.checkpoint, RetryState.from_dict(failure.get("schedule") if resume else None)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[int | None]:
        with self.db.transaction(self.name):
            current = self.db.record(self.name, lock=True)
            yield None if current is None else current.checkpoint

    def apply(self, rows: Sequence[StoredRow]) -> int:
        assert self.applier is not None, "open() first"
        return self.applier.apply(rows)

    def advance(self, checkpoint: int) -> None:
        self.db.move_checkpoint(self.name, checkpoint, self.projection.fingerprint if self.adopting else None)
        self.adopting = False

    def record_failure(self, checkpoint: int, failure: Failure, schedule: RetryState, last: bool) -> None:
        doc = {**failure.to_dict(), "attempts": schedule.attempt, "retrying": not last}
        self.db.record_failure(self.name, checkpoint, {**doc, "schedule": schedule.to_dict()})


def catch_up(
    store: EventStoreBackend,
    db: ReadModels,
    projection: Projection,
    *,
    to_position: int | None = None,
    batch_size: int = BATCH,
    progress: Progress | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    wait: bool = True,
) -> RunResult:
    """Apply every event after the checkpoint (up to `to_position`, default the
    head), retrying a failing handler as the projection says (`wait` False: a
    retry not yet due ends the run, its time in `retry_at`). Raises ProjectionFailed
    when the retries run out. Environment failures of the read-model database (a
    full disk, a read-only file, a lost server) raise esctl errors naming it; the
    batch being applied is rolled back."""
    started = time.perf_counter()
    subscription = ProjectionSubscription(db, projection)
    try:
        caught = catchup.catch_up(
            store,
            subscription,
            to_position=to_position,
            batch_size=batch_size,
            progress=progress,
            clock=clock,
            rng=rng,
            wait=wait,
        )
    except GaveUp as gave_up:
        raise ProjectionFailed(projection.name, gave_up.failure) from None
    except Exception as exc:
        error = db.translate(exc)
        if error is None:
            raise
        raise error from None
    finally:
        subscription.close()
    return RunResult(
        caught.name,
        caught.start,
        caught.checkpoint,
        caught.head,
        caught.applied,
        time.perf_counter() - started,
        subscription.adopted_code,
        caught.retry_at,
    )


class Follower:
    """Keeps projections caught up, each under its lease (`projection:NAME`), so
    a second follower waits, saying who holds it, and takes over within the lease
    time of one killed. A one-off `run` needs no lease: each batch re-reads the
    checkpoint under the projection's lock."""

    def __init__(
        self,
        store: EventStoreBackend,
        db: ReadModels,
        projections: Iterable[Projection],
        *,
        on_result: Callable[[RunResult], None],
        on_failure: Callable[[ProjectionFailed | ProjectionNeedsRebuild], None],
        on_wait: Callable[[str], None] = lambda note: None,
        clock: Clock | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.store, self.db = store, db
        self.waiting = {p.name: p for p in projections}  # not yet leased
        self.running: dict[str, Projection] = {}
        self.retry_at: dict[str, float] = {}
        self.on_result, self.on_failure, self.on_wait = on_result, on_failure, on_wait
        self.clock = clock or SystemClock()
        self.lease_seconds = lease_seconds
        self.failures: list[ProjectionFailed | ProjectionNeedsRebuild] = []
        self._said: set[str] = set()
        self._next_try = 0.0

    def run(self, poll_seconds: float, should_stop: Callable[[], bool]) -> None:
        try:
            # Quiet wake-ups too: a retry falls due, or a lease comes free, unseen by the feed.
            for changed in changes(self.store, poll_seconds, should_stop, quiet=True):
                self._take_leases()
                now = self.clock.now()
                for name, projection in list(self.running.items()):
                    if changed or self.retry_at.get(name, now + 1) <= now:
                        self._catch_up(projection)
                if not self.running and not self.waiting:
                    break
        except BaseException:
            self.db.rollback()  # the transaction has done so already, unless interrupted between BEGIN and its try
            raise
        finally:
            for name in self.running:
                with contextlib.suppress(Exception):
                    self.db.release_lease(_lease(name))

    def _take_leases(self) -> None:
        now = time.monotonic()
        if not self.waiting or now < self._next_try:
            return
        self._next_try = now + min(0.5, self.lease_seconds / 4)
        for name, projection in list(self.waiting.items()):
            holder = self.db.acquire_lease(_lease(name), self.lease_seconds)
            if holder is None:
                del self.waiting[name]
                self.running[name] = projection
                self._catch_up(projection)  # what came while another follower held it
            elif name not in self._said:
                self._said.add(name)
                self.on_wait(f"projection {name!r} is being followed by {holder}: waiting for it")

    def _catch_up(self, projection: Projection) -> None:
        name = projection.name
        try:
            result = catch_up(self.store, self.db, projection, clock=self.clock, wait=False)
        except (ProjectionFailed, ProjectionNeedsRebuild) as failed:
            del self.running[name]  # left behind: the others go on
            self.db.release_lease(_lease(name))
            self.failures.append(failed)
            self.on_failure(failed)
            return
        if result.retry_at is None:
            self.retry_at.pop(name, None)
        else:
            self.retry_at[name] = result.retry_at
        if result.applied or result.checkpoint != result.start:
            self.on_result(result)


def follow(
    store: EventStoreBackend,
    db: ReadModels,
    projections: Iterable[Projection],
    *,
    on_result: Callable[[RunResult], None],
    on_failure: Callable[[ProjectionFailed | ProjectionNeedsRebuild], None],
    on_wait: Callable[[str], None] = lambda note: None,
    poll_seconds: float = 0.2,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Clock | None = None,
    lease_seconds: float = LEASE_SECONDS,
) -> list[ProjectionFailed | ProjectionNeedsRebuild]:
    """Keep the projections caught up until `should_stop` (asked at least every
    `poll_seconds`); new events are noticed through the store's change feed. A
    failing projection is reported and left behind; the others go on. Returns
    the failures.

    A KeyboardInterrupt (Ctrl-C, or whatever a signal handler raises) stops it: the
    batch being applied is rolled back (each batch commits whole with its
    checkpoint, so nothing is lost) and the exception goes on to the caller."""
    follower = Follower(
        store,
        db,
        projections,
        on_result=on_result,
        on_failure=on_failure,
        on_wait=on_wait,
        clock=clock,
        lease_seconds=lease_seconds,
    )
    follower.run(poll_seconds, should_stop)
    return follower.failures


def _lease(name: str) -> str:
    return f"projection:{name}"
