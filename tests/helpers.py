"""Small helpers shared by test modules."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

# Seconds a test waits for another process before it fails: a net against hangs
# only. Every wait is for a condition (a file, a line, an exit), never for time to
# pass, so no result depends on this number.
HANG = 60.0


def file_digest(path: Path) -> str:
    """The bytes of a store and its WAL: 'unchanged' means exactly this."""
    h = hashlib.sha256()
    for p in (path, Path(str(path) + "-wal")):
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = HANG) -> None:
    """Return once condition() holds (checked every 10 ms); fail the test, naming
    `what`, if it still does not after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(0.01)


def derived(conn: sqlite3.Connection) -> tuple[list, list]:
    """The streams table and the counters, and the same computed from the events
    (SQL that SQLite and PostgreSQL both run; `conn` is either's connection)."""
    kept = (
        conn.execute(
            "SELECT stream, category, version, first_position, last_position FROM streams ORDER BY stream"
        ).fetchall(),
        conn.execute("SELECT kind, name, count FROM esctl_counts WHERE count > 0 ORDER BY 1, 2").fetchall(),
    )
    computed = (
        conn.execute(
            "SELECT stream, category, max(version), min(position), max(position)"
            " FROM events GROUP BY stream, category ORDER BY stream"
        ).fetchall(),
        conn.execute(
            "SELECT * FROM (SELECT 'category' AS kind, category, count(*) AS n FROM events GROUP BY category"
            " UNION ALL SELECT 'streams', '', count(DISTINCT stream) FROM events"
            " UNION ALL SELECT 'type', type, count(*) FROM events GROUP BY type) AS d WHERE n > 0 ORDER BY 1, 2"
        ).fetchall(),
    )
    return kept, computed


def exported(path: Path) -> bytes:
    """The store's events as `esctl export` writes them."""
    from esctl.ndjson import envelope_line
    from esctl.store import EventStore

    with EventStore.open(path) as store:
        return b"".join(envelope_line(row) for row in store.read_all(raw=True))


def read_models_of(store: Any) -> Any:
    """The store's read models where they live by default (created if need be):
    its SQLite file, or its PostgreSQL database (tests.postgres.read_models_probe)."""
    from esctl.store import EventStore
    from esctl.store.sqlite.readmodels import SQLiteReadModels

    if isinstance(store, EventStore):
        return SQLiteReadModels.open(store.path, create=True)
    from tests import postgres

    return postgres.read_models_probe(store)
