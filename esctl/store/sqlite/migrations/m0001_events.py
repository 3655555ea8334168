"""Schema 1: the events table, its indexes, and the triggers of the first release."""

from __future__ import annotations

import sqlite3

from esctl.store.sqlite.migrations.steps import run_script

VERSION = 1
SUMMARY = "the events table, append-only"

DDL = """
CREATE TABLE events (
    position    INTEGER PRIMARY KEY,               -- global, 1-based, gapless, commit order
    stream      TEXT    NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    type        TEXT    NOT NULL,
    data        TEXT    NOT NULL,                  -- a JSON object
    metadata    TEXT    NOT NULL,                  -- a JSON object
    id          TEXT    NOT NULL,                  -- a UUID, v7 when generated
    recorded_at TEXT    NOT NULL,                  -- UTC, ISO 8601, microseconds, Z
    category    TEXT    GENERATED ALWAYS AS (
        CASE WHEN instr(stream, '-') > 0 THEN substr(stream, 1, instr(stream, '-') - 1)
             ELSE stream END) VIRTUAL
);
CREATE UNIQUE INDEX events_stream_version ON events (stream, version);
CREATE UNIQUE INDEX events_id ON events (id);

-- Append-only, even from a plain sqlite3 shell.
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE is refused'); END;
CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE is refused'); END;

-- Gapless positions and versions; a reused id is refused before INSERT OR REPLACE
-- could delete the stored event.
CREATE TRIGGER events_gapless BEFORE INSERT ON events
WHEN NEW.position IS NOT (SELECT coalesce(max(position), 0) + 1 FROM events)
  OR NEW.version IS NOT (SELECT coalesce(max(version), 0) + 1 FROM events
                         WHERE stream = NEW.stream)
  OR EXISTS (SELECT 1 FROM events WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'events must be appended with the next position and version and a new id'); END;

CREATE TABLE esctl_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def up(conn: sqlite3.Connection) -> None:
    run_script(conn, DDL)
