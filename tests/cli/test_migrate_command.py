"""esctl migrate, and every other command on a store made by an earlier release."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esctl.store.sqlite.schema import SCHEMA_VERSION
from tests.helpers import FIXTURES, exported, file_digest


def outdated_note(path: Path) -> str:
    return (
        f"esctl: {path} has schema 1, from an earlier esctl:"
        " 'esctl migrate' upgrades it; writes are refused until then\n"
    )


def test_reads_of_a_schema_1_store_work_and_say_how_to_upgrade(cli, old):
    result = cli("export", db_path=old)
    assert (result.exit_code, result.stdout) == (0, (FIXTURES / "schema1.ndjson").read_text())
    assert result.stderr == outdated_note(old)
    info = cli("info", db_path=old)
    assert json.loads(info.stdout)["schema_version"] == 1
    assert info.stderr == outdated_note(old)


@pytest.mark.parametrize(
    "args",
    [
        ["append", "order-1", "OrderNoteAdded", '{"text": "x"}'],
        ["import", "-"],
    ],
)
def test_writes_to_a_schema_1_store_are_refused_naming_migrate(cli, old, args):
    before = file_digest(old)
    result = cli(*args, db_path=old, input='{"stream": "x-1", "type": "T"}\n')
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"esctl: error: {old} has schema 1, from an earlier esctl:"
        " run 'esctl migrate' to upgrade it (reading works meanwhile)\n"
    )
    assert file_digest(old) == before


def test_migrate_upgrades_with_a_backup_then_writes_work(cli, old):
    result = cli("migrate", db_path=old)
    assert (result.exit_code, result.stderr) == (0, "")
    doc = json.loads(result.stdout)
    assert {k: doc[k] for k in ("from_schema", "to_schema", "backup", "events", "streams")} == {
        "from_schema": 1,
        "to_schema": SCHEMA_VERSION,
        "backup": f"{old}.schema1.bak",
        "events": 21,
        "streams": 9,
    }
    assert [step["version"] for step in doc["steps"]] == [2]
    assert cli("export", db_path=Path(doc["backup"])).stdout == (FIXTURES / "schema1.ndjson").read_text()
    appended = cli("append", "order-1", "OrderNoteAdded", '{"text": "x"}', db_path=old)
    assert (appended.exit_code, appended.stderr) == (0, "")
    again = cli("migrate", db_path=old)
    assert (again.exit_code, again.stderr) == (0, "")
    assert (json.loads(again.stdout)["steps"], json.loads(again.stdout)["backup"]) == ([], None)


def test_migrate_no_backup(cli, old):
    result = cli("migrate", "--no-backup", db_path=old)
    assert (result.exit_code, json.loads(result.stdout)["backup"]) == (0, None)
    assert not Path(f"{old}.schema1.bak").exists()


def test_migrate_never_overwrites_another_file_and_changes_nothing(cli, old):
    taken = Path(f"{old}.schema1.bak")
    taken.write_text("notes")
    before = file_digest(old)
    result = cli("migrate", db_path=old)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"esctl: error: {taken} exists already: move it away, or give another backup path\n"
    )
    assert file_digest(old) == before and taken.read_text() == "notes"


def test_migrate_on_a_table_says_what_it_did(cli, old, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("migrate", "-o", "table", db_path=old)
    assert result.exit_code == 0
    assert "upgraded to schema 2" in result.stdout
    assert "a streams table, event counters" in result.stdout
    # Paths are never cut: a line holding one may be as long as the path needs.
    assert all(len(line) <= 80 for line in result.stdout.splitlines() if str(old.parent) not in line)


def test_migrate_a_missing_store_is_not_found(cli, tmp_path):
    result = cli("migrate", db_path=tmp_path / "none.db")
    assert (result.exit_code, result.stdout) == (4, "")
    assert result.stderr.startswith("esctl: error: no event store at")


def test_ctrl_c_during_migrate_exits_130_and_leaves_schema_1(old, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from esctl.store import EventStore
    from esctl.store.sqlite import migrations
    from tests.helpers import HANG

    fifo = tmp_path / "barrier"
    os.mkfifo(fifo)
    child = subprocess.Popen(
        [sys.executable, "-m", "esctl", "--db", str(old), "migrate", "--no-backup"],
        env=dict(os.environ, **{migrations.BARRIER_ENV: str(fifo)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        with open(fifo) as barrier:  # every step has run; the commit has not
            assert barrier.readline() == f"{SCHEMA_VERSION}\n"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=HANG)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert (child.returncode, out, err.count(b"\n") <= 1) == (130, b"", True)
    with EventStore.open(old) as store:
        assert store.schema_version == 1
    assert exported(old) == (FIXTURES / "schema1.ndjson").read_bytes()
