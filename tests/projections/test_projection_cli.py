"""The commands: project list/run/rebuild/verify/reset and query, with stdout and
stderr asserted separately, and their exit codes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import HANG, wait_until
from tests.projections.conftest import BANK, COUNTER_MODEL


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def bank(cli, db: Path):
    """`cli` against a store holding the bank sample, with the bank model."""
    result = cli("import", str(BANK / "events.ndjson"))
    assert result.exit_code == 0, result.stderr

    def run(*args: str, **kw):
        return cli("--model", str(BANK / "model.py"), *args, **kw)

    return run


def test_list_shows_every_projection_with_the_pinned_keys(bank) -> None:
    result = bank("project", "list")
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout) == [
        {"name": "balances", "checkpoint": 0, "head": 11, "lag": 11, "status": "behind"}
    ]
    assert result.stderr == ""
    table = bank("project", "list", "-o", "table")
    assert "balances" in table.stdout and "behind" in table.stdout


def test_run_then_query_the_read_model(bank) -> None:
    result = bank("project", "run", "balances")
    assert result.exit_code == 0, result.stderr
    (doc,) = lines(result.stdout)
    assert {k: doc[k] for k in ("name", "checkpoint", "head", "lag", "status", "applied")} == {
        "name": "balances",
        "checkpoint": 11,
        "head": 11,
        "lag": 0,
        "status": "live",
        "applied": 11,
    }
    query = bank("query", "SELECT account, balance, version FROM balances ORDER BY account")
    assert query.exit_code == 0, query.stderr
    assert lines(query.stdout) == [
        {"account": "ada", "balance": 0, "version": 5},
        {"account": "bob", "balance": 55, "version": 4},
        {"account": "cy", "balance": 10, "version": 2},
    ]
    assert lines(bank("project", "list").stdout)[0]["status"] == "live"


def test_run_needs_names_or_all_and_known_names(bank, cli) -> None:
    none = bank("project", "run")
    assert (none.exit_code, none.stdout) == (2, "")
    assert "name the projections to run, or give --all" in none.stderr
    unknown = bank("project", "run", "nope")
    assert unknown.exit_code == 4 and "no projection named 'nope'" in unknown.stderr
    both = bank("project", "run", "balances", "--all")
    assert both.exit_code == 2
    no_model = cli("project", "list")
    assert no_model.exit_code == 2 and "no model" in no_model.stderr
    assert bank("project", "run", "--all").exit_code == 0


def test_missing_store_exits_4(cli, tmp_path) -> None:
    for args in (["project", "list"], ["project", "run", "--all"], ["query", "SELECT 1"]):
        result = cli("--model", str(BANK / "model.py"), *args, db_path=tmp_path / "none.db")
        assert result.exit_code == 4, args
        assert "no event store" in result.stderr
        assert not (tmp_path / "none.db").exists()


def test_a_failing_projection_shows_failed_with_its_event(cli, write_model) -> None:
    model = write_model(COUNTER_MODEL.replace("sign = 1", "sign = 1 // event.data['x']"))
    for x in (1, 0, 2):
        assert cli("append", "s-1", "Added", json.dumps({"x": x})).exit_code == 0
    result = cli("--model", str(model), "project", "run", "counts")
    assert result.exit_code == 2  # the model's problem, as for an aggregate's handler
    assert "projection 'counts' failed at position 2 (stream 's-1', version 2, type Added)" in result.stderr
    line = (
        model.read_text()
        .splitlines()
        .index("    sign = 1 // event.data['x'] if event.type == \"Added\" else -1")
        + 1
    )
    assert f"{model.name}, line {line}: ZeroDivisionError" in result.stderr
    assert "Traceback" not in result.stderr
    (doc,) = lines(cli("--model", str(model), "project", "list").stdout)
    assert doc["status"] == "failed" and doc["checkpoint"] == 0
    assert set(doc) == {"name", "checkpoint", "head", "lag", "status", "error"}
    assert {k: doc["error"][k] for k in ("position", "stream", "version", "type")} == {
        "position": 2,
        "stream": "s-1",
        "version": 2,
        "type": "Added",
    }
    table = cli("--model", str(model), "project", "list", "-o", "table")
    assert "failed" in table.stdout and "ZeroDivisionError" in table.stdout


def test_stale_after_a_code_change_and_live_after_rebuild(cli, write_model) -> None:
    first = write_model(COUNTER_MODEL)
    changed = write_model(COUNTER_MODEL.replace('"n": row["n"] + 1', '"n": row["n"] + 2'))
    assert cli("append", "s-1", "Added").exit_code == 0
    assert cli("--model", str(first), "project", "run", "--all").exit_code == 0
    assert lines(cli("--model", str(changed), "project", "list").stdout)[0]["status"] == "stale"
    run = cli("--model", str(changed), "project", "run", "--all")
    assert run.exit_code == 0 and "is stale" in run.stderr
    rebuilt = cli("--model", str(changed), "project", "rebuild", "counts")
    assert rebuilt.exit_code == 0, rebuilt.stderr
    doc = json.loads(rebuilt.stdout)
    assert (doc["name"], doc["checkpoint"], doc["status"], doc["applied"]) == ("counts", 1, "live", 1)
    assert lines(cli("query", "SELECT n FROM counts").stdout) == [{"n": 2}]


def test_verify_exits_5_on_a_hand_edited_row(bank, db) -> None:
    assert bank("project", "run", "balances").exit_code == 0
    ok = bank("project", "verify", "balances")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    conn = sqlite3.connect(db)
    conn.execute("UPDATE balances SET balance = 1000 WHERE account = 'bob'")
    conn.commit()
    conn.close()
    bad = bank("project", "verify", "balances")
    assert bad.exit_code == 5
    doc = json.loads(bad.stdout)
    assert doc["ok"] is False and doc["counts"] == {"different": 1}
    (difference,) = doc["differences"]
    assert difference["key"] == {"account": "bob"} and difference["columns"] == ["balance"]
    assert (difference["live"]["balance"], difference["rebuilt"]["balance"]) == (1000, 55)
    assert "differs from a rebuild: 1 different" in bad.stderr
    table = bank("project", "verify", "balances", "-o", "table")
    assert table.exit_code == 5 and "bob" in table.stdout


def test_verify_of_a_failed_projection_says_it_failed_and_exits_2(cli, write_model) -> None:
    model = write_model(COUNTER_MODEL.replace("sign = 1", "sign = 1 // event.data['x']"))
    for x in (1, 0, 2):
        assert cli("append", "s-1", "Added", json.dumps({"x": x})).exit_code == 0
    assert cli("--model", str(model), "project", "run", "counts").exit_code == 2
    result = cli("--model", str(model), "project", "verify", "counts")
    assert result.exit_code == 2  # as `project run`: the model has to change
    doc = json.loads(result.stdout)
    assert (doc["ok"], doc["status"], doc["checkpoint"], doc["counts"]) == (False, "failed", 0, {})
    assert (doc["error"]["position"], doc["error"]["stream"], doc["error"]["version"]) == (2, "s-1", 2)
    (error,) = result.stderr.splitlines()
    assert error.startswith("esctl: error: projection 'counts' has failed at position 2 (")
    assert "ZeroDivisionError" in error
    assert error.endswith(
        "); its tables match a rebuild up to position 0: fix the model, then esctl project run counts"
    )
    table = cli("--model", str(model), "project", "verify", "counts", "-o", "table")
    assert table.exit_code == 2
    assert "counts has failed at position 2 (s-1 v2, Added)" in table.stdout
    assert "its tables match a rebuild at checkpoint 0" in table.stdout
    assert "✓" not in table.stdout


def test_verify_of_a_projection_never_built_exits_4(bank) -> None:
    result = bank("project", "verify", "balances")
    assert result.exit_code == 4 and "has not been built" in result.stderr


def test_reset_drops_the_read_model(bank, db) -> None:
    assert bank("project", "run", "balances").exit_code == 0
    result = bank("project", "reset", "balances")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"name": "balances", "dropped": ["balances"]}
    assert lines(bank("project", "list").stdout)[0]["checkpoint"] == 0
    gone = bank("query", "SELECT * FROM balances")
    assert gone.exit_code == 2 and "no such table" in gone.stderr
    again = bank("project", "reset", "balances")
    assert again.exit_code == 0 and "nothing to reset" in again.stderr
    assert bank("project", "reset", "nope").exit_code == 4


def test_query_refuses_delete_and_renders_tables(bank, db) -> None:
    assert bank("project", "run", "balances").exit_code == 0
    refused = bank("query", "DELETE FROM balances")
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert "query is read-only: DELETE from balances refused" in refused.stderr
    assert len(lines(bank("query", "SELECT * FROM balances").stdout)) == 3
    table = bank("query", "SELECT * FROM balances WHERE balance > :min", "--param", "min=20", "-o", "table")
    assert table.exit_code == 0 and "bob" in table.stdout and "ada" not in table.stdout


def test_read_db_keeps_read_models_out_of_the_store(bank, db, tmp_path) -> None:
    read_db = tmp_path / "read.db"
    assert bank("--read-db", str(read_db), "project", "run", "--all").exit_code == 0
    store_tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert "balances" not in store_tables and "esctl_projections" not in store_tables
    result = bank("--read-db", str(read_db), "query", "SELECT count(*) AS n FROM balances")
    assert lines(result.stdout) == [{"n": 3}]
    assert lines(bank("--read-db", str(read_db), "project", "list").stdout)[0]["status"] == "live"
    assert lines(bank("project", "list").stdout)[0]["status"] == "behind"  # the store's file has none
    assert bank("--read-db", str(read_db), "project", "verify", "balances").exit_code == 0


def test_the_account_aggregate_refuses_an_overdraft(bank) -> None:
    refused = bank("exec", "account-cy", "withdraw", '{"amount": 11}')
    assert refused.exit_code == 6 and "insufficient funds" in refused.stderr
    assert bank("exec", "account-cy", "withdraw", '{"amount": 10}').exit_code == 0
    assert bank("project", "run", "balances").exit_code == 0
    assert lines(bank("query", "SELECT balance FROM balances WHERE account = 'cy'").stdout) == [
        {"balance": 0}
    ]


def test_follow_applies_new_events_and_stops_cleanly_on_ctrl_c(store_url, tmp_path, monkeypatch) -> None:
    """On every backend: woken by the commit (data_version on SQLite, NOTIFY on
    PostgreSQL), the read models where the store lives."""
    from typer.testing import CliRunner

    from esctl.cli.app import app

    for var in ("ESCTL_DB", "ESCTL_MODEL", "ESCTL_READ_DB", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    read: list[str] = []

    def cli(*args: str):
        return CliRunner().invoke(app, ["--db", store_url, *read, *args])

    assert cli("import", str(BANK / "events.ndjson")).exit_code == 0
    env = {**os.environ, "ESCTL_DB": store_url, "ESCTL_MODEL": str(BANK / "model.py")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "esctl", *read, "project", "run", "balances", "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    watchdog = threading.Timer(HANG, proc.kill)  # a hang ends the follower, and so the reads
    watchdog.start()

    def next_line() -> dict:
        line = proc.stdout.readline()
        assert line, f"the follower ended early: {proc.stderr.read()}"
        return json.loads(line)

    try:
        first = next_line()
        assert first["checkpoint"] == 11
        assert cli("append", "account-bob", "Deposited", '{"amount": 45}').exit_code == 0
        assert next_line() == {"name": "balances", "checkpoint": 12, "applied": 1}
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=HANG)
    finally:
        watchdog.cancel()
        proc.kill()
    assert proc.returncode == 130, err  # interrupted, as everywhere else
    assert err.splitlines() == ["esctl: following balances: Ctrl-C stops", "esctl: stopped following"]
    balance = cli(
        "--model", str(BANK / "model.py"), "query", "SELECT balance FROM balances WHERE account = 'bob'"
    )
    assert lines(balance.stdout) == [{"balance": 100}]


def test_follow_stops_on_sigterm_with_143_and_nothing_half_applied(db, cli) -> None:
    assert cli("import", str(BANK / "events.ndjson")).exit_code == 0
    env = {**os.environ, "ESCTL_DB": str(db), "ESCTL_MODEL": str(BANK / "model.py")}
    env.pop("ESCTL_READ_DB", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "esctl", "project", "run", "balances", "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        # The barrier: the note it prints once it is following.
        assert proc.stderr.readline() == "esctl: following balances: Ctrl-C stops\n"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert err == "esctl: stopped following (terminated)\n"
    assert lines(out)[0]["checkpoint"] == 11
    (doc,) = lines(cli("--model", str(BANK / "model.py"), "project", "list").stdout)
    assert (doc["checkpoint"], doc["status"]) == (11, "live")


def test_rebuild_and_reset_refuse_while_another_rebuild_runs(bank, db) -> None:
    import time

    from esctl.store.sqlite.readmodels import SQLiteReadModels

    assert bank("project", "run", "balances").exit_code == 0
    with SQLiteReadModels.open(str(db), create=True) as holder:  # ensures the lease table
        assert holder.acquire_lease("probe", 1.0) is None
        holder.release_lease("probe")
    conn = sqlite3.connect(db)
    # Another rebuild, somewhere, holds the claim and renews it.
    conn.execute(
        "INSERT INTO esctl_leases VALUES ('rebuild:balances', 'process 4242 on build-7 since 2026-01-01T00:00:00Z',"
        " 'theirs', ?)",
        (time.time() + 600,),
    )
    conn.commit()
    for args in (["project", "rebuild", "balances"], ["project", "reset", "balances"]):
        result = bank(*args)
        assert (result.exit_code, result.stdout) == (3, ""), args
        assert "is being rebuilt by process 4242 on build-7" in result.stderr
        assert "Traceback" not in result.stderr
    assert conn.execute("SELECT count(*) FROM balances").fetchone()[0] == 3
    conn.execute("DELETE FROM esctl_leases")
    conn.commit()
    conn.close()
    assert bank("project", "rebuild", "balances").exit_code == 0


def test_a_table_dropped_by_hand_needs_a_rebuild(bank, db) -> None:
    assert bank("project", "run", "balances").exit_code == 0
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE balances")
    conn.close()
    (doc,) = lines(bank("project", "list").stdout)
    assert (doc["status"], doc["missing"]) == ("stale", ["balances"])
    assert "needs a rebuild" in bank("project", "list", "-o", "table").stdout
    run = bank("project", "run", "balances")
    assert run.exit_code == 1
    assert "has lost its table balances" in run.stderr and "esctl project rebuild balances" in run.stderr
    assert bank("project", "rebuild", "balances").exit_code == 0
    assert lines(bank("project", "list").stdout)[0]["status"] == "live"


def test_verify_on_a_read_db_that_is_not_a_database(bank, tmp_path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not a database, just text\n" * 100)
    result = bank("--read-db", str(junk), "project", "verify", "balances")
    assert (result.exit_code, result.stdout) == (1, "")
    assert f"{junk} cannot hold read models" in result.stderr
    assert "unexpected" not in result.stderr


def test_query_of_nothing_exits_2(bank) -> None:
    for sql in ("", "  -- just a comment"):
        result = bank("query", sql)
        assert (result.exit_code, result.stdout) == (2, ""), sql
        assert "no SQL statement" in result.stderr


def test_query_tables_right_align_numbers_whatever_the_column_name(bank) -> None:
    assert bank("project", "run", "balances").exit_code == 0
    result = bank(
        "query", "SELECT account AS who, balance AS money FROM balances ORDER BY account", "-o", "table"
    )
    assert result.exit_code == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.strip().startswith(("ada", "bob", "cy"))]
    money = [line.rstrip() for line in rows]
    # Right-aligned: every amount ends in the same column, whatever its width (0, 55, 10).
    assert len({len(line) for line in money}) == 1, result.stdout
    assert money[0].endswith(" 0") and money[1].endswith("55")


# Put before COUNTER_MODEL: its handler calls hold_until_go() first. The process that
# applies the first event creates STARTED, then holds that event (inside the
# rebuild, with its claim taken) until the test creates GO.
HOLD_AT_THE_FIRST_EVENT = """
import pathlib
import time

STARTED, GO = pathlib.Path({started!r}), pathlib.Path({go!r})


def hold_until_go():
    if STARTED.exists():
        return
    STARTED.touch()
    deadline = time.monotonic() + {hang!r}
    while not GO.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the test never created {{GO}}")
        time.sleep(0.01)
"""


@pytest.mark.slow
def test_two_processes_rebuilding_at_once_never_destroy_each_other(cli, db, write_model, tmp_path) -> None:
    started, go = tmp_path / "started", tmp_path / "go"
    held = write_model(
        HOLD_AT_THE_FIRST_EVENT.format(started=str(started), go=str(go), hang=HANG)
        + COUNTER_MODEL.replace("    sign = 1", "    hold_until_go()\n    sign = 1")
    )
    for x in range(30):
        assert cli("append", f"s-{x % 3}", "Added", json.dumps({"x": x})).exit_code == 0
    env = {**os.environ, "ESCTL_DB": str(db), "ESCTL_MODEL": str(held)}
    env.pop("ESCTL_READ_DB", None)
    command = [sys.executable, "-m", "esctl", "project"]
    first = subprocess.Popen(
        [*command, "rebuild", "counts"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: started.exists() or first.poll() is not None, "the first rebuild to start")
        assert first.poll() is None, first.communicate()
        # The first rebuild holds its first event: whatever the machine's load, it is
        # still running while the others try.
        others = [
            subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=HANG)
            for args in (["rebuild", "counts"], ["reset", "counts"])
        ]
        go.touch()
        out, err = first.communicate(timeout=HANG)
    finally:
        first.kill()
    assert first.returncode == 0, err
    for other in others:
        assert (other.returncode, other.stdout) == (3, ""), other.stderr
        assert f"is being rebuilt by process {first.pid} " in other.stderr
        assert "Traceback" not in other.stderr
    assert json.loads(out)["checkpoint"] == 30
    with sqlite3.connect(db) as conn:
        totals = [r[0] for r in conn.execute("SELECT total FROM counts ORDER BY stream")]
        leftovers = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE 'esctl_shadow_%'"
        ).fetchone()
        claims = conn.execute("SELECT count(*) FROM esctl_leases WHERE name LIKE 'rebuild:%'").fetchone()
    assert totals == [135, 145, 155] and leftovers == (0,) and claims == (0,)


ENDLESS_COUNT = "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c"


def test_query_stops_at_its_timeout_with_exit_124(bank) -> None:
    result = bank("query", "--timeout", "0.5", ENDLESS_COUNT)
    assert (result.exit_code, result.stdout) == (124, "")
    assert result.stderr == "esctl: error: query stopped after 0.5 s (--timeout; 0 for no limit)\n"
    negative = bank("query", "--timeout", "-1", "SELECT 1")
    assert (negative.exit_code, negative.stdout) == (2, "")
    assert "timeout must be 0 (no limit) or more seconds" in negative.stderr


def test_query_refuses_fts3_tokenizer_and_reads_table_valued_pragmas(bank) -> None:
    assert bank("project", "run", "balances").exit_code == 0
    refused = bank("query", "SELECT fts3_tokenizer('simple')")
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert refused.stderr == "esctl: error: query refused: fts3_tokenizer() is not allowed\n"
    columns = bank("query", "SELECT name FROM pragma_table_info('balances') ORDER BY cid")
    assert (columns.exit_code, columns.stderr) == (0, "")
    assert lines(columns.stdout) == [{"name": "account"}, {"name": "balance"}, {"name": "version"}]
    pages = bank("query", "SELECT count(*) > 0 AS some FROM dbstat WHERE name = 'balances'")
    assert (pages.exit_code, lines(pages.stdout), pages.stderr) == (0, [{"some": 1}], "")
    setting = bank("query", "PRAGMA journal_mode = DELETE")
    assert (setting.exit_code, setting.stdout) == (2, "")
    assert setting.stderr == "esctl: error: query is read-only: PRAGMA journal_mode = DELETE refused\n"


def test_query_of_bytes_that_are_not_utf8_exits_2(bank) -> None:
    # $'\xff' on the command line: Python hands the byte over as a lone surrogate.
    sql = bank("query", "SELECT '\udcff'")
    assert (sql.exit_code, sql.stdout) == (2, "")
    assert (
        sql.stderr
        == "esctl: error: argument \"SELECT '\\xff'\" is not valid UTF-8 (byte 0xff at character 9)\n"
    )
    param = bank("query", "SELECT :v", "--param", "v=\udcff")
    assert (param.exit_code, param.stdout) == (2, "")
    assert param.stderr == "esctl: error: argument 'v=\\xff' is not valid UTF-8 (byte 0xff at character 3)\n"


def test_ctrl_c_stops_a_query_inside_one_sqlite_step(bank, db, tmp_path) -> None:
    running = tmp_path / "running"  # created by the query's first progress check
    env = {**os.environ, "ESCTL_DB": str(db), "ESCTL_TEST_QUERY_RUNNING": str(running)}
    env.pop("ESCTL_READ_DB", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "esctl", "query", "--timeout", "0", ENDLESS_COUNT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        # The barrier: SQLite is running the statement (or the process died early).
        wait_until(lambda: running.exists() or proc.poll() is not None, "the query to start")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=HANG)
    finally:
        proc.kill()
    assert (proc.returncode, out, err) == (130, "", "esctl: interrupted\n")
