"""The table facade handlers write through: sqlite-utils semantics, queued writes
that reads always see, and errors that name the table and key."""

from __future__ import annotations

import sqlite3

import pytest

from esctl.projections import ProjectionWriteError, Table, Tables
from esctl.store.sqlite.readmodels import SQLiteReadModels

ACCOUNTS = Table("accounts", {"id": str, "balance": int, "owner": str}, pk="id")
LOG = Table("log", {"line": str})


@pytest.fixture(params=["sqlite", "postgres"])
def models(request):
    """Empty read models: an in-memory SQLite, or a PostgreSQL schema."""
    if request.param == "sqlite":
        with SQLiteReadModels.in_memory() as db:
            yield db
        return
    from esctl.store.postgres import PostgresStore
    from esctl.store.postgres.readmodels import PostgresReadModels
    from tests import postgres

    with (
        postgres.fresh_schema(request.getfixturevalue("postgres_url")) as url,
        PostgresStore.open(url, create=True) as store,
        PostgresReadModels.open(store, create=True) as db,
    ):
        yield db


@pytest.fixture(params=[False, True], ids=["queued", "immediate"])
def db(request, models) -> Tables:
    models.execute("BEGIN")
    models.create_table("p", ACCOUNTS, 1)
    models.create_table("p", LOG, 1)
    target = models.target("p", ["accounts", "log"])
    tables = Tables(models, {"accounts": ACCOUNTS, "log": LOG}, target)
    tables.immediate = request.param
    yield tables
    models.rollback()


def all_rows(db: Tables, table: str) -> list[tuple]:
    db.flush()
    return db.db.execute(f"SELECT * FROM {db[table].quoted} ORDER BY 1").fetchall()


def integrity_errors() -> tuple[type[Exception], ...]:
    """The driver's exception for a broken constraint, whichever backend."""
    try:
        import psycopg
    except ImportError:
        return (sqlite3.IntegrityError,)
    return (sqlite3.IntegrityError, psycopg.IntegrityError)


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
    t.insert({"id": "a", "balance": 1, "owner": "Ada"})
    t.insert({"id": "a", "balance": 2}, ignore=True)
    assert t.get("a")["balance"] == 1
    t.insert({"id": "a", "balance": 3}, replace=True)  # the whole row: owner goes
    assert t.get("a") == {"id": "a", "balance": 3, "owner": None}
    with pytest.raises(integrity_errors()):
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


def test_the_sqlite_utils_table_is_there_for_the_rest_on_sqlite(db: Tables) -> None:
    db["accounts"].insert({"id": "a", "balance": 1})
    if db.db.dialect != "sqlite":
        with pytest.raises(ProjectionWriteError, match=r"db\.sqlite is for SQLite read models"):
            db["accounts"].table  # noqa: B018
        return
    assert db["accounts"].table.count == 1
    assert db.sqlite["accounts"].pks == ["id"]


def test_values_keep_their_types(db: Tables) -> None:
    """Dicts and lists as their JSON text, Decimal as its exact text; on
    PostgreSQL a bool column holds booleans."""
    from decimal import Decimal

    wide = Table("wide", {"k": str, "doc": dict, "tags": list, "flag": bool, "amount": str}, pk="k")
    db.db.create_table("p", wide, 1)
    tables = Tables(db.db, {"wide": wide}, db.db.target("p", ["wide"]))
    tables["wide"].insert(
        {"k": "a", "doc": {"b": [1, 2]}, "tags": ["x"], "flag": True, "amount": Decimal("1.10")}
    )
    row = tables["wide"].get("a")
    assert (row["doc"], row["tags"], row["amount"]) == ('{"b":[1,2]}', '["x"]', "1.10")
    assert row["flag"] == 1 and (row["flag"] is True) == (db.db.dialect == "postgresql")


def test_sql_fragments_mean_the_same_on_every_backend(db: Tables) -> None:
    """A % is a character, with parameters or without; ? and :name are placeholders."""
    log = db["log"]
    for line in ("50%", "50%%", "fifty"):
        log.insert({"line": line})
    assert log.count_where("line LIKE '50%'") == 2
    assert log.count_where("line = ?", ["50%"]) == 1
    assert [r["line"] for r in db.query(f"SELECT line FROM {log.quoted} WHERE line = :l", {"l": "50%%"})] == [
        "50%%"
    ]
    log.delete_where("line = '50%'")
    assert sorted(r["line"] for r in log.rows_where()) == ["50%%", "fifty"]
