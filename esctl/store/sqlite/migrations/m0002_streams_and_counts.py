"""Schema 2: a row per stream and counters, kept in the append transaction, so that
the triggers check one row instead of scanning, and `info`, `streams` and the
filtered reads cost what they return rather than the size of the store."""

from __future__ import annotations

import sqlite3

from esctl.store.sqlite.migrations.steps import run_script

VERSION = 2
SUMMARY = "a streams table, event counters, indexes on type and category"

DDL = """
DROP TRIGGER events_gapless;

CREATE TABLE streams (
    stream         TEXT    PRIMARY KEY,
    category       TEXT    NOT NULL,
    version        INTEGER NOT NULL,               -- the version of its last event
    first_position INTEGER NOT NULL,
    last_position  INTEGER NOT NULL,
    sort_key       BLOB                            -- natural order (esctl.store.natural);
                                                   -- NULL when written around esctl
) WITHOUT ROWID;

CREATE TABLE esctl_counts (
    kind  TEXT    NOT NULL,                        -- 'category', 'type' or 'streams'
    name  TEXT    NOT NULL,                        -- '' for 'streams'
    count INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;

INSERT INTO streams (stream, category, version, first_position, last_position, sort_key)
    SELECT stream, category, max(version), min(position), max(position), esctl_sort_key(stream)
    FROM events GROUP BY stream;
INSERT INTO esctl_counts (kind, name, count)
    SELECT 'category', category, count(*) FROM events GROUP BY category;
INSERT INTO esctl_counts (kind, name, count)
    SELECT 'type', type, count(*) FROM events GROUP BY type;
INSERT INTO esctl_counts (kind, name, count) SELECT 'streams', '', count(*) FROM streams;

CREATE INDEX streams_sort_key ON streams (sort_key);
CREATE INDEX streams_category ON streams (category, sort_key);
CREATE INDEX events_type ON events (type);
CREATE INDEX events_category ON events (category);

-- What a writer other than esctl gets. esctl's own connection runs with triggers
-- off and does the same per chunk (esctl.store.sqlite.triggers).
CREATE TRIGGER events_next BEFORE INSERT ON events
WHEN NEW.position IS NOT (SELECT coalesce(max(position), 0) + 1 FROM events)
  OR NEW.version IS NOT coalesce((SELECT version FROM streams WHERE stream = NEW.stream), 0) + 1
  OR EXISTS (SELECT 1 FROM events WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'events must be appended with the next position and version and a new id'); END;

CREATE TRIGGER events_tracked AFTER INSERT ON events
BEGIN
    UPDATE streams SET version = NEW.version, last_position = NEW.position WHERE stream = NEW.stream;
    INSERT INTO streams (stream, category, version, first_position, last_position)
        SELECT NEW.stream, NEW.category, NEW.version, NEW.position, NEW.position WHERE NEW.version = 1;
    INSERT INTO esctl_counts (kind, name, count) VALUES ('category', NEW.category, 1)
        ON CONFLICT DO UPDATE SET count = count + 1;
    INSERT INTO esctl_counts (kind, name, count) VALUES ('type', NEW.type, 1)
        ON CONFLICT DO UPDATE SET count = count + 1;
    UPDATE esctl_counts SET count = count + 1 WHERE kind = 'streams' AND NEW.version = 1;
END;

-- The streams table and the counters follow the events: only the trigger above
-- changes them, one event at a time.
CREATE TRIGGER streams_refuse_delete BEFORE DELETE ON streams
BEGIN SELECT RAISE(ABORT, 'streams follows the events: DELETE is refused'); END;
CREATE TRIGGER streams_follow_inserts BEFORE INSERT ON streams
WHEN NEW.version IS NOT 1 OR NEW.last_position IS NOT NEW.first_position
  OR NOT EXISTS (SELECT 1 FROM events
                 WHERE position = NEW.first_position AND stream = NEW.stream AND version = 1)
BEGIN SELECT RAISE(ABORT, 'streams follows the events: append an event instead'); END;
CREATE TRIGGER streams_follow_updates BEFORE UPDATE ON streams
WHEN NEW.stream IS NOT OLD.stream OR NEW.category IS NOT OLD.category
  OR NEW.first_position IS NOT OLD.first_position
  OR (NEW.sort_key IS NOT OLD.sort_key AND OLD.sort_key IS NOT NULL)
  OR NOT EXISTS (SELECT 1 FROM events
                 WHERE position = NEW.last_position AND stream = NEW.stream AND version = NEW.version)
  OR EXISTS (SELECT 1 FROM events WHERE stream = NEW.stream AND version = NEW.version + 1)
BEGIN SELECT RAISE(ABORT, 'streams follows the events: append an event instead'); END;
CREATE TRIGGER esctl_counts_refuse_delete BEFORE DELETE ON esctl_counts
BEGIN SELECT RAISE(ABORT, 'esctl_counts follows the events: DELETE is refused'); END;
CREATE TRIGGER esctl_counts_start_at_one BEFORE INSERT ON esctl_counts
WHEN NEW.count IS NOT 1
BEGIN SELECT RAISE(ABORT, 'esctl_counts follows the events: append an event instead'); END;
CREATE TRIGGER esctl_counts_count_one_by_one BEFORE UPDATE ON esctl_counts
WHEN NEW.kind IS NOT OLD.kind OR NEW.name IS NOT OLD.name OR NEW.count IS NOT OLD.count + 1
BEGIN SELECT RAISE(ABORT, 'esctl_counts follows the events: append an event instead'); END;
"""


def up(conn: sqlite3.Connection) -> None:
    run_script(conn, DDL)
