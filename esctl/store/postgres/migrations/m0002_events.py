"""Schema 2 on PostgreSQL: what SQLite's schema 2 holds (events, streams, counters,
snapshots), with its guarantees kept by the database for every client, psql too.

There is no schema 1 here: PostgreSQL stores start at the SQLite schema they
match, so that one schema number means one set of tables on either backend."""

from __future__ import annotations

from typing import Any

VERSION = 2
SUMMARY = "events, streams, counters, snapshots; append-only, gapless, commit-ordered"

# Names are compared byte by byte (COLLATE "C"): the code-point order SQLite uses,
# whatever the database's locale.
TABLES = """
CREATE TABLE events (
    position    bigint  PRIMARY KEY CHECK (position > 0),
    stream      text    COLLATE "C" NOT NULL,
    version     bigint  NOT NULL CHECK (version > 0),
    type        text    COLLATE "C" NOT NULL,
    data        json    NOT NULL,   -- json, not jsonb: the text as written, byte for byte
    metadata    json    NOT NULL,
    id          text    NOT NULL UNIQUE,
    recorded_at text    NOT NULL,
    category    text    COLLATE "C" GENERATED ALWAYS AS (split_part(stream, '-', 1)) STORED,
    UNIQUE (stream, version)
);
CREATE INDEX events_type ON events (type, position);
CREATE INDEX events_category ON events (category, position);

-- The one row every append locks: see esctl.store.postgres (why positions are exact).
CREATE TABLE esctl_head (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    position    bigint  NOT NULL
);
INSERT INTO esctl_head (position) VALUES (0);

CREATE TABLE streams (
    stream          text    COLLATE "C" PRIMARY KEY,
    category        text    COLLATE "C" NOT NULL,
    version         bigint  NOT NULL,
    first_position  bigint  NOT NULL,
    last_position   bigint  NOT NULL,
    sort_key        bytea   NOT NULL
) WITH (fillfactor = 50);  -- room on each page: a row's update stays there (HOT)
CREATE INDEX streams_sort_key ON streams (sort_key);
CREATE INDEX streams_category ON streams (category, sort_key);

CREATE TABLE esctl_counts (
    kind    text    COLLATE "C" NOT NULL,   -- 'category', 'type', or 'streams' (name '')
    name    text    COLLATE "C" NOT NULL,
    count   bigint  NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE esctl_meta (key text PRIMARY KEY, value text NOT NULL);

CREATE TABLE esctl_snapshots (
    stream      text    COLLATE "C" NOT NULL,
    fingerprint text    COLLATE "C" NOT NULL,
    version     bigint  NOT NULL,
    aggregate   text    NOT NULL,
    state       text    NOT NULL,
    created_at  text    NOT NULL,
    PRIMARY KEY (stream, fingerprint, version)
);
"""

# esctl.store.natural.sort_key in SQL, byte for byte (a test compares them): text
# runs as UTF-8 ended by 0x00, each number as 0x02, its digit count in two bytes and
# its digits without leading zeros; 0x01 and the name itself end it.
SORT_KEY = r"""
CREATE FUNCTION esctl_sort_key(name text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT string_agg(
           convert_to(t.part, 'UTF8') || '\x00'::bytea
           || coalesce('\x02'::bytea || int2send(length(d.digits)::int2) || convert_to(d.digits, 'UTF8'), ''),
           ''::bytea ORDER BY t.n)
         || '\x01'::bytea || convert_to(name, 'UTF8')
  FROM regexp_split_to_table(name, '[0-9]+') WITH ORDINALITY AS t(part, n)
  LEFT JOIN (SELECT coalesce(nullif(ltrim(m[1], '0'), ''), '0'), n
             FROM regexp_matches(name, '([0-9]+)', 'g') WITH ORDINALITY AS r(m, n)) AS d(digits, n)
         ON d.n = t.n
$$;
"""

# After every statement that inserts events, once, over the rows it inserted: moves
# the head (waiting for its lock, which orders commits), checks that positions and
# each stream's versions continue without a gap, keeps streams and the counters,
# and notifies listeners at commit. One set-based pass per statement, not per row:
# each stream's rows are summed once, and a stream row is updated only where its
# version is the one the rows continue, so a count of rows touched is the check.
EVENTS_ADDED = r"""
CREATE FUNCTION esctl_events_added() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    first_position bigint;
    last_position bigint;
    added_count bigint;
    moved integer;
    stream_count bigint;
    continued bigint;
    created bigint;
    bad record;
BEGIN
    SELECT min(position), max(position), count(*) INTO first_position, last_position, added_count
      FROM added;
    IF added_count = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('esctl.keeping', 'on', true);  -- the guards let its writes through
    UPDATE esctl_head SET position = last_position WHERE position = first_position - 1;
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved = 0 OR last_position - first_position + 1 <> added_count THEN
        RAISE EXCEPTION 'events: positions must continue the log without a gap (the log ends at %, got % to %)',
            (SELECT position FROM esctl_head), first_position, last_position
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    WITH per_stream AS (
        SELECT stream, min(version) AS low, max(version) AS high, count(*) AS n,
               min(position) AS first_position, max(position) AS last_position
          FROM added GROUP BY stream
    ), grown AS (
        UPDATE streams AS s SET version = p.high, last_position = p.last_position
          FROM per_stream AS p
         WHERE s.stream = p.stream AND s.version = p.low - 1 AND p.high - p.low + 1 = p.n
        RETURNING 1
    ), new AS (
        INSERT INTO streams (stream, category, version, first_position, last_position, sort_key)
        SELECT p.stream, split_part(p.stream, '-', 1), p.high, p.first_position, p.last_position,
               esctl_sort_key(p.stream)
          FROM per_stream AS p
         WHERE p.low = 1 AND p.high = p.n
           AND NOT EXISTS (SELECT 1 FROM streams AS s WHERE s.stream = p.stream)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM per_stream), (SELECT count(*) FROM grown), (SELECT count(*) FROM new)
      INTO stream_count, continued, created;
    IF continued + created <> stream_count THEN
        SELECT a.stream, coalesce(s.version, 0) AS version, a.low, a.high INTO bad
          FROM (SELECT stream, min(version) AS low, max(version) AS high, count(*) AS n
                  FROM added GROUP BY stream) AS a
          LEFT JOIN streams AS s ON s.stream = a.stream
         WHERE a.low <> coalesce(s.version, 0) + 1 OR a.high - a.low + 1 <> a.n
         LIMIT 1;
        RAISE EXCEPTION 'events: stream % is at version %: versions % to % would leave a gap',
            bad.stream, bad.version, bad.low, bad.high
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    INSERT INTO esctl_counts AS c (kind, name, count)
    SELECT 'streams', '', created WHERE created > 0
    UNION ALL
    SELECT 'category', category, count(*) FROM added GROUP BY category
    UNION ALL
    SELECT 'type', type, count(*) FROM added GROUP BY type
    ON CONFLICT (kind, name) DO UPDATE SET count = c.count + excluded.count;
    PERFORM set_config('esctl.keeping', '', true);
    PERFORM pg_notify('esctl_events', last_position::text);
    RETURN NULL;
END $$;
CREATE TRIGGER events_added AFTER INSERT ON events
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION esctl_events_added();

-- Before any row goes in, the head: an INSERT from psql then waits for an esctl
-- writer's transaction instead of deadlocking with it (its rows holding a position
-- the writer is about to insert, the writer holding the head its trigger needs).
-- esctl's own writer holds the lock already; taking it again costs a lookup.
CREATE FUNCTION esctl_events_adding() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM esctl_head FOR UPDATE;
    RETURN NULL;
END $$;
CREATE TRIGGER events_adding BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION esctl_events_adding();
"""

# Nothing but esctl_events_added changes what it keeps; nothing changes the log.
# Against mistakes, not malice: whoever may DROP TRIGGER can get around any guard
# (as on SQLite); tamper evidence is a hash chain's job.
GUARDS = r"""
CREATE FUNCTION esctl_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME <> 'events' AND pg_trigger_depth() > 1
       AND current_setting('esctl.keeping', true) = 'on' THEN
        RETURN NULL;  -- esctl_events_added keeping streams or the counters
    END IF;
    RAISE EXCEPTION '%: % refused: %', TG_TABLE_NAME, TG_OP,
        CASE WHEN TG_TABLE_NAME = 'events' THEN 'the event log is append-only'
             ELSE 'it follows the events and changes only with them' END
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION esctl_refuse_change();
CREATE TRIGGER esctl_head_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON esctl_head
    FOR EACH STATEMENT EXECUTE FUNCTION esctl_refuse_change();
CREATE TRIGGER streams_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON streams
    FOR EACH STATEMENT EXECUTE FUNCTION esctl_refuse_change();
CREATE TRIGGER esctl_counts_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON esctl_counts
    FOR EACH STATEMENT EXECUTE FUNCTION esctl_refuse_change();
"""


def up(conn: Any) -> None:  # a psycopg connection, inside the caller's transaction
    for sql in (TABLES, SORT_KEY, EVENTS_ADDED, GUARDS):
        conn.execute(sql)
