"""`query` is read-only: every kind of write is refused and nothing changes; it
cannot hang: a deadline and Ctrl-C stop it, even inside one SQLite step."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from esctl.errors import InvalidInput, NotFound, QueryTimeout
from esctl.projections import query
from esctl.projections.query import parse_params, run_query
from tests.helpers import file_digest

ENDLESS = "with recursive c(x) as (select 1 union all select x + 1 from c)"


@pytest.fixture
def models(store, read_conn):
    read_conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER, b BLOB)")
    read_conn.execute("INSERT INTO t VALUES ('007', 1, x'0102'), ('8', 2, NULL)")
    return Path(store.path)


@pytest.mark.parametrize(
    ("sql", "refused"),
    [
        ("DELETE FROM t", "DELETE from t"),
        ("delete from events", "DELETE from events"),
        ("UPDATE t SET v = 0", "UPDATE of t"),
        ("INSERT INTO t (k) VALUES ('x')", "INSERT into t"),
        ("DROP TABLE t", "DROP TABLE (a schema change)"),
        ("CREATE TABLE x (a)", "CREATE TABLE (a schema change)"),
        ("create unique index i on t (v)", "CREATE UNIQUE INDEX (a schema change)"),
        ("ATTACH 'other.db' AS o", "ATTACH 'other.db'"),
        ("PRAGMA query_only = OFF", "PRAGMA query_only = OFF"),
        ("PRAGMA journal_mode = DELETE", "PRAGMA journal_mode = DELETE"),
        ("BEGIN IMMEDIATE", "a transaction statement (BEGIN/COMMIT/ROLLBACK)"),
        ("VACUUM", "VACUUM"),
        ("  -- tidy up\n vacuum INTO 'copy.db'", "VACUUM INTO"),
        ("REINDEX", "REINDEX"),
        ("SAVEPOINT a", "SAVEPOINT a"),
        ("PRAGMA user_version = 5", "PRAGMA user_version = 5"),
        ("PRAGMA cache_size(5)", "PRAGMA cache_size = 5"),
        ("PRAGMA wal_checkpoint", "PRAGMA wal_checkpoint"),
        ("PRAGMA optimize", "PRAGMA optimize"),
        ("SELECT * FROM pragma_optimize", "PRAGMA optimize"),
        ("PRAGMA incremental_vacuum", "PRAGMA incremental_vacuum"),
    ],
)
def test_writes_are_refused_and_nothing_changes(models, sql, refused) -> None:
    before = file_digest(models)
    with pytest.raises(InvalidInput) as raised:
        result = run_query(str(models), sql)
        list(result.rows)
    assert str(raised.value) == f"query is read-only: {refused} refused"
    assert file_digest(models) == before
    assert not (models.parent / "copy.db").exists()


@pytest.mark.parametrize("sql", ["", "   ", "-- nothing", "/* nothing */ ;"])
def test_empty_sql_is_invalid_input(models, sql) -> None:
    with pytest.raises(InvalidInput, match="no SQL statement"):
        run_query(str(models), sql)


def test_reads_with_named_parameters(models) -> None:
    result = run_query(
        str(models), "SELECT k, v, b FROM t WHERE v >= :min ORDER BY k", parse_params(["min=1"])
    )
    assert result.columns == ["k", "v", "b"]
    assert list(result.rows) == [{"k": "007", "v": 1, "b": "AQI="}, {"k": "8", "v": 2, "b": None}]
    found = run_query(str(models), "SELECT v FROM t WHERE k = :k", parse_params(["k=007"]))
    assert list(found.rows) == [{"v": 1}]


def test_parameters_parse_numbers_only_when_written_plainly() -> None:
    assert parse_params(["a=1", "b=-2.5", "c=007", "d=x=y", ":e=", "f=1e3"]) == {
        "a": 1,
        "b": -2.5,
        "c": "007",
        "d": "x=y",
        "e": "",
        "f": 1000.0,
    }
    with pytest.raises(InvalidInput, match="NAME=VALUE"):
        parse_params(["novalue"])


def test_bad_sql_and_missing_files_are_clear(models, tmp_path) -> None:
    with pytest.raises(InvalidInput, match="no such table: nope"):
        run_query(str(models), "SELECT * FROM nope")
    with pytest.raises(InvalidInput, match="one statement"):
        run_query(str(models), "SELECT 1; SELECT 2")
    with pytest.raises(NotFound, match="no read-model database"):
        run_query(str(tmp_path / "missing.db"), "SELECT 1")


def test_duplicate_column_names_get_suffixes(models) -> None:
    result = run_query(str(models), "SELECT a.k, b.k FROM t a JOIN t b ON a.k = b.k ORDER BY 1")
    assert result.columns == ["k", "k_2"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT load_extension('x')",
        "SELECT fts3_tokenizer('simple')",
        "SELECT FTS3_TOKENIZER('mine', x'0000000000000000')",
        "SELECT k FROM t WHERE fts3_tokenizer('simple') IS NOT NULL",
    ],
)
def test_functions_that_reach_native_code_are_refused(models, sql) -> None:
    name = "load_extension" if "load" in sql else "fts3_tokenizer"
    with pytest.raises(InvalidInput) as raised:
        list(run_query(str(models), sql).rows)
    assert str(raised.value) == f"query refused: {name}() is not allowed"


@pytest.mark.parametrize(
    ("sql", "first"),
    [
        ("SELECT name, pk FROM pragma_table_info('t')", {"name": "k", "pk": 1}),
        ("SELECT name FROM pragma_table_xinfo('t', 'main')", {"name": "k"}),
        (
            "PRAGMA table_info(t)",
            {"cid": 0, "name": "k", "type": "TEXT", "notnull": 0, "dflt_value": None, "pk": 1},
        ),
        ("SELECT origin FROM pragma_index_list('t')", {"origin": "pk"}),
        ("SELECT name FROM pragma_table_list WHERE name = 't'", {"name": "t"}),
        (
            "SELECT * FROM pragma_table_list('t')",
            {"schema": "main", "name": "t", "type": "table", "ncol": 3, "wr": 0, "strict": 0},
        ),
        ("SELECT * FROM pragma_integrity_check(10)", {"integrity_check": "ok"}),
        ("PRAGMA quick_check", {"quick_check": "ok"}),
        ("SELECT * FROM pragma_journal_mode", {"journal_mode": "wal"}),
        ("SELECT count(*) AS n FROM dbstat WHERE name = 't'", {"n": 1}),
        ("SELECT value FROM json_each('[3, 4]')", {"value": 3}),
        (
            "SELECT m.name AS tbl, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p"
            " WHERE m.name = 't' ORDER BY p.cid",
            {"tbl": "t", "name": "k"},
        ),
    ],
)
def test_table_valued_pragmas_and_virtual_tables_that_read_are_allowed(models, sql, first) -> None:
    before = file_digest(models)
    rows = list(run_query(str(models), sql).rows)
    assert rows[0] == first
    assert file_digest(models) == before


@pytest.mark.parametrize(
    ("sql", "params", "message"),
    [
        ("SELECT 'caf\udcff'", {}, "the SQL is not valid UTF-8 (byte 0xff at character 12)"),
        ("SELECT :v", {"v": "\udce9t\u00e9"}, "parameter :v is not valid UTF-8 (byte 0xe9 at character 1)"),
        ("SELECT :v", {"v": "\ud800"}, "parameter :v is not valid UTF-8 (U+D800 at character 1)"),
        ("SELECT 1", {"\udcff": 1}, "a parameter name is not valid UTF-8 (byte 0xff at character 1)"),
    ],
)
def test_text_that_is_not_utf8_is_invalid_input(models, sql, params, message) -> None:
    # Undecodable bytes in a command-line argument arrive as lone surrogates.
    with pytest.raises(InvalidInput) as raised:
        run_query(str(models), sql, params)
    assert str(raised.value) == f"query: {message}"


def test_a_query_that_never_ends_stops_at_its_timeout(models) -> None:
    with pytest.raises(QueryTimeout) as raised:
        run_query(str(models), f"{ENDLESS} SELECT count(*) FROM c", timeout=0.2)
    assert str(raised.value) == "query stopped after 0.2 s (--timeout; 0 for no limit)"
    assert raised.value.exit_code == 124


def test_the_timeout_covers_reading_the_rows_too(models) -> None:
    result = run_query(str(models), f"{ENDLESS} SELECT x FROM c", timeout=0.2)
    read = 0
    with pytest.raises(QueryTimeout):
        for _row in result.rows:
            read += 1
    assert read > 0  # the first rows came out before the deadline stopped it


def test_the_timeout_works_outside_the_main_thread(models) -> None:
    caught: list[BaseException] = []

    def run() -> None:
        try:
            run_query(str(models), f"{ENDLESS} SELECT count(*) FROM c", timeout=0.2)
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert [type(e) for e in caught] == [QueryTimeout]


@pytest.mark.parametrize("timeout", [-1, float("nan")])
def test_a_negative_timeout_is_invalid_input(models, timeout) -> None:
    with pytest.raises(InvalidInput, match="timeout must be 0 \\(no limit\\) or more seconds"):
        run_query(str(models), "SELECT 1", timeout=timeout)


def test_no_timeout_lets_a_query_finish(models) -> None:
    sql = f"{ENDLESS} SELECT count(*) AS n FROM (SELECT x FROM c LIMIT 300000)"
    assert list(run_query(str(models), sql, timeout=0).rows) == [{"n": 300000}]


def test_ctrl_c_inside_one_sqlite_step_arrives_as_keyboard_interrupt(models, monkeypatch) -> None:
    running = threading.Event()
    tick = query._Run.tick

    def first_tick(self: query._Run) -> bool:
        running.set()
        return tick(self)

    stopped = threading.Event()
    signals_sent = []

    def ctrl_c() -> None:
        # One Ctrl-C must stop the query. Should it be lost, more follow, so that the
        # test fails on the count below instead of waiting forever.
        running.wait(timeout=60)
        while not stopped.is_set():
            signals_sent.append(signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            stopped.wait(timeout=60)

    monkeypatch.setattr(query._Run, "tick", first_tick)
    thread = threading.Thread(target=ctrl_c)
    thread.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            try:
                run_query(str(models), f"{ENDLESS} SELECT count(*) FROM c")
            finally:
                stopped.set()
    finally:
        thread.join()
    assert running.is_set()
    assert len(signals_sent) == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_an_ignored_sigint_stays_ignored(models) -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert list(run_query(str(models), "SELECT count(*) AS n FROM t").rows) == [{"n": 2}]
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
