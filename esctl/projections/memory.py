"""Running a projection on an in-memory SQLite: given events, then rows. For tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from esctl import codec
from esctl.projections.apply import Applier, HandlerFailed, ProjectionFailed
from esctl.projections.catalog import create_table
from esctl.projections.definition import quote

if TYPE_CHECKING:
    from esctl.events import RecordedEvent
    from esctl.projections.definition import Projection


def run_in_memory(projection: Projection, events: Iterable[RecordedEvent]) -> dict[str, list[dict[str, Any]]]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute("BEGIN")
        for name, table in projection.tables.items():
            create_table(conn, table, name, 1)
        rows = [
            (
                e.stream,
                e.version,
                e.position,
                e.type,
                codec.dumps_text(e.data),
                codec.dumps_text(e.metadata),
                e.id,
                e.recorded_at,
            )
            for e in events
        ]
        applier = Applier(projection, conn, {name: name for name in projection.tables})
        try:
            applier.apply(rows)
        except HandlerFailed as failed:
            raise ProjectionFailed(projection.name, failed.failure) from None
        finally:
            applier.close()
        conn.execute("COMMIT")
        return {name: table_rows(conn, name, table.key) for name, table in projection.tables.items()}
    finally:
        conn.close()


def table_rows(conn: sqlite3.Connection, name: str, key: tuple[str, ...]) -> list[dict[str, Any]]:
    order = ", ".join(quote(k) for k in key) if key else "rowid"
    cursor = conn.execute(f"SELECT * FROM {quote(name)} ORDER BY {order}")
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor]
