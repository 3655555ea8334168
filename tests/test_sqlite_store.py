"""The SQLite backend: what its schema guarantees, and the store contract where its
triggers stay on (tests/test_store_contract.py runs the contract on every backend)."""

from __future__ import annotations

import re
import sqlite3

import pytest

from esctl import InvalidInput, NewEvent, NotFound, StoreError
from esctl.store import EventStore
from esctl.store.sqlite import schema
from esctl.store.sqlite.schema import SCHEMA_VERSION
from tests.helpers import derived, file_digest
from tests.store_contract import StoreContract


class TestSQLiteStoreWithTriggersOn(StoreContract):
    """Where the triggers cannot be turned off, they keep the derived tables."""

    @pytest.fixture
    def store(self, db, monkeypatch):
        monkeypatch.setattr(schema, "disable_triggers", lambda conn, path: False)
        with EventStore.open(db, create=True) as s:
            assert not s._triggers_off
            yield s
        conn = sqlite3.connect(db)
        kept, computed = derived(conn)
        conn.close()
        assert kept == computed


@pytest.fixture
def filled(db):
    with EventStore.open(db, create=True) as s:
        s.append("s-1", [NewEvent("s-1", "A"), NewEvent("s-1", "B")])
    return db


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE events SET type = 'X'",
        "DELETE FROM events",
        # REPLACE would delete the stored event that owns the id.
        "INSERT OR REPLACE INTO events (position, stream, version, type, data, metadata, id, recorded_at)"
        " SELECT 3, 's-1', 3, 'C', '{}', '{}', id, recorded_at FROM events WHERE position = 1",
        # A gap in positions, or in a stream's versions.
        "INSERT INTO events (position, stream, version, type, data, metadata, id, recorded_at)"
        " VALUES (5, 's-1', 3, 'C', '{}', '{}', 'x', '2020-01-01T00:00:00.000000Z')",
        "INSERT INTO events (position, stream, version, type, data, metadata, id, recorded_at)"
        " VALUES (3, 's-1', 4, 'C', '{}', '{}', 'x', '2020-01-01T00:00:00.000000Z')",
        "INSERT INTO events (position, stream, version, type, data, metadata, id, recorded_at)"
        " VALUES (3, 's-1', 2, 'C', '{}', '{}', 'x', '2020-01-01T00:00:00.000000Z')",
    ],
)
def test_schema_refuses_changes_from_a_plain_sqlite_shell(filled, sql):
    conn = sqlite3.connect(filled)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(sql)
    conn.commit()
    rows = conn.execute("SELECT position, version, type FROM events ORDER BY position").fetchall()
    assert rows == [(1, 1, "A"), (2, 2, "B")]


def test_the_store_uses_wal_and_records_its_schema(filled):
    conn = sqlite3.connect(filled)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_reading_a_missing_store_is_not_found_and_creates_nothing(db):
    with pytest.raises(NotFound, match=f"no event store at {db}"):
        EventStore.open(db)
    assert not db.exists()


def test_a_file_that_is_not_sqlite_is_refused_untouched(db):
    db.write_text("just some text\n")
    with pytest.raises(StoreError, match="not an esctl event store"):
        EventStore.open(db, create=True)
    assert db.read_text() == "just some text\n"


def test_another_sqlite_database_is_refused_untouched(db):
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()
    before = file_digest(db)
    with pytest.raises(StoreError, match="not an esctl event store"):
        EventStore.open(db, create=True)
    assert file_digest(db) == before


def test_a_newer_schema_is_refused_untouched(filled):
    conn = sqlite3.connect(filled)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = file_digest(filled)
    with pytest.raises(StoreError, match="newer than this esctl knows"):
        EventStore.open(filled, create=True)
    assert file_digest(filled) == before


def test_an_empty_file_becomes_a_store_on_write(db):
    db.write_bytes(b"")
    with pytest.raises(NotFound):
        EventStore.open(db)
    with EventStore.open(db, create=True) as s:
        assert s.head_position() == 0


def test_a_store_held_by_another_writer_is_reported_as_busy(store, db):
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process's long import, say
    store.conn.execute("PRAGMA busy_timeout = 100")
    try:
        with pytest.raises(StoreError, match="the store is busy: another writer held it"):
            store.append("s-1", [NewEvent("s-1", "T")])
    finally:
        blocker.execute("ROLLBACK")
    store.append("s-1", [NewEvent("s-1", "T")])  # and once it is free, writes go through
    assert store.head_position() == 1


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM streams",
        "UPDATE streams SET version = 7",
        "UPDATE streams SET last_position = 1",
        "INSERT INTO streams (stream, category, version, first_position, last_position)"
        " VALUES ('t-1', 't', 1, 1, 1)",
        "DELETE FROM esctl_counts",
        "UPDATE esctl_counts SET count = 0",
        "INSERT INTO esctl_counts (kind, name, count) VALUES ('type', 'Z', 5)",
    ],
)
def test_the_derived_tables_refuse_changes_from_a_plain_sqlite_shell(filled, sql):
    conn = sqlite3.connect(filled)
    with pytest.raises(sqlite3.IntegrityError, match="follows the events"):
        conn.execute(sql)
    conn.rollback()
    kept, computed = derived(conn)
    conn.close()
    assert kept == computed


def test_events_inserted_from_a_plain_sqlite_shell_are_counted_and_listed(filled):
    conn = sqlite3.connect(filled)
    for position, stream, version in [(3, "s-1", 3), (4, "t-1", 1), (5, "t-1", 2)]:
        conn.execute(
            "INSERT INTO events (position, stream, version, type, data, metadata, id, recorded_at)"
            " VALUES (?, ?, ?, 'C', '{}', '{}', ?, '2020-01-01T00:00:00.000000Z')",
            (position, stream, version, f"id-{position}"),
        )
    conn.commit()
    kept, computed = derived(conn)
    conn.close()
    assert kept == computed
    with EventStore.open(filled) as store:
        assert [s.stream for s in store.streams()] == ["s-1", "t-1"]  # t-1 has no sort key yet
        store.append("t-1", [NewEvent("t-1", "D")])
        assert store.info()["types"] == {"C": 3, "A": 1, "B": 1, "D": 1}
    conn = sqlite3.connect(filled)
    assert conn.execute("SELECT sort_key IS NOT NULL FROM streams WHERE stream = 't-1'").fetchone()[0] == 1
    conn.close()


def _plans(store, read) -> list[str]:
    """The query plan of every statement `read()` runs on the store's connection."""
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        read()
    finally:
        store.conn.set_trace_callback(None)
    conn = sqlite3.connect(store.path)
    try:
        return [
            " / ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for sql in statements
            if sql.lstrip().upper().startswith("SELECT")
        ]
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("read", "index"),
    [
        (lambda s: list(s.read_all(types=["Rare"], limit=10)), "events_type"),
        (lambda s: list(s.read_all(types=["Rare", "A"], limit=10)), "events_type"),
        (lambda s: list(s.read_all(category="c2", limit=10)), "events_category"),
        (lambda s: list(s.read_all(category="c2", types=["Rare"], limit=10)), "events_type"),
        (lambda s: list(s.read_all(category="c9", types=["A"], limit=10)), "events_category"),
        (lambda s: list(s.streams(category="c2", limit=5)), "streams_category"),
        (lambda s: list(s.streams(limit=5)), "streams_sort_key"),
        # These two sort what they return: the counters, one stream's types.
        (lambda s: s.info(), "esctl_counts"),
        (lambda s: s.stream_info("c2-1"), "events_stream_version"),
    ],
)
def test_filtered_reads_use_an_index_and_scan_nothing(store, read, index):
    for n in range(20):
        stream = f"c{n % 9}-{n}"
        store.append(stream, [NewEvent(stream, "A"), NewEvent(stream, "B")])
    store.append("c9-1", [NewEvent("c9-1", "A")])
    store.append("c2-1", [NewEvent("c2-1", "Rare")])
    plans = _plans(store, lambda: read(store))
    assert any(index in plan for plan in plans), plans
    assert not any(re.search(r"SCAN (events|streams|s|f|l)\b", plan) for plan in plans), plans
    if index not in ("esctl_counts", "events_stream_version"):
        assert not any("TEMP B-TREE" in plan for plan in plans), plans


def _indexes(db) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [
            row[0] for row in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' ORDER BY name")
        ]
    finally:
        conn.close()


def test_an_import_into_an_empty_store_builds_its_indexes_once_and_keeps_them(store, db, monkeypatch):
    from esctl.store import base as backend

    monkeypatch.setattr(backend, "CHUNK", 10)  # several chunks, a repeated id across two
    before = _indexes(db)
    events = [("", NewEvent(f"s-{i % 3}", "T", {"i": i})) for i in range(25)]
    repeated = NewEvent("s-9", "T", {}, id="00000000-0000-4000-8000-000000000001")
    summary = store.import_events([*events[:5], ("", repeated), *events[5:], ("", repeated)])
    assert (summary.imported, summary.duplicates) == (26, 1)
    assert _indexes(db) == before
    plans = _plans(store, lambda: list(store.read_all(types=["T"], limit=1)))
    assert any("events_type" in plan for plan in plans)


def test_a_failed_import_into_an_empty_store_leaves_it_empty_with_its_indexes(store, db):
    before = _indexes(db)
    with pytest.raises(InvalidInput, match="line 2"):
        store.import_events([("", NewEvent("s-1", "T")), ("line 2: ", NewEvent("s 1", "T"))])
    assert store.head_position() == 0
    assert _indexes(db) == before


def test_a_store_on_a_connection_of_your_own_keeps_its_triggers_after_migrate(old):
    conn = sqlite3.connect(old, isolation_level=None)
    EventStore(str(old), conn).migrate(backup=False)
    with pytest.raises(sqlite3.IntegrityError):  # a gap: the trigger still refuses it
        conn.execute(
            "INSERT INTO events (position, stream, version, type, data, metadata, id, recorded_at)"
            " VALUES (99, 'x-1', 1, 'T', '{}', '{}', 'id-99', '2026-01-01T00:00:00.000000Z')"
        )
    conn.close()


def test_an_import_into_an_empty_store_with_triggers_on_keeps_its_indexes(db, monkeypatch):
    monkeypatch.setattr(schema, "disable_triggers", lambda conn, path: False)
    with EventStore.open(db, create=True) as store:
        plans = []
        store.conn.set_trace_callback(plans.append)
        store.import_events([("", NewEvent(f"s-{i % 3}", "T")) for i in range(30)])
        store.conn.set_trace_callback(None)
    assert not any("DROP INDEX" in sql for sql in plans)


@pytest.mark.parametrize("form", ["path", "sqlite:///relative", "sqlite:////absolute"])
def test_a_store_is_opened_by_path_or_sqlite_url(tmp_path, monkeypatch, form):
    from esctl import store as backends

    monkeypatch.chdir(tmp_path)
    url = {
        "path": "events.db",
        "sqlite:///relative": "sqlite:///events.db",
        "sqlite:////absolute": f"sqlite:///{tmp_path / 'events.db'}",
    }[form]
    with backends.open(url, create=True) as store:
        store.append("s-1", [NewEvent("s-1", "T")])
    with EventStore.open(tmp_path / "events.db") as store:
        assert store.head_position() == 1


def test_an_unknown_url_scheme_is_refused_naming_it(tmp_path):
    from esctl import store as backends

    with pytest.raises(InvalidInput, match=r"no esctl backend for mysql:// URLs"):
        backends.open("mysql://localhost/events")


def test_check_finds_what_a_plain_sqlite_shell_did_around_the_triggers(filled):
    with EventStore.open(filled) as store:
        store.append("s-2", [NewEvent("s-2", "C")])
        assert store.check() == []
    conn = sqlite3.connect(filled)
    conn.execute("DROP TRIGGER events_refuse_delete")
    conn.execute("DELETE FROM events WHERE position = 2")
    conn.commit()
    conn.close()
    with EventStore.open(filled) as store:
        assert store.check() == [
            "position 2: missing (2 events, the last at position 3)",
            "streams row s-1 s: the events say ('s-1', 's', 1, 1, 1), the store keeps ('s-1', 's', 2, 1, 2)",
            "counter category s: the events say ('category', 's', 2), the store keeps ('category', 's', 3)",
            "counter type B: kept, ('type', 'B', 1), but no event says so",
            "trigger events_refuse_delete: missing",
        ]


def test_check_finds_versions_out_of_step_a_shared_id_and_a_trigger_that_does_nothing(filled, old):
    conn = sqlite3.connect(filled)
    for name in ("events_next", "events_tracked", "streams_follow_inserts", "streams_follow_updates"):
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("CREATE TRIGGER events_next BEFORE INSERT ON events BEGIN SELECT 1; END")
    conn.execute("DROP INDEX events_stream_version")
    conn.execute("DROP INDEX events_id")
    conn.execute(  # s-1 v2 again, with the id of v1, at position 3
        "INSERT INTO events (position, stream, version, type, data, metadata, id, recorded_at)"
        " SELECT 3, stream, 2, type, data, metadata, id, recorded_at FROM events WHERE position = 1"
    )
    conn.commit()
    conn.close()
    with EventStore.open(filled) as store:
        findings = store.check()
    assert findings[:2] == [
        "position 3: s-1 version 2 follows version 2",
        f"id {next(EventStore.open(filled).read_all()).id}: held by 2 events",
    ]
    assert "trigger events_next: not as the schema defines it" in findings
    assert "trigger events_tracked: missing" in findings
    with EventStore.open(old) as store:  # schema 1: its own triggers, nothing missing
        assert store.check() == []
