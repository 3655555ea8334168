"""The table facade handlers write through: sqlite-utils semantics, queued writes
that reads always see, and errors that name the table and key."""

from __future__ import annotations

import sqlite3

import pytest

from esctl.projections import ProjectionWriteError, Table, Tables
from esctl.projections.catalog import create_table

ACCOUNTS = Table("accounts", {"id": str, "balance": int, "owner": str}, pk="id")
LOG = Table("log", {"line": str})


@pytest.fixture(params=[False, True], ids=["queued", "immediate"])
def db(request) -> Tables:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("BEGIN")
    create_table(conn, ACCOUNTS, "accounts", 1)
    create_table(conn, LOG, "log", 1)
    tables = Tables(conn, {"accounts": ACCOUNTS, "log": LOG}, {"accounts": "accounts", "log": "log"})
    tables.immediate = request.param
    return tables


def all_rows(db: Tables, table: str) -> list[tuple]:
    db.flush()
    return db.conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()


def test_upsert_inserts_then_updates_only_the_given_columns(db: Tables) -> None:
    db["accounts"].upsert({"id": "a", "balance": 1, "owner": "Ada"})
    db["accounts"].upsert({"id": "a", "balance": 5})
    db["accounts"].upsert({"id": "b", "balance": 2})
    assert all_rows(db, "accounts") == [("a", 5, "Ada"), ("b", 2, None)]


def test_reads_see_queued_writes_in_order(db: Tables) -> None:
    t = db["accounts"]
    t.insert({"id": "a", "balance": 1})
    assert t.get("a") == {"id": "a", "balance": 1, "owner": None}
    t.update("a", {"balance": 2})
    t.update("a", {"owner": "Ada"})
    db["log"].insert({"line": "x"})
    t.delete("a")
    assert t.get("a") is None
    assert t.get("a", default={}) == {}
    t.insert({"id": "b", "balance": 3})
    assert t.count == 1
    assert list(t.rows_where("balance > ?", [2])) == [{"id": "b", "balance": 3, "owner": None}]
    assert list(db.query(f"SELECT count(*) AS n FROM {db['log'].quoted}")) == [{"n": 1}]


def test_insert_clash_fails_unless_replace_or_ignore(db: Tables) -> None:
    t = db["accounts"]
    t.insert({"id": "a", "balance": 1})
    t.insert({"id": "a", "balance": 2}, ignore=True)
    assert t.get("a")["balance"] == 1
    t.insert({"id": "a", "balance": 3}, replace=True)
    assert t.get("a")["balance"] == 3
    with pytest.raises(sqlite3.IntegrityError):
        t.insert({"id": "a", "balance": 4})
        db.flush()


def test_update_of_a_missing_row_fails(db: Tables) -> None:
    with pytest.raises(ProjectionWriteError, match="no row with key 'zz'"):
        db["accounts"].update("zz", {"balance": 1})
        db.flush()


def test_mistakes_name_the_table_and_column(db: Tables) -> None:
    with pytest.raises(ProjectionWriteError, match="has no column 'nope'"):
        db["accounts"].upsert({"id": "a", "nope": 1})
    with pytest.raises(ProjectionWriteError, match="lacks key 'id'"):
        db["accounts"].upsert({"balance": 1})
    with pytest.raises(ProjectionWriteError, match="has no pk"):
        db["log"].get(1)
    with pytest.raises(ProjectionWriteError, match="does not own a table 'events'"):
        db["events"]


def test_the_sqlite_utils_table_is_there_for_the_rest(db: Tables) -> None:
    db["accounts"].insert({"id": "a", "balance": 1})
    assert db["accounts"].table.count == 1
    assert db.sqlite["accounts"].pks == ["id"]
