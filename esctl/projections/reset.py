"""Resetting a projection: drop its tables (and any shadow tables) and its checkpoint."""

from __future__ import annotations

import sqlite3

from esctl.projections import catalog
from esctl.transaction import immediate


def reset(conn: sqlite3.Connection, name: str) -> list[str] | None:
    """Drop the projection's tables and catalog row in one transaction; returns the
    tables dropped, or None when the read models know no projection of that name.
    ConcurrencyError while a rebuild of it runs: its shadow tables are not ours to drop."""
    refusal = f"cannot reset projection {name!r}: it is being rebuilt"
    catalog.refuse_while_rebuilt(conn, name, refusal)  # at once, not after the rebuild's lock
    with immediate(conn):
        catalog.refuse_while_rebuilt(conn, name, refusal)
        rec = catalog.record(conn, name)
        if rec is None:
            return None
        present = catalog.existing_tables(conn)
        dropped = [t for t in rec.tables if t.lower() in present]
        for table in rec.tables:
            catalog.drop_table(conn, table)
            catalog.drop_table(conn, catalog.shadow_name(table))
        conn.execute(f"DELETE FROM {catalog.CATALOG} WHERE name = ?", (name,))
    return dropped
