"""`esctl query` on a PostgreSQL store: read-only SQL over its database, with the
rows, parameters, refusals, timeout and exit codes that SQLite's query has."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from esctl.cli.app import app
from tests import postgres

ORDERS = Path(__file__).parents[2] / "sample_streams" / "orders" / "events.ndjson"


@pytest.fixture
def stores(tmp_path, postgres_url, monkeypatch):
    """The orders sample in a SQLite store and in a PostgreSQL one."""
    for var in ("ESCTL_DB", "ESCTL_MODEL", "ESCTL_READ_DB", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    lite = str(tmp_path / "events.db")
    with postgres.fresh_schema(postgres_url) as url:
        for store in (lite, url):
            assert CliRunner().invoke(app, ["--db", store, "import", str(ORDERS)]).exit_code == 0
        yield lite, url


def query(store: str, *args: str):
    return CliRunner().invoke(app, ["--db", store, "query", *args])


@pytest.mark.parametrize(
    "args",
    [
        ["select type, count(*) as n from events group by type order by n desc, type"],
        ["select stream, version, data from events where position = :p", "-p", "p=3"],
        [
            "select id, type from events where stream = :s and type like 'Order%' order by position",
            "-p",
            "s=order-1",
        ],
        ["select 1 as a, 2 as a"],  # a repeated name gets a suffix
        ["select stream from streams where stream = 'nope'"],  # no rows: nothing printed
    ],
)
def test_a_query_prints_what_it_prints_on_sqlite(stores, args):
    lite, url = stores
    on_sqlite, on_postgres = query(lite, *args), query(url, *args)
    assert on_postgres.exit_code == on_sqlite.exit_code == 0, on_postgres.stderr
    assert on_postgres.stdout == on_sqlite.stdout
    assert on_postgres.stderr == on_sqlite.stderr == ""


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("delete from events", "query is read-only: DELETE FROM refused"),
        ("create table x (a integer)", "query is read-only: CREATE TABLE refused"),
        (
            "commit; delete from events",
            "query is read-only: COMMIT; DELETE refused (a query starts with EXPLAIN,",
        ),
        ("copy (select 1) to program 'touch /tmp/x'", "query is read-only: COPY (SELECT refused"),
        ("analyze events", "query is read-only: ANALYZE EVENTS refused"),
        ("do $$ begin delete from events; end $$", "query is read-only: DO $$ refused"),
        ("select 1; commit; delete from events", "query: cannot insert multiple commands"),
        (
            "with gone as (delete from events returning 1) select * from gone",
            "query: DECLARE CURSOR must not",
        ),
        ("select nextval('no_such_sequence')", 'query: relation "no_such_sequence" does not exist'),
        ("select :missing", "query: no value for :missing (give --param missing=VALUE)"),
    ],
)
def test_writes_are_refused_in_one_line_and_the_store_stays_as_it_was(stores, sql, message):
    _, url = stores
    before = _export(url)
    result = query(url, sql)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"esctl: error: {message}")
    assert len(result.stderr.splitlines()) == 1
    assert _export(url) == before


def test_a_query_past_its_timeout_exits_124(stores):
    _, url = stores
    result = query(url, "select pg_sleep(60)", "--timeout", "0.2")
    assert result.exit_code == 124
    assert result.stdout == ""
    assert result.stderr == "esctl: error: query stopped after 0.2 s (--timeout; 0 for no limit)\n"


def test_a_read_db_still_names_a_sqlite_file_for_the_read_models(stores, tmp_path):
    _, url = stores
    result = CliRunner().invoke(
        app, ["--db", url, "--read-db", str(tmp_path / "none.db"), "query", "select 1"]
    )
    assert result.exit_code == 4
    assert result.stderr == f"esctl: error: no read-model database at {tmp_path / 'none.db'}\n"


def test_a_timeout_beyond_what_postgresql_takes_is_as_good_as_none(stores):
    _, url = stores
    result = query(url, "select 1 as one", "--timeout", "1e7")
    assert (result.exit_code, result.stdout, result.stderr) == (0, '{"one":1}\n', "")


@pytest.mark.parametrize(
    ("sql", "bound"),
    [
        ("select :x, :y", "select %(x)s, %(y)s"),
        (
            "select ':x', E'\\' :x ', \":x\", $$ :x $$, $t$ :x $t$",
            "select ':x', E'\\' :x ', \":x\", $$ :x $$, $t$ :x $t$",
        ),
        ("select 1::int as a$$, :x -- :x", "select 1::int as a$$, %(x)s -- :x"),
        ("select '100%' where t like'a%' /* :x */", "select '100%%' where t like'a%%' /* :x */"),
    ],
)
def test_placeholders_are_rewritten_only_outside_strings_names_comments_and_casts(sql, bound):
    from esctl.store.postgres.query import bind

    assert bind(sql, {"x": 1, "y": 2}) == bound


def test_bytes_and_casts_come_out_as_json(stores):
    _, url = stores
    result = query(url, "select '\\x0102'::bytea as b, 1.50::numeric as n, 'x'::text as t")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == '{"b":"AQI=","n":1.50,"t":"x"}\n'


def _export(url: str) -> bytes:
    with psycopg.connect(url) as conn:
        return repr(conn.execute("SELECT * FROM events ORDER BY position").fetchall()).encode()
