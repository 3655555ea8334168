"""Catching a projection up from its checkpoint, batch by batch.

Each batch is one transaction of the read-model database: the handlers' writes
and the new checkpoint commit together, so an event is never applied twice or
skipped, whatever fails or is interrupted. A handler that raises rolls its batch
back, the failing event is recorded in the catalog (status `failed`) and the next
run starts again from the same event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from esctl.errors import StoreError
from esctl.projections.apply import Applier, HandlerFailed, ProjectionFailed
from esctl.projections.definition import Projection
from esctl.store.protocol import EventStoreBackend
from esctl.store.readmodels import ReadModels, Record
from esctl.store.rows import StoredRow
from esctl.subscriptions.filter import EventFilter
from esctl.subscriptions.follow import changes

BATCH = 2_000  # events per transaction when catching up
Progress = Callable[[int], None]


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


def read_batch(
    store: EventStoreBackend, projection: Projection, after: int, upto: int, limit: int
) -> tuple[list[StoredRow], int]:
    """Raw rows of the events after `after` up to `upto` that the projection
    handles, and the checkpoint reached once they are applied."""
    wanted = EventFilter.of(categories=projection.categories or (), types=projection.event_types)
    return wanted.read(store, after, upto, limit)


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


def catch_up(
    store: EventStoreBackend,
    db: ReadModels,
    projection: Projection,
    *,
    to_position: int | None = None,
    batch_size: int = BATCH,
    progress: Progress | None = None,
) -> RunResult:
    """Apply every event after the checkpoint (up to `to_position`, default the head).
    Environment failures of the read-model database (a full disk, a read-only
    file, a lost server) raise esctl errors naming it; the batch being applied is
    rolled back."""
    try:
        return _catch_up(store, db, projection, to_position, batch_size, progress)
    except Exception as exc:
        error = db.translate(exc)
        if error is None:
            raise
        raise error from None


def _catch_up(
    store: EventStoreBackend,
    db: ReadModels,
    projection: Projection,
    to_position: int | None,
    batch_size: int,
    progress: Progress | None,
) -> RunResult:
    started = time.perf_counter()
    rec = prepare(db, projection)
    # A failed projection whose code changed: that change is the fix. Resume with it.
    adopted = rec.failure is not None and rec.fingerprint != projection.fingerprint
    checkpoint = rec.checkpoint
    result = RunResult(projection.name, checkpoint, checkpoint, 0, 0, adopted_code=adopted)
    applier = Applier(projection, db)
    try:
        while True:
            head = store.head_position()
            upto = head if to_position is None else min(head, to_position)
            result.head = head
            if checkpoint >= upto:
                break
            rows, new_checkpoint = read_batch(store, projection, checkpoint, upto, batch_size)
            try:
                with db.transaction(projection.name):
                    current = db.record(projection.name, lock=True)
                    moved = current is None or current.checkpoint != checkpoint
                    if not moved:
                        result.applied += applier.apply(rows)
                        adopt = projection.fingerprint if adopted else None
                        db.move_checkpoint(projection.name, new_checkpoint, adopt)
                        adopted = False
            except HandlerFailed as failed:
                db.record_failure(projection.name, checkpoint, failed.failure.to_dict())
                result.checkpoint = checkpoint
                raise ProjectionFailed(projection.name, failed.failure) from None
            if moved:
                # Another runner, a rebuild or a reset moved it: go on from there.
                checkpoint = prepare(db, projection).checkpoint if current is None else current.checkpoint
                continue
            if progress is not None:
                progress(new_checkpoint - checkpoint)
            checkpoint = new_checkpoint
    finally:
        applier.close()
    result.checkpoint = checkpoint
    result.seconds = time.perf_counter() - started
    return result


def follow(
    store: EventStoreBackend,
    db: ReadModels,
    projections: Iterable[Projection],
    *,
    on_result: Callable[[RunResult], None],
    on_failure: Callable[[ProjectionFailed | ProjectionNeedsRebuild], None],
    poll_seconds: float = 0.2,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[ProjectionFailed | ProjectionNeedsRebuild]:
    """Keep the projections caught up until `should_stop`. A failing projection is
    reported and left behind; the others go on. New events are noticed through
    the store's change feed (`wait_for_change`); `should_stop` is asked at least
    every `poll_seconds`.

    A KeyboardInterrupt (Ctrl-C, or whatever a signal handler raises) stops it: the
    batch being applied is rolled back (each batch commits whole with its
    checkpoint, so nothing is lost) and the exception goes on to the caller."""
    active = list(projections)
    failures: list[ProjectionFailed | ProjectionNeedsRebuild] = []
    try:
        for _ in changes(store, poll_seconds, should_stop):
            for projection in list(active):
                try:
                    result = catch_up(store, db, projection)
                except (ProjectionFailed, ProjectionNeedsRebuild) as failed:
                    active.remove(projection)
                    failures.append(failed)
                    on_failure(failed)
                    continue
                if result.applied or result.checkpoint != result.start:
                    on_result(result)
            if not active:
                break
    except BaseException:
        db.rollback()  # the transaction has done so already, unless interrupted between BEGIN and its try
        raise
    return failures
