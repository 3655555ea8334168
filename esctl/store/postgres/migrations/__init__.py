"""The PostgreSQL schema as numbered steps, numbered as SQLite's are: a store at
schema N has the same tables and guarantees on either backend. Each step is a
module with VERSION, SUMMARY and `up(cursor)` and runs in the caller's transaction."""

from __future__ import annotations

from typing import Any

from esctl.store.postgres.migrations import m0002_events
from esctl.store.steps import Step

STEPS = tuple(Step(m.VERSION, m.SUMMARY, m) for m in (m0002_events,))
LATEST = STEPS[-1].version


def upgrade(conn: Any, version: int) -> list[Step]:
    """Run the steps after `version` in the caller's transaction, recording the
    schema version in esctl_meta after each."""
    steps = [step for step in STEPS if step.version > version]
    for step in steps:
        step.module.up(conn)
        conn.execute(
            "INSERT INTO esctl_meta (key, value) VALUES ('schema_version', %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(step.version),),
        )
    return steps
