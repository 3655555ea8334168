"""Rebuilding a projection from position 1 into shadow tables, swapped in at the end.

Readers keep seeing the old tables until the swap commits: the shadow tables
(`esctl_shadow_<table>`) fill in batches of their own transactions, then one final
transaction applies the last events up to the head, drops the old tables, renames
the shadows and moves the checkpoint. A failure drops the shadows and leaves the old
tables, checkpoint and status exactly as they were.
"""

from __future__ import annotations

import sqlite3
import time

from esctl.projections import catalog
from esctl.projections.apply import Applier, HandlerFailed, ProjectionFailed, Upcast
from esctl.projections.definition import Projection, quote
from esctl.projections.runner import Progress, RunResult, read_batch
from esctl.store import EventStore

BATCH = 10_000  # events per shadow-table transaction


def rebuild(
    store: EventStore,
    conn: sqlite3.Connection,
    projection: Projection,
    *,
    upcast: Upcast | None = None,
    filter_types: bool = True,
    batch_size: int = BATCH,
    progress: Progress | None = None,
) -> RunResult:
    started = time.perf_counter()
    shadows = {name: catalog.shadow_name(name) for name in projection.tables}
    generation = _create_shadows(conn, projection, shadows)
    applier = Applier(projection, conn, shadows, upcast)
    checkpoint, applied = 0, 0
    previous = catalog.record(conn, projection.name)
    result = RunResult(projection.name, previous.checkpoint if previous else 0, 0, 0, 0)
    try:
        # Bulk of the work: batches into the shadow tables, each its own transaction.
        while True:
            head = store.head_position()
            rows, reached = read_batch(
                store, projection, checkpoint, head, batch_size, filter_types=filter_types
            )
            if reached >= head:
                break  # the rest goes into the final transaction
            conn.execute("BEGIN IMMEDIATE")
            applied += applier.apply(rows)
            conn.execute("COMMIT")
            if progress is not None:
                progress(reached - checkpoint)
            checkpoint = reached
        # Final transaction: the last events, then the swap. With the tables in the
        # store's file this holds the write lock, so the head cannot move meanwhile.
        conn.execute("BEGIN IMMEDIATE")
        while True:
            head = store.head_position()
            rows, reached = read_batch(
                store, projection, checkpoint, head, batch_size, filter_types=filter_types
            )
            applied += applier.apply(rows)
            if progress is not None:
                progress(reached - checkpoint)
            checkpoint = reached
            if reached >= head:
                break
        _swap(conn, projection, shadows, generation, checkpoint)
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        _drop_shadows(conn, shadows)
        if isinstance(exc, HandlerFailed):
            raise ProjectionFailed(projection.name, exc.failure, "rebuild failed (nothing changed)") from None
        raise
    finally:
        applier.close()
    result.checkpoint = result.head = checkpoint
    result.applied = applied
    result.seconds = time.perf_counter() - started
    return result


def _create_shadows(conn: sqlite3.Connection, projection: Projection, shadows: dict[str, str]) -> int:
    conn.execute("BEGIN IMMEDIATE")
    try:
        catalog.ensure_catalog(conn)
        catalog.check_ownership(conn, projection)
        previous = catalog.record(conn, projection.name)
        generation = previous.generation + 1 if previous else 1
        for name, table in projection.tables.items():
            catalog.drop_table(conn, shadows[name])  # left over from an interrupted rebuild
            catalog.create_table(conn, table, shadows[name], generation)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return generation


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
    record = catalog.Record(projection.name, checkpoint, projection.fingerprint, list(projection.tables))
    record.generation = generation
    catalog.save(conn, record)


def _drop_shadows(conn: sqlite3.Connection, shadows: dict[str, str]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for shadow in shadows.values():
            catalog.drop_table(conn, shadow)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
