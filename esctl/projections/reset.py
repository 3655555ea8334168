"""Resetting a projection: drop its tables (and any shadow tables) and its checkpoint."""

from __future__ import annotations

import sqlite3

from esctl.projections import catalog


def reset(conn: sqlite3.Connection, name: str) -> list[str] | None:
    """Drop the projection's tables and catalog row in one transaction; returns the
    tables dropped, or None when the read models know no projection of that name."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        rec = catalog.record(conn, name)
        if rec is None:
            conn.execute("ROLLBACK")
            return None
        present = catalog.existing_tables(conn)
        dropped = [t for t in rec.tables if t.lower() in present]
        for table in rec.tables:
            catalog.drop_table(conn, table)
            catalog.drop_table(conn, catalog.shadow_name(table))
        conn.execute(f"DELETE FROM {catalog.CATALOG} WHERE name = ?", (name,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return dropped
