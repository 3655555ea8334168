"""Resetting a projection: drop its tables (and any shadow tables) and its checkpoint."""

from __future__ import annotations

import sqlite3

from esctl.errors import ConcurrencyError
from esctl.projections import catalog
from esctl.transaction import immediate


def reset(conn: sqlite3.Connection, name: str) -> list[str] | None:
    """Drop the projection's tables and catalog row in one transaction; returns the
    tables dropped, or None when the read models know no projection of that name.
    ConcurrencyError while a rebuild of it runs: its shadow tables are not ours to drop."""
    with immediate(conn):
        holder = catalog.rebuilder(conn, name)
        if holder is not None:
            raise ConcurrencyError(
                f"cannot reset projection {name!r}: it is being rebuilt by {holder}; reset it when that ends"
            )
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
