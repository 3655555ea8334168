"""Reading a store whose schema is older than this esctl's.

TEMP views, private to the connection, stand in for the tables that later steps
add, so every read works on such a store before `esctl migrate` (at the cost the
old schema had: these views scan the events). Writes are refused until then."""

from __future__ import annotations

import sqlite3

from esctl.store.sqlite.migrations import register_functions
from esctl.store.sqlite.migrations.steps import run_script

_VIEWS = """
CREATE TEMP VIEW IF NOT EXISTS streams AS
    SELECT stream, category, max(version) AS version, min(position) AS first_position,
           max(position) AS last_position, esctl_sort_key(stream) AS sort_key
    FROM events GROUP BY stream;
CREATE TEMP VIEW IF NOT EXISTS esctl_counts AS
    SELECT 'category' AS kind, category AS name, count(*) AS count FROM events GROUP BY category
    UNION ALL SELECT 'type', type, count(*) FROM events GROUP BY type
    UNION ALL SELECT 'streams', '', count(DISTINCT stream) FROM events;
"""


def install(conn: sqlite3.Connection) -> None:
    """Views for a schema-1 store (on a connection with esctl's SQL functions)."""
    register_functions(conn)
    run_script(conn, _VIEWS)


def remove(conn: sqlite3.Connection) -> None:
    conn.execute("DROP VIEW IF EXISTS temp.streams")
    conn.execute("DROP VIEW IF EXISTS temp.esctl_counts")
