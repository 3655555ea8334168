"""Upgrading stores made by earlier releases: the committed schema-1 fixture, a
store of 100,000 events, and an upgrade killed before it commits."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from esctl import NewEvent
from esctl.errors import StoreError, StoreOutdated
from esctl.store import EventStore
from esctl.store.sqlite import migrations
from esctl.store.sqlite.migrations import m0001_events
from esctl.store.sqlite.schema import APPLICATION_ID, SCHEMA_VERSION
from tests.helpers import FIXTURES, HANG, derived, exported, file_digest


def esctl_objects(path: Path) -> list[tuple[str, str, str]]:
    """The schema's tables, indexes and triggers (not snapshots', not projections')."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            " AND name NOT IN ('esctl_snapshots', 'esctl_projections', 'balances')"
            " AND tbl_name NOT IN ('esctl_snapshots', 'esctl_projections', 'balances') ORDER BY name"
        ).fetchall()
    finally:
        conn.close()
    return rows


def test_the_fixture_is_a_schema_1_store():
    conn = sqlite3.connect(FIXTURES / "schema1.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.close()


def test_a_schema_1_store_reads_as_before_and_refuses_writes(old):
    before = file_digest(old)
    with EventStore.open(old) as store:
        assert store.outdated and store.schema_version == 1
        assert exported(old) == (FIXTURES / "schema1.ndjson").read_bytes()
        info = store.info()
        assert (info["schema_version"], info["events"], info["streams"]) == (1, 21, 9)
        assert info["categories"] == {"account": 13, "order": 7, "note": 1}
        assert [s.stream for s in store.streams(category="account", limit=3)] == [
            "account-2",
            "account-10",
            "account-ada",
        ]
        assert [e.position for e in store.read_all(types=["Opened", "Written"], limit=4)] == [8, 10, 13, 19]
        assert store.stream_info("order-1")["version"] == 3
        with pytest.raises(StoreOutdated, match=r"has schema 1, .*run 'esctl migrate' to upgrade it"):
            store.append("order-1", [NewEvent("order-1", "Noted")])
        with pytest.raises(StoreOutdated):
            store.import_events([("", NewEvent("x-1", "T"))])
    assert file_digest(old) == before


def test_upgrading_the_fixture_keeps_every_event_and_makes_the_schema_of_a_new_store(old, tmp_path):
    with EventStore.open(old) as store:
        outdated_info = store.info()
        doc = store.migrate()
        assert not store.outdated
        assert doc["from_schema"] == 1 and doc["to_schema"] == SCHEMA_VERSION
        assert [s["version"] for s in doc["steps"]] == [2]
        assert (doc["events"], doc["streams"]) == (21, 9)
        assert store.info() | {"schema_version": 1, "file_size": 0} == outdated_info | {"file_size": 0}
        # Writable at once, and the counters follow.
        store.append("order-1", [NewEvent("order-1", "Noted")])
        assert store.info()["types"]["Noted"] == 1
    backup = Path(doc["backup"])
    assert backup == tmp_path / "old.db.schema1.bak"
    assert exported(backup) == (FIXTURES / "schema1.ndjson").read_bytes()
    with EventStore.open(backup) as copy:
        assert copy.schema_version == 1
    assert exported(old).startswith((FIXTURES / "schema1.ndjson").read_bytes())
    conn = sqlite3.connect(old)
    kept, computed = derived(conn)
    assert kept == computed
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    snapshots = conn.execute("SELECT count(*) FROM esctl_snapshots").fetchone()[0]
    assert snapshots == 1  # the tables of snapshots and projections are left alone
    conn.close()
    with EventStore.open(tmp_path / "new.db", create=True):
        pass
    assert esctl_objects(old) == esctl_objects(tmp_path / "new.db")


def test_a_store_at_the_schema_is_left_alone(store, db):
    store.append("s-1", [NewEvent("s-1", "T")])
    before = file_digest(db)
    doc = store.migrate()
    assert (doc["from_schema"], doc["steps"], doc["backup"]) == (SCHEMA_VERSION, [], None)
    assert file_digest(db) == before
    assert not os.path.exists(store.backup_path())


def test_no_backup_and_a_backup_path_that_is_taken(old, tmp_path):
    taken = tmp_path / "old.db.schema1.bak"
    taken.write_text("someone else's file")
    before = file_digest(old)
    with EventStore.open(old) as store:
        with pytest.raises(StoreError, match=r"old\.db\.schema1\.bak exists already"):
            store.migrate()
        assert store.outdated and file_digest(old) == before
        assert taken.read_text() == "someone else's file"
        doc = store.migrate(backup=False)
    assert doc["backup"] is None and doc["steps"]
    assert taken.read_text() == "someone else's file"


def schema_1_store(path: Path, events: int) -> None:
    """A schema-1 store written as the first release wrote it: its DDL and its rows
    (100 events per stream, 10 categories), through its triggers."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN")
    m0001_events.up(conn)
    conn.executemany(
        "INSERT INTO events (position, stream, version, type, data, metadata, id, recorded_at)"
        " VALUES (?, ?, ?, ?, ?, '{}', ?, '2026-01-01T00:00:00.000000Z')",
        (
            (
                p,
                f"c{(p - 1) // 100 % 10}-{(p - 1) // 100}",
                (p - 1) % 100 + 1,
                f"T{p % 7}",
                f'{{"n": {p}}}',
                f"00000000-0000-4000-8000-{p:012d}",
            )
            for p in range(1, events + 1)
        ),
    )
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.execute("COMMIT")
    conn.close()


def test_upgrading_a_store_of_100k_events(tmp_path):
    path = tmp_path / "big.db"
    schema_1_store(path, 100_000)
    with EventStore.open(path) as store:
        doc = store.migrate(backup=False)
        assert (doc["events"], doc["streams"]) == (100_000, 1_000)
        info = store.info()
        assert info["categories"] == {f"c{i}": 10_000 for i in range(10)}
        assert sum(info["types"].values()) == 100_000
        assert [s.stream for s in store.streams(category="c3", limit=3)] == ["c3-3", "c3-13", "c3-23"]
        appended = store.append("c3-3", [NewEvent("c3-3", "T9")]).events[0]
        assert (appended.version, appended.position) == (101, 100_001)
    conn = sqlite3.connect(path)
    kept, computed = derived(conn)
    assert kept == computed
    conn.close()


def test_an_upgrade_killed_before_it_commits_leaves_the_store_at_schema_1_and_whole(tmp_path):
    path = tmp_path / "big.db"
    schema_1_store(path, 20_000)
    before = exported(path)
    fifo = tmp_path / "barrier"
    os.mkfifo(fifo)
    env = dict(os.environ, **{migrations.BARRIER_ENV: str(fifo)})
    child = subprocess.Popen(
        [sys.executable, "-m", "esctl", "--db", str(path), "migrate"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        with open(fifo) as barrier:  # opens once the upgrade reaches the barrier
            assert barrier.readline() == f"{SCHEMA_VERSION}\n"
        # Every step has run in the open transaction; the commit has not.
        assert os.path.getsize(str(path) + ".schema1.bak") > 0
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=HANG)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    with EventStore.open(path) as store:
        assert store.schema_version == 1
    assert exported(path) == before
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'streams'").fetchone()[0] == 0
    conn.close()
    # Run again, it completes, and keeps the copy the first run made.
    with EventStore.open(path) as store:
        doc = store.migrate()
    assert doc["backup"] == str(path) + ".schema1.bak"
    assert exported(Path(doc["backup"])) == before
    assert exported(path) == before
