"""Running a projection on an in-memory SQLite: given events, then rows. For tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from esctl import codec
from esctl.projections.apply import Applier, ProjectionFailed
from esctl.projections.definition import quote
from esctl.store.sqlite.readmodels import SQLiteReadModels
from esctl.subscriptions.catchup import HandlerFailed

if TYPE_CHECKING:
    from esctl.events import RecordedEvent
    from esctl.projections.definition import Projection


def run_in_memory(projection: Projection, events: Iterable[RecordedEvent]) -> dict[str, list[dict[str, Any]]]:
    db = SQLiteReadModels.in_memory()
    try:
        db.execute("BEGIN")
        for table in projection.tables.values():
            db.create_table(projection.name, table, 1)
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
        applier = Applier(projection, db)
        try:
            applier.apply(rows)
        except HandlerFailed as failed:
            raise ProjectionFailed(projection.name, failed.failure) from None
        finally:
            applier.close()
        db.execute("COMMIT")
        return {name: table_rows(db, name, table.key) for name, table in projection.tables.items()}
    finally:
        db.close()


def table_rows(db: SQLiteReadModels, name: str, key: tuple[str, ...]) -> list[dict[str, Any]]:
    order = ", ".join(quote(k) for k in key) if key else "rowid"
    cursor = db.execute(f"SELECT * FROM {quote(name)} ORDER BY {order}")
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor]
