"""Rebuilding a projection from position 1 into shadow tables, swapped in at the end.

Readers keep seeing the old tables until the swap commits: the shadow tables fill
in batches of their own transactions, then one final transaction applies the last
events up to the head, replaces the old tables by the shadows and moves the
checkpoint. A failure drops the shadows and leaves the old tables, checkpoint and
status exactly as they were.

Handlers see no difference from `run`: their own SQL naming their tables reads the
rows being rebuilt (how, is the read-model backend's: esctl.store.readmodels).
Only one rebuild of a projection runs at a time (the backend's rebuild claim).
"""

from __future__ import annotations

import contextlib
import time

from esctl.errors import ConcurrencyError, StoreError
from esctl.projections.apply import Applier, ProjectionFailed
from esctl.projections.definition import Projection
from esctl.projections.runner import Progress, RunResult, read_batch
from esctl.store.protocol import EventStoreBackend
from esctl.store.readmodels import ReadModels, Record
from esctl.subscriptions.catchup import HandlerFailed

BATCH = 10_000  # events per shadow-table transaction


def rebuild(
    store: EventStoreBackend,
    db: ReadModels,
    projection: Projection,
    *,
    batch_size: int = BATCH,
    progress: Progress | None = None,
) -> RunResult:
    started = time.perf_counter()
    name = projection.name
    try:
        previous, generation = _start(db, projection)
    except BaseException:
        db.release_rebuild(name)  # a claim that outlives its transaction (PostgreSQL's) too
        raise
    result = RunResult(name, previous.checkpoint if previous else 0, 0, 0, 0)
    checkpoint, applied = 0, 0
    applier: Applier | None = None
    try:
        applier = Applier(projection, db, shadow=True)
        # Bulk of the work: batches into the shadow tables, each its own transaction.
        while True:
            head = store.head_position()
            rows, reached = read_batch(store, projection, checkpoint, head, batch_size)
            if reached >= head:
                break  # the rest goes into the final transaction
            with db.transaction(name):
                _still_claimed(db, name)
                applied += applier.apply(rows)
            if progress is not None:
                progress(reached - checkpoint)
            checkpoint = reached
        # Final transaction: the last events, then the swap. With the tables in the
        # store's SQLite file this holds the write lock, so the head cannot move
        # meanwhile; elsewhere, events after it are the next run's.
        with db.transaction(name):
            _still_claimed(db, name)
            while True:
                head = store.head_position()
                rows, reached = read_batch(store, projection, checkpoint, head, batch_size)
                applied += applier.apply(rows)
                if progress is not None:
                    progress(reached - checkpoint)
                checkpoint = reached
                if reached >= head:
                    break
            current = db.record(name, lock=True)
            db.swap_in_shadows(name, current.tables if current else [], list(projection.tables))
            db.save(Record(name, checkpoint, projection.fingerprint, list(projection.tables), generation))
    except BaseException as exc:
        lost = _lost(db, projection) if isinstance(exc, HandlerFailed) else []
        with contextlib.suppress(Exception):  # the error that led here is the one to tell
            _abandon(db, projection)
        if lost:
            # Not the handler's fault: someone dropped the tables it was writing.
            raise StoreError(
                f"rebuild of projection {name!r} lost its shadow tables ({', '.join(lost)})"
                " to someone else: nothing changed; rebuild again"
            ) from None
        if isinstance(exc, HandlerFailed):
            raise ProjectionFailed(name, exc.failure, "rebuild failed (nothing changed)") from None
        error = db.translate(exc) if isinstance(exc, Exception) else None
        if error is not None:
            raise error from None
        raise
    finally:
        if applier is not None:
            applier.close()
        db.release_rebuild(name)  # after the swap commits, or the shadows are dropped
    result.checkpoint = result.head = checkpoint
    result.applied = applied
    result.seconds = time.perf_counter() - started
    return result


def _start(db: ReadModels, projection: Projection) -> tuple[Record | None, int]:
    """Claim the rebuild and create empty shadow tables; returns the current record
    and the new build's generation."""
    name = projection.name
    # Refuse at once, without waiting for the write lock a running rebuild may hold.
    holder = db.rebuilder(name)
    if holder is not None:
        raise ConcurrencyError(f"projection {name!r} is being rebuilt by {holder}: wait for it to finish")
    with db.transaction(name):
        db.ensure_catalog()
        db.check_ownership(name, list(projection.tables))
        db.claim_rebuild(name)
        previous = db.record(name, lock=True)
        generation = previous.generation + 1 if previous else 1
        db.drop_tables(name, list(projection.tables), shadow=True)  # left from an interrupted rebuild
        for table in projection.tables.values():
            db.create_table(name, table, generation, shadow=True)
    return previous, generation


def _still_claimed(db: ReadModels, name: str) -> None:
    if not db.holds_rebuild(name):
        raise StoreError(
            f"rebuild of projection {name!r} lost its claim (it was not renewed in time and another"
            " took it): nothing changed; rebuild again"
        )


def _lost(db: ReadModels, projection: Projection) -> list[str]:
    present = db.present(projection.name, shadow=True)
    return [t for t in projection.tables if t.lower() not in present]


def _abandon(db: ReadModels, projection: Projection) -> None:
    """Drop the shadows: the old tables stay as they were (shadows this cannot drop
    go with the next rebuild's start)."""
    db.rollback()
    with db.transaction(projection.name):
        db.drop_tables(projection.name, list(projection.tables), shadow=True)
