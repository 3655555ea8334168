"""The schema as numbered steps: a new store runs them all, `esctl migrate` runs
the ones a store has not had. Each step is a module `mNNNN_<what>.py` with VERSION,
SUMMARY and `up(conn)`, and runs inside the caller's transaction, so an upgrade
that fails or is killed leaves the store as it was."""

from __future__ import annotations

import os
import sqlite3

from esctl.store.natural import sql_sort_key
from esctl.store.sqlite.migrations import m0001_events, m0002_streams_and_counts
from esctl.store.steps import Step

# A test names a FIFO here to stop an upgrade just before it commits (see
# tests/test_migrations.py): the step writes its version to the FIFO and waits.
BARRIER_ENV = "ESCTL_TEST_MIGRATION_BARRIER"


STEPS = tuple(Step(m.VERSION, m.SUMMARY, m) for m in (m0001_events, m0002_streams_and_counts))
LATEST = STEPS[-1].version


def pending(version: int) -> list[Step]:
    """The steps a store at schema `version` has not had, in order."""
    return [step for step in STEPS if step.version > version]


def register_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions the steps use (and the views of esctl.store.sqlite.compat)."""
    conn.create_function("esctl_sort_key", 1, sql_sort_key, deterministic=True)


def upgrade(conn: sqlite3.Connection, version: int, *, upto: int | None = None) -> list[Step]:
    """Run the steps after `version` (up to `upto`, default all) in the caller's
    transaction, setting the schema version (PRAGMA user_version, part of the
    transaction) after each."""
    register_functions(conn)
    steps = [step for step in pending(version) if upto is None or step.version <= upto]
    for step in steps:
        step.module.up(conn)
        conn.execute(f"PRAGMA user_version = {step.version}")
    barrier = os.environ.get(BARRIER_ENV)
    if barrier and steps and version > 0:
        _wait_at_barrier(barrier, steps[-1].version)
    return steps


def _wait_at_barrier(fifo: str, version: int) -> None:
    import time

    with open(fifo, "w") as f:
        f.write(f"{version}\n")
    while True:  # until the test kills this process
        time.sleep(60)
