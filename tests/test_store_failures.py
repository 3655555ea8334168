"""SQLite's failures as the library raises them: classified by error code into
esctl errors that name the file, with the transaction rolled back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from esctl.errors import InvalidInput, StoreBusy, StoreDamaged, StoreFull, StoreReadOnly
from esctl.events import NewEvent, metadata_id
from esctl.store import EventStore
from esctl.store.sqlite.failures import classify
from esctl.transaction import begin_immediate, immediate
from tests.helpers import file_digest


def _error(conn: sqlite3.Connection, sql: str) -> sqlite3.Error:
    with pytest.raises(sqlite3.Error) as caught:
        conn.execute(sql)
    return caught.value


def test_a_full_database_is_store_full(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    conn.execute("CREATE TABLE t (v)")
    conn.execute("PRAGMA max_page_count = 2")
    exc = _error(conn, "INSERT INTO t VALUES (zeroblob(100000))")
    error = classify(exc, "x.db")
    assert isinstance(error, StoreFull)
    assert str(error) == "disk full: cannot write x.db; the transaction was rolled back"


def test_a_read_only_connection_is_store_read_only(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    sqlite3.connect(path).execute("CREATE TABLE t (v)").connection.close()
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    error = classify(_error(conn, "INSERT INTO t VALUES (1)"), str(path))
    assert isinstance(error, StoreReadOnly)
    assert str(error) == f"read-only: cannot write {path}"


def test_a_damaged_file_is_store_damaged(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (v)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    conn.commit()
    conn.close()
    with open(path, "r+b") as f:
        f.seek(4096 * 3)
        f.write(b"\xff" * 4096)
    conn = sqlite3.connect(path)
    error = classify(_error(conn, "SELECT count(*), max(v) FROM t"), str(path))
    assert isinstance(error, StoreDamaged)
    assert str(error) == f"{path} is damaged (database disk image is malformed): restore it from a backup"


def test_a_busy_lock_is_store_busy(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    assert isinstance(classify(_error(other, "BEGIN IMMEDIATE"), str(path)), StoreBusy)


def test_sql_errors_and_refusals_are_not_the_environment(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db")
    assert classify(_error(conn, "SELECT * FROM nowhere"), None) is None
    conn.execute("CREATE TABLE t (v UNIQUE)")
    conn.execute("INSERT INTO t VALUES (1)")
    assert classify(_error(conn, "INSERT INTO t VALUES (1)"), None) is None  # a constraint
    conn.set_authorizer(lambda *args: sqlite3.SQLITE_DENY)
    assert classify(_error(conn, "SELECT * FROM t"), None) is None  # an authorizer's refusal


def test_append_and_import_on_a_full_disk_roll_back_and_leave_the_store_as_it_was(db: Path) -> None:
    with EventStore.open(db, create=True) as store:
        store.append("s-1", [NewEvent("s-1", "T", {})])
    before = file_digest(db)
    with EventStore.open(db) as store:
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StoreFull, match=f"disk full: cannot write {db}"):
            store.append("s-1", [NewEvent("s-1", "T", {"pad": "x" * 100_000})])
        assert not store.conn.in_transaction
        events = [("", NewEvent(f"s-{i}", "T", {"pad": "x" * 1000})) for i in range(100)]
        with pytest.raises(StoreFull):
            store.import_events(events)
        assert not store.conn.in_transaction
        assert store.head_position() == 1
    assert file_digest(db) == before


def test_a_store_sqlite_can_only_read_refuses_writes_clearly(db: Path) -> None:
    with EventStore.open(db, create=True) as store:
        store.append("s-1", [NewEvent("s-1", "T", {"a": 1})])
    Path(f"{db}-shm").mkdir()  # SQLite cannot map it: it reads through private memory only
    before = file_digest(db)
    with EventStore.open(db, create=True) as store:
        assert [e.data for e in store.read_stream("s-1")] == [{"a": 1}]
        with pytest.raises(StoreReadOnly, match=f"^read-only: cannot write {db}$"):
            store.append("s-1", [NewEvent("s-1", "T", {})])
        assert not store.conn.in_transaction
    assert file_digest(db) == before


def test_a_store_whose_shm_cannot_be_created_falls_back_to_a_read_only_connection(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a read-only directory or medium does to the first read of a WAL store
    (SQLITE_CANTOPEN: no -shm can be created), in-process: the store is then opened
    through a read-only URI. The real thing is in tests/cli/test_errors.py."""
    from esctl.store.sqlite import schema

    with EventStore.open(db, create=True) as store:
        store.append("s-1", [NewEvent("s-1", "T", {"a": 1})])
    with pytest.raises(sqlite3.OperationalError) as cantopen:
        sqlite3.connect(db.parent / "missing" / "x.db")
    assert cantopen.value.sqlite_errorcode == sqlite3.SQLITE_CANTOPEN
    real = schema._check_identity
    calls = []

    def first_read_fails(conn, path, create):
        calls.append(conn)
        if len(calls) == 1:
            raise cantopen.value
        return real(conn, path, create)

    monkeypatch.setattr(schema, "_check_identity", first_read_fails)
    before = file_digest(db)
    with EventStore.open(db) as store:
        assert store.read_only == "read-only"  # the file system itself is writable here
        assert [e.data for e in store.read_stream("s-1")] == [{"a": 1}]
        with pytest.raises(StoreReadOnly, match=f"^read-only: cannot write {db}$"):
            store.append("s-1", [NewEvent("s-1", "T", {})])
        (uri,) = store.conn.execute("PRAGMA database_list").fetchall()[0][2:]
    assert uri == str(db)
    assert len(calls) == 2
    assert file_digest(db) == before


def test_waiting_for_the_write_lock_returns_to_python_between_short_waits(tmp_path: Path) -> None:
    """Python sees a Ctrl-C only between SQLite calls: one call must not wait the
    whole busy timeout. BEGIN IMMEDIATE is tried again and again instead."""
    path = tmp_path / "x.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    conn = sqlite3.connect(path, isolation_level=None, timeout=0.35)
    attempts = []
    conn.set_trace_callback(lambda sql: attempts.append(sql) if sql == "BEGIN IMMEDIATE" else None)
    with pytest.raises(sqlite3.OperationalError) as caught:
        begin_immediate(conn)
    assert caught.value.sqlite_errorcode == sqlite3.SQLITE_BUSY
    assert len(attempts) >= 2
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 350  # restored


def test_a_failing_commit_is_rolled_back(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE p (id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE c (p REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError), immediate(conn):
        conn.execute("INSERT INTO c VALUES (1)")  # refused only at COMMIT
    assert not conn.in_transaction
    assert conn.execute("SELECT count(*) FROM c").fetchone()[0] == 0


def test_an_id_given_twice_must_be_the_same() -> None:
    assert metadata_id("correlation id", "c1", "correlation_id", {"correlation_id": "c1"}) == "c1"
    assert metadata_id("correlation id", None, "correlation_id", {"correlation_id": "c2"}) == "c2"
    assert metadata_id("correlation id", "c1", "correlation_id", {}) == "c1"
    assert metadata_id("correlation id", None, "correlation_id", None) is None
    with pytest.raises(InvalidInput, match="two causation ids: 'a', and 'b' in metadata causation_id"):
        metadata_id("causation id", "a", "causation_id", {"causation_id": "b"})
