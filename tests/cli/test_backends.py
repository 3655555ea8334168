"""The same commands on every backend give the same output and exit codes: a
session of store, aggregate and projection commands runs on SQLite and on
PostgreSQL, and its stdout, stderr and exit codes must match once each store's
own name (a path, a URL) and its size are set aside."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from esctl import store as backends
from esctl.cli.app import app

SAMPLES = Path(__file__).parents[2] / "sample_streams"
ORDERS = SAMPLES / "orders"
BANK = SAMPLES / "bank"
ID = "0190a2b4-0000-7000-8000-0000000000c1"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")
NOW = re.compile(r"20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]{15}Z")

SESSION: list[tuple[list[str], str | None]] = [
    (["init", "-o", "json"], None),
    (["import", str(ORDERS / "events.ndjson")], None),
    (["import", str(BANK / "events.ndjson")], None),
    (["import", "-"], '{"stream": "order-1", "type": "X", "expected_version": 1}\n'),  # conflict: exit 3
    (["import", "-"], '{"stream": "order 1", "type": "X"}\n'),  # bad input: exit 2
    (["append", "order-1", "Noted", "--expected-version", "1"], None),  # exit 3
    (["append", "order-1", "Noted", "--id", ID, "--expected-version", "3"], None),
    (["append", "order-1", "Noted", "--id", ID], None),  # the same again: a no-op
    (["append", "order-1", "Other", "--id", ID], None),  # the id, other content: exit 3
    (["read", "order-1", "-o", "json"], None),
    (["read", "order-1", "--backwards", "--limit", "2"], None),
    (["read", "--all", "--type", "OrderShipped", "--type", "Deposited"], None),
    (["read", "--all", "--category", "order", "--from-position", "3", "--limit", "2"], None),
    (["read", "nope-1"], None),  # exit 4
    (["streams"], None),
    (["streams", "--category", "order", "--limit", "2"], None),
    (["info", "-o", "json"], None),
    (["info", "order-1", "-o", "json"], None),
    (["export"], None),
    (["--model", str(ORDERS / "model.py"), "replay", "order-1"], None),
    (["--model", str(ORDERS / "model.py"), "replay", "order-1", "--as-of", "2026-01-05T12:00:00Z"], None),
    (["--model", str(ORDERS / "model.py"), "replay", "order-3"], None),
    (["--model", str(ORDERS / "model.py"), "diff", "order-1", "1", "3"], None),
    (["--model", str(ORDERS / "model.py"), "versions", "order-1"], None),
    (["--model", str(ORDERS / "model.py"), "exec", "order-9", "ship", '{"tracking_number": "T-1"}'], None),
    (
        [
            "--model",
            str(ORDERS / "model.py"),
            "exec",
            "order-9",
            "create",
            '{"customer_id": "c-1", "lines": [{"product_id": "p-1", "quantity": 2, "price": "29.99"}]}',
        ],
        None,
    ),
    (["--model", str(ORDERS / "model.py"), "exec", "order-9", "confirm"], None),
    (["--model", str(ORDERS / "model.py"), "snapshot", "order-9"], None),
    (["--model", str(ORDERS / "model.py"), "snapshot", "order-9", "--list"], None),
    (["--model", str(ORDERS / "model.py"), "replay", "order-9"], None),
    (["--model", str(BANK / "model.py"), "project", "run", "balances"], None),
    (["--model", str(BANK / "model.py"), "query", "select * from balances order by account"], None),
    (["--model", str(BANK / "model.py"), "project", "verify", "balances"], None),
    (["--model", str(BANK / "model.py"), "project", "rebuild", "balances"], None),
    (["migrate", "-o", "json"], None),
]


def _run_session(url: str, read_db: Path | None) -> list[tuple[int, str, str]]:
    """The session's outcomes, its read models in `read_db` (a SQLite file) or,
    without one, where the store lives."""
    runner = CliRunner()
    outcomes = []
    where = ["--read-db", str(read_db)] if read_db is not None else []
    for args, stdin in SESSION:
        result = runner.invoke(app, ["--db", url, *where, *args], input=stdin)
        outcomes.append((result.exit_code, result.stdout, result.stderr))
    return outcomes


def _neutral(text: str, names: list[str]) -> str:
    for name in names:
        text = text.replace(name, "STORE")
    text = re.sub(r'"file_size": ?[0-9]+', '"file_size": N', text)
    text = re.sub(r'"(seconds|events_per_second)": ?[0-9.e-]+', r'"\1": N', text)
    return NOW.sub("NOW", UUID.sub("UUID", text))


@pytest.fixture(params=["read models beside the events", "read models in --read-db"])
def separate_read_db(request) -> bool:
    return request.param.endswith("--read-db")


@pytest.fixture
def sqlite_session(tmp_path, monkeypatch, separate_read_db):
    for var in ("ESCTL_DB", "ESCTL_MODEL", "ESCTL_READ_DB", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    db = tmp_path / "events.db"
    read_db = tmp_path / "read-sqlite.db" if separate_read_db else None
    return [str(db.resolve()), str(db)], _run_session(str(db), read_db)


def test_a_session_prints_the_same_on_postgresql_as_on_sqlite(
    sqlite_session, postgres_url, tmp_path, separate_read_db
):
    from esctl.store.postgres.store import display_url
    from tests import postgres

    names, on_sqlite = sqlite_session
    with postgres.fresh_schema(postgres_url) as url:
        on_postgres = _run_session(url, tmp_path / "read-pg.db" if separate_read_db else None)
        pg_names = [url, display_url(url)]
    codes = [code for code, _, _ in on_sqlite]
    assert codes == [0, 0, 0, 3, 2, 3, 0, 0, 3, 0, 0, 0, 0, 4, *[0] * 10, 6, *[0] * 10]
    for (args, _), lite, pg in zip(SESSION, on_sqlite, on_postgres, strict=True):
        lite = (lite[0], _neutral(lite[1], names), _neutral(lite[2], names))
        pg = (pg[0], _neutral(pg[1], pg_names), _neutral(pg[2], pg_names))
        assert pg == lite, args
    info = json.loads(on_postgres[SESSION.index((["info", "-o", "json"], None))][1])
    assert info["path"] == display_url(url) and info["events"] > 0


def test_read_models_of_a_postgresql_store_live_in_a_schema_per_projection(postgres_url):
    """psql sees a projection's tables in `<store schema>_<projection>`, the
    checkpoint beside the events; `esctl query` finds them by plain name."""
    import psycopg

    from tests import postgres

    runner = CliRunner()
    model = ["--model", str(BANK / "model.py")]
    with postgres.fresh_schema(postgres_url) as url:
        assert runner.invoke(app, ["--db", url, "import", str(BANK / "events.ndjson")]).exit_code == 0
        result = runner.invoke(app, ["--db", url, *model, "project", "run", "balances"])
        assert (result.exit_code, result.stderr) == (0, "")
        with psycopg.connect(url) as conn:
            schema = conn.execute("SELECT current_schema()").fetchone()[0]
            rows = conn.execute(
                f'SELECT account, balance FROM "{schema}_balances".balances ORDER BY 1'
            ).fetchall()
            (checkpoint,) = conn.execute("SELECT checkpoint FROM esctl_projections").fetchone()
            head = conn.execute("SELECT max(position) FROM events").fetchone()[0]
        queried = runner.invoke(
            app, ["--db", url, "query", "select account, balance from balances order by 1"]
        )
    assert rows and checkpoint == head
    assert [(r["account"], r["balance"]) for r in map(json.loads, queried.stdout.splitlines())] == rows


def test_an_unreachable_server_is_one_line_and_exit_1(tmp_path):
    result = CliRunner().invoke(app, ["--db", f"postgresql://x:pw@/db?host={tmp_path}&port=1", "info"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("esctl: error: cannot connect to postgresql://x:***@/db?host=")
    assert len(result.stderr.splitlines()) == 1 and "pw" not in result.stderr


def test_copy_between_backends_is_lossless_and_resumes_after_an_interruption(
    cli, db, tmp_path, postgres_url, monkeypatch
):
    from tests import postgres
    from tests.helpers import exported

    assert cli("import", str(ORDERS / "events.ndjson")).exit_code == 0
    assert cli("import", str(BANK / "events.ndjson")).exit_code == 0
    back = tmp_path / "back.db"
    with postgres.fresh_schema(postgres_url) as url:
        # Interrupted inside its second batch's transaction, its rows inserted: that
        # batch is rolled back, the first stays, and the copy resumes after it.
        from esctl.store.writing import ChunkWriter

        real = ChunkWriter.write_stored
        batches: list[int] = []

        def interrupted(writer, rows):
            real(writer, rows)
            batches.append(len(rows))
            if len(batches) == 2:
                raise KeyboardInterrupt

        monkeypatch.setattr(ChunkWriter, "write_stored", interrupted)
        stopped = cli("copy", str(db), url, "--batch-size", "5")
        assert stopped.exit_code == 130
        monkeypatch.setattr(ChunkWriter, "write_stored", real)
        resumed = cli("copy", str(db), url, "--batch-size", "5", "-o", "json")
        assert resumed.exit_code == 0, resumed.stderr
        doc = json.loads(resumed.stdout)
        assert (doc["already_there"], doc["copied"], doc["last_position"]) == (5, 13, 18)
        there_and_back = cli("copy", url, str(back))
        assert there_and_back.exit_code == 0, there_and_back.stderr
        on_postgres = CliRunner().invoke(app, ["--db", url, "export"]).stdout_bytes
        again = cli("copy", str(db), url, "-o", "json")
        assert json.loads(again.stdout)["copied"] == 0
    assert exported(back) == exported(db) == on_postgres
    assert cli("append", "x-1", "T", db_path=back).exit_code == 0
    refused = cli("copy", str(db), str(back))
    assert refused.exit_code == 1
    assert refused.stdout == ""
    assert refused.stderr == (
        f"esctl: error: {back} holds other events: its position 19 is x-1 v1, the source ends at 18;"
        " copy continues only a copy of the same log (into an empty store, or one an interrupted copy left)\n"
    )
    other = tmp_path / "other.db"
    assert cli("import", str(BANK / "events.ndjson"), db_path=other).exit_code == 0
    differs = cli("copy", str(db), str(other))
    assert differs.exit_code == 1
    with backends.open(other) as theirs, backends.open(db) as ours:
        mine, source = (next(s.read_all(from_position=1, limit=1)) for s in (theirs, ours))
    assert differs.stderr.startswith(  # the first position already differs
        f"esctl: error: {other} holds other events: its position 1 is {mine.stream} v{mine.version},"
        f" the source's is {source.stream} v{source.version}; copy continues only a copy of the same log"
    )
