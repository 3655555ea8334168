"""`query` is read-only: every kind of write is refused and nothing changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from esctl.errors import InvalidInput, NotFound
from esctl.projections.query import parse_params, run_query
from tests.helpers import file_digest


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
        ("SELECT load_extension('x')", "load_extension()"),
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
