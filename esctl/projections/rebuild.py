"""Rebuilding a projection from position 1 into shadow tables, swapped in at the end.

Readers keep seeing the old tables until the swap commits: the shadow tables
(`esctl_shadow_<table>`) fill in batches of their own transactions, then one final
transaction applies the last events up to the head, drops the old tables, renames
the shadows and moves the checkpoint. A failure drops the shadows and leaves the old
tables, checkpoint and status exactly as they were.

Handlers see no difference from `run`: on the rebuilding connection a temporary view
under each table's own name shows its shadow (SQLite looks names up in `temp` before
`main`), so a handler's own SQL naming its tables reads the rows being rebuilt.
Only one rebuild of a projection runs at a time (catalog.claim_rebuild).
"""

from __future__ import annotations

import sqlite3
import time

from esctl.errors import StoreError
from esctl.projections import catalog
from esctl.projections.apply import Applier, HandlerFailed, ProjectionFailed
from esctl.projections.definition import Projection, quote
from esctl.projections.runner import Progress, RunResult, read_batch
from esctl.store import EventStore
from esctl.transaction import immediate

BATCH = 10_000  # events per shadow-table transaction


def rebuild(
    store: EventStore,
    conn: sqlite3.Connection,
    projection: Projection,
    *,
    batch_size: int = BATCH,
    progress: Progress | None = None,
) -> RunResult:
    started = time.perf_counter()
    shadows = {name: catalog.shadow_name(name) for name in projection.tables}
    previous, generation = _start(conn, projection, shadows)
    result = RunResult(projection.name, previous.checkpoint if previous else 0, 0, 0, 0)
    checkpoint, applied = 0, 0
    applier = Applier(projection, conn, shadows)
    try:
        _show_shadows(conn, shadows)
        # Bulk of the work: batches into the shadow tables, each its own transaction.
        while True:
            head = store.head_position()
            rows, reached = read_batch(store, projection, checkpoint, head, batch_size)
            if reached >= head:
                break  # the rest goes into the final transaction
            with immediate(conn):
                applied += applier.apply(rows)
            if progress is not None:
                progress(reached - checkpoint)
            checkpoint = reached
        # Final transaction: the last events, then the swap. With the tables in the
        # store's file this holds the write lock, so the head cannot move meanwhile.
        with immediate(conn):
            while True:
                head = store.head_position()
                rows, reached = read_batch(store, projection, checkpoint, head, batch_size)
                applied += applier.apply(rows)
                if progress is not None:
                    progress(reached - checkpoint)
                checkpoint = reached
                if reached >= head:
                    break
            _hide_shadows(conn, shadows)
            _swap(conn, projection, shadows, generation, checkpoint)
            catalog.release_rebuild(conn, projection.name)
    except BaseException as exc:
        lost = _lost(conn, shadows) if isinstance(exc, HandlerFailed) else []
        _abandon(conn, projection.name, shadows)
        if lost:
            # Not the handler's fault: someone dropped the tables it was writing.
            raise StoreError(
                f"rebuild of projection {projection.name!r} lost its shadow tables ({', '.join(lost)})"
                " to someone else: nothing changed; rebuild again"
            ) from None
        if isinstance(exc, HandlerFailed):
            raise ProjectionFailed(projection.name, exc.failure, "rebuild failed (nothing changed)") from None
        raise
    finally:
        applier.close()
    result.checkpoint = result.head = checkpoint
    result.applied = applied
    result.seconds = time.perf_counter() - started
    return result


def _start(
    conn: sqlite3.Connection, projection: Projection, shadows: dict[str, str]
) -> tuple[catalog.Record | None, int]:
    """Claim the rebuild and create empty shadow tables; returns the current record
    and the new build's generation."""
    # Refuse at once, without waiting for the write lock a running rebuild may hold.
    catalog.refuse_while_rebuilt(conn, projection.name, f"projection {projection.name!r} is being rebuilt")
    with immediate(conn):
        catalog.ensure_catalog(conn)
        catalog.check_ownership(conn, projection)
        catalog.claim_rebuild(conn, projection.name)
        previous = catalog.record(conn, projection.name)
        generation = previous.generation + 1 if previous else 1
        for name, table in projection.tables.items():
            catalog.drop_table(conn, shadows[name])  # left over from an interrupted rebuild
            catalog.create_table(conn, table, shadows[name], generation)
    return previous, generation


def _show_shadows(conn: sqlite3.Connection, shadows: dict[str, str]) -> None:
    for name, shadow in shadows.items():
        conn.execute(f"CREATE TEMP VIEW {quote(name)} AS SELECT * FROM main.{quote(shadow)}")


def _hide_shadows(conn: sqlite3.Connection, shadows: dict[str, str]) -> None:
    for name in shadows:
        conn.execute(f"DROP VIEW IF EXISTS temp.{quote(name)}")


def _swap(
    conn: sqlite3.Connection,
    projection: Projection,
    shadows: dict[str, str],
    generation: int,
    checkpoint: int,
) -> None:
    previous = catalog.record(conn, projection.name)
    old_tables = previous.tables if previous else []
    # Legacy rename leaves views that name the table alone: they see the new one.
    conn.execute("PRAGMA legacy_alter_table = ON")
    try:
        for name in {*old_tables, *projection.tables}:
            catalog.drop_table(conn, name)
        for name, shadow in shadows.items():
            conn.execute(f"ALTER TABLE {quote(shadow)} RENAME TO {quote(name)}")
    finally:
        conn.execute("PRAGMA legacy_alter_table = OFF")
    record = catalog.Record(
        projection.name, checkpoint, projection.fingerprint, list(projection.tables), generation
    )
    catalog.save(conn, record)


def _lost(conn: sqlite3.Connection, shadows: dict[str, str]) -> list[str]:
    present = catalog.existing_tables(conn)
    return [shadow for shadow in shadows.values() if shadow.lower() not in present]


def _abandon(conn: sqlite3.Connection, name: str, shadows: dict[str, str]) -> None:
    """Drop the shadows and give the claim back: the old tables stay as they were."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    _hide_shadows(conn, shadows)
    with immediate(conn):
        for shadow in shadows.values():
            catalog.drop_table(conn, shadow)
        catalog.release_rebuild(conn, name)
