"""The PostgreSQL backend: what its schema guarantees to any client (a psql
session as much as esctl), how it opens, and what a lost connection leaves. The
store contract itself runs in tests/test_store_contract.py."""

from __future__ import annotations

import random
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esctl import NewEvent, NotFound, StoreError
from esctl import store as backends
from esctl.store.natural import sort_key
from tests import postgres
from tests.helpers import derived, wait_until


@pytest.fixture
def pg_url(postgres_url):
    with postgres.fresh_schema(postgres_url) as url:
        yield url


@pytest.fixture
def filled(pg_url):
    with backends.open(pg_url, create=True) as s:
        s.append("s-1", [NewEvent("s-1", "A"), NewEvent("s-1", "B")])
    return pg_url


_INSERT = "INSERT INTO events (position, stream, version, type, data, metadata, id, recorded_at) VALUES "


@pytest.mark.parametrize(
    ("sql", "refusal"),
    [
        ("UPDATE events SET type = 'X'", "events: UPDATE refused: the event log is append-only"),
        ("DELETE FROM events", "events: DELETE refused: the event log is append-only"),
        ("TRUNCATE events", "events: TRUNCATE refused"),
        # A gap in positions, or in a stream's versions; a stored id; data not JSON.
        (
            _INSERT + "(5, 's-1', 3, 'C', '{}', '{}', 'x', '2020-01-01T00:00:00.000000Z')",
            "positions must continue",
        ),
        (
            _INSERT + "(3, 's-1', 4, 'C', '{}', '{}', 'x', '2020-01-01T00:00:00.000000Z')",
            "stream s-1 is at version 2",
        ),
        (
            _INSERT + "(3, 's-2', 2, 'C', '{}', '{}', 'x', '2020-01-01T00:00:00.000000Z')",
            "stream s-2 is at version 0",
        ),
        (
            _INSERT
            + "(3, 's-1', 3, 'C', '{}', '{}', (SELECT id FROM events LIMIT 1), '2020-01-01T00:00:00.000000Z')",
            "events_id_key",
        ),
        (_INSERT + "(3, 's-1', 3, 'C', 'not json', '{}', 'x', '2020-01-01T00:00:00.000000Z')", "type json"),
        # The derived tables change only with the events.
        ("UPDATE streams SET version = 7", "streams: UPDATE refused: it follows the events"),
        ("DELETE FROM streams", "streams: DELETE refused"),
        ("UPDATE esctl_counts SET count = 0", "esctl_counts: UPDATE refused"),
        ("UPDATE esctl_head SET position = 9", "esctl_head: UPDATE refused"),
        ("INSERT INTO streams VALUES ('x-1', 'x', 1, 1, 1, '\\x00')", "streams: INSERT refused"),
    ],
)
def test_schema_refuses_changes_from_a_plain_client(filled, sql, refusal):
    with psycopg.connect(filled, autocommit=True) as conn:
        with pytest.raises((psycopg.errors.IntegrityError, psycopg.errors.DataError), match=refusal):
            conn.execute(sql)
        rows = conn.execute("SELECT position, version, type FROM events ORDER BY position").fetchall()
        assert rows == [(1, 1, "A"), (2, 2, "B")]
        kept, computed = derived(conn)
        assert kept == computed


def test_a_plain_client_may_append_the_next_event_and_the_store_follows(filled):
    with psycopg.connect(filled, autocommit=True) as conn:
        conn.execute(
            _INSERT + "(3, 's-1', 3, 'C', '{\"by\": \"psql\"}', '{}', 'x-3', '2020-01-01T00:00:00.000000Z'),"
            " (4, 'other-1', 1, 'D', '{}', '{}', 'x-4', '2020-01-01T00:00:00.000000Z')"
        )
    with backends.open(filled) as store:
        assert store.stream_version("s-1") == 3
        assert [s.stream for s in store.streams()] == ["other-1", "s-1"]
        assert next(store.read_stream("s-1", from_version=3)).data == {"by": "psql"}
        assert store.info()["categories"] == {"s": 3, "other": 1}
        store.append("s-1", [NewEvent("s-1", "E")], 3)
        assert store.head_position() == 5


def test_the_sort_key_in_sql_is_pythons_byte_for_byte(filled):
    rnd = random.Random(7)
    names = ["a", "a1", "1", "12b", "a-01-x", "account-10", "00a00", "é9ü", "x-0000", "9" * 40]
    names += ["".join(rnd.choice("ab0123-é_") for _ in range(rnd.randint(1, 12))) for _ in range(500)]
    with psycopg.connect(filled) as conn:
        keys = conn.execute("SELECT n, esctl_sort_key(n) FROM unnest(%s::text[]) AS n", (names,)).fetchall()
    assert [bytes(key) for _, key in keys] == [sort_key(name) for name, _ in keys]


def test_the_events_table_has_the_columns_sqlite_has(filled, tmp_path):
    import sqlite3

    with backends.open(tmp_path / "e.db", create=True):
        pass
    lite = sqlite3.connect(tmp_path / "e.db")
    sqlite_columns = [row[1] for row in lite.execute("PRAGMA table_xinfo(events)")]
    lite.close()
    with psycopg.connect(filled) as conn:
        pg_columns = [
            name
            for (name,) in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'events' AND table_schema = current_schema() ORDER BY ordinal_position"
            ).fetchall()
        ]
    assert pg_columns == sqlite_columns


def test_opening_without_a_store_is_not_found_and_a_foreign_events_table_is_refused(pg_url):
    with pytest.raises(NotFound, match="no event store in postgresql://"):
        backends.open(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (n integer)")
    with pytest.raises(StoreError, match="not an esctl store"):
        backends.open(pg_url, create=True)


def test_an_unreachable_server_is_one_store_error_without_the_password(tmp_path):
    url = f"postgresql://someone:s3cret@/nodb?host={tmp_path}&port=1"
    with pytest.raises(StoreError, match=r"cannot connect to postgresql://someone:\*\*\*@") as info:
        backends.open(url)
    assert "s3cret" not in str(info.value)


def test_a_dropped_connection_mid_append_leaves_nothing_and_a_retry_writes_once(filled):
    events = [
        NewEvent("s-1", "C", {"n": n}, id=f"0190a2b4-0000-7000-8000-0000000000{n:02d}") for n in range(3)
    ]
    store = backends.open(filled)
    make = store._writer

    def writer():
        w = make()
        commit = w.commit

        def dropped() -> None:  # the server ends the session before the commit arrives
            with psycopg.connect(filled, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(%s, 60000)", (store.conn.info.backend_pid,)
                )  # waits
            commit()

        w.commit = dropped
        return w

    store._writer = writer
    with pytest.raises(StoreError, match="lost the connection") as info:
        store.append("s-1", events)
    assert info.value.exit_code == 1
    store.close()
    with backends.open(filled) as again:
        assert again.head_position() == 2
        assert again.append("s-1", events).duplicates == 0
        assert again.append("s-1", events).duplicates == 3  # retried after an unknown outcome: a no-op
        assert [e.version for e in again.read_stream("s-1")] == [1, 2, 3, 4, 5]


def test_a_role_that_may_not_insert_opens_read_only(filled):
    role = "esctl_reader_" + filled.rsplit("%3D", 1)[1]
    with psycopg.connect(filled, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    parts = urlsplit(filled)
    url = urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.rpartition('@')[2]}"))
    try:
        with psycopg.connect(filled, autocommit=True) as conn:
            conn.execute(f"GRANT USAGE ON SCHEMA {filled.rsplit('%3D', 1)[1]} TO {role}")
            conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {filled.rsplit('%3D', 1)[1]} TO {role}")
        with backends.open(url) as store:
            assert store.read_only == f"role {role} may not insert into events"
            assert [e.type for e in store.read_all()] == ["A", "B"]
            with pytest.raises(StoreError, match="cannot write"):
                store.append("s-1", [NewEvent("s-1", "C")])
    finally:
        with psycopg.connect(filled, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_a_writer_held_up_past_the_lock_timeout_is_busy_and_the_store_stays_usable(filled):
    from esctl.errors import StoreBusy

    with psycopg.connect(filled) as holder, backends.open(filled) as store:
        try:
            holder.execute("SELECT position FROM esctl_head FOR UPDATE")  # another writer's transaction
            store.conn.execute("SET lock_timeout = '50ms'")
            with pytest.raises(StoreBusy, match="is busy: another writer held its lock too long") as info:
                store.append("s-1", [NewEvent("s-1", "C")])
            assert info.value.exit_code == 1
        finally:
            holder.rollback()
        assert store.append("s-1", [NewEvent("s-1", "C")], 2).events[0].position == 3


def _waiting_for_a_lock(url: str, pid: int) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()[0]


def _holding_the_head(store):
    """A write transaction of `store` that has locked the head and written nothing yet."""
    writer = store._writer()
    writer.begin()
    writer._load_versions(["s-1"])
    return writer


@pytest.mark.parametrize("isolation", ["read committed", "repeatable read", "serializable"])
def test_writers_take_turns_whatever_the_sessions_isolation(filled, isolation):
    import threading

    url = filled + "%20-cdefault_transaction_isolation%3D" + isolation.replace(" ", "%5C%20")
    with backends.open(url) as first, backends.open(url) as second:
        writer = _holding_the_head(first)
        outcome: list[object] = []
        waiting = threading.Thread(
            target=lambda: outcome.append(second.append("s-2", [NewEvent("s-2", "Second")]))
        )
        waiting.start()
        wait_until(
            lambda: _waiting_for_a_lock(filled, second.conn.info.backend_pid), "the second writer to wait"
        )
        writer.write([("", NewEvent("s-1", "First"))])
        writer.commit()
        waiting.join()
        assert [type(o).__name__ for o in outcome] == ["AppendResult"]
        assert [(e.position, e.type) for e in first.read_all(from_position=3)] == [
            (3, "First"),
            (4, "Second"),
        ]


def test_a_psql_insert_beside_an_esctl_writer_waits_for_it_and_fails_cleanly(filled):
    import threading

    with backends.open(filled) as store, psycopg.connect(filled, autocommit=True) as psql:
        writer = _holding_the_head(store)
        failed: list[BaseException] = []

        def insert() -> None:
            try:
                psql.execute(_INSERT + "(3, 's-1', 3, 'P', '{}', '{}', 'p-3', '2020-01-01T00:00:00.000000Z')")
            except psycopg.Error as exc:
                failed.append(exc)

        inserting = threading.Thread(target=insert)
        inserting.start()
        wait_until(lambda: _waiting_for_a_lock(filled, psql.info.backend_pid), "the psql insert to wait")
        writer.write([("", NewEvent("s-1", "C"))])
        writer.commit()
        inserting.join()
        assert [type(e) for e in failed] == [
            psycopg.errors.UniqueViolation
        ]  # position 3 is taken: no deadlock
        assert [(e.position, e.type) for e in store.read_all()] == [(1, "A"), (2, "B"), (3, "C")]


def test_the_guards_let_only_esctls_trigger_keep_the_derived_tables(filled):
    with psycopg.connect(filled, autocommit=True) as conn:
        conn.execute("CREATE TABLE hook (x integer)")
        conn.execute(
            "CREATE FUNCTION hook_fn() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN UPDATE esctl_head SET position = 0; DELETE FROM streams; RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE TRIGGER hook_t AFTER INSERT ON hook FOR EACH STATEMENT EXECUTE FUNCTION hook_fn()"
        )
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="esctl_head: UPDATE refused"):
            conn.execute("INSERT INTO hook VALUES (1)")
        kept, computed = derived(conn)
        assert kept == computed
        assert conn.execute("SELECT position FROM esctl_head").fetchone()[0] == 2


@settings(
    max_examples=50,
    suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.text(st.characters(blacklist_categories=["Cs", "Cc", "Zs", "Zl", "Zp"]), min_size=1, max_size=30),
        min_size=1,
        max_size=20,
    )
)
def test_the_sort_key_in_sql_is_pythons_for_any_names(filled, names):
    with psycopg.connect(filled) as conn:
        keys = conn.execute(
            "SELECT esctl_sort_key(n) FROM unnest(%s::text[]) WITH ORDINALITY AS u(n, i) ORDER BY i", (names,)
        ).fetchall()
    assert [bytes(key) for (key,) in keys] == [sort_key(name) for name in names]


def test_check_finds_what_a_superuser_did_around_the_triggers(filled):
    with backends.open(filled) as store:
        store.append("s-2", [NewEvent("s-2", "C")])
        assert store.check() == []
    with psycopg.connect(filled, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no user triggers fire
        conn.execute("DELETE FROM events WHERE position = 2")
        conn.execute("RESET session_replication_role")
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
    with backends.open(filled) as store:
        assert store.check() == [
            "position 2: missing (2 events, the last at position 3)",
            "streams row s-1 s: the events say ('s-1', 's', 1, 1, 1), the store keeps ('s-1', 's', 2, 1, 2)",
            "counter category s: the events say ('category', 's', 2), the store keeps ('category', 's', 3)",
            "counter type B: kept, ('type', 'B', 1), but no event says so",
            "trigger events_append_only: disabled",
        ]


def test_check_finds_a_replica_only_trigger_and_a_missing_head(filled):
    with psycopg.connect(filled, autocommit=True) as conn:
        conn.execute("ALTER TABLE events ENABLE REPLICA TRIGGER events_added")  # fires in no ordinary session
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM esctl_head")
    with backends.open(filled) as store:
        assert store.check() == ["esctl_head: 0 rows, not one", "trigger events_added: disabled"]
