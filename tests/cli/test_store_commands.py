"""CLI tests for the store commands: init, append, import, read, export, streams, info,
copy (between backends: tests/cli/test_backends.py).

stdout and stderr are asserted separately: data on stdout, diagnostics on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from esctl.store.sqlite.schema import SCHEMA_VERSION
from tests.helpers import HANG, file_digest

ENVELOPE_KEYS = ["stream", "version", "position", "type", "data", "metadata", "id", "recorded_at"]
ID1 = "0190a2b4-0000-7000-8000-000000000001"


def ndjson(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def orders(cli):
    """A store with two orders and a user."""
    lines = [
        {"stream": "order-1", "type": "Created", "data": {"total": 10}},
        {"stream": "order-1", "type": "Paid", "data": {"amount": 10}},
        {"stream": "user-7", "type": "Registered", "data": {"name": "Ann"}},
        {"stream": "order-2", "type": "Created", "data": {"total": 5}},
    ]
    result = cli("import", "-", input="\n".join(json.dumps(line) for line in lines) + "\n")
    assert result.exit_code == 0, result.stderr
    return cli


# --- init -----------------------------------------------------------------------


def test_init_creates_the_store_once(cli, db):
    first = cli("init")
    assert first.exit_code == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc == {"path": str(db.resolve()), "schema_version": SCHEMA_VERSION, "created": True}
    again = cli("init")
    assert json.loads(again.stdout)["created"] is False
    assert again.stderr == ""


# --- append ---------------------------------------------------------------------


def test_append_prints_the_recorded_event(cli, db):
    result = cli("append", "order-1", "Created", '{"total": 10}')
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"esctl: created a new store at {db}\n"  # a mistyped --db shows at once
    again = cli("append", "order-1", "Shipped")
    assert again.exit_code == 0
    assert again.stderr == ""
    event = json.loads(result.stdout)
    assert list(event) == ENVELOPE_KEYS
    assert (event["stream"], event["version"], event["position"], event["type"]) == (
        "order-1",
        1,
        1,
        "Created",
    )
    assert event["data"] == {"total": 10}


def test_append_data_from_stdin_and_file(cli, tmp_path):
    (tmp_path / "d.json").write_text('{"from": "file"}')
    assert json.loads(cli("append", "s-1", "T", "-", input='{"from": "stdin"}').stdout)["data"] == {
        "from": "stdin"
    }
    assert json.loads(cli("append", "s-1", "T", f"@{tmp_path / 'd.json'}").stdout)["data"] == {"from": "file"}
    assert json.loads(cli("append", "s-1", "T").stdout)["data"] == {}


def test_append_metadata_correlation_and_causation(cli):
    result = cli(
        "append", "s-1", "T", "-m", '{"user": "ann"}', "--correlation-id", "c-9", "--causation-id", "x-1"
    )
    assert json.loads(result.stdout)["metadata"] == {
        "user": "ann",
        "correlation_id": "c-9",
        "causation_id": "x-1",
    }


def test_append_wrong_expected_version_exits_3_and_writes_nothing(cli, db):
    cli("append", "order-1", "Created")
    before = file_digest(db)
    result = cli("append", "order-1", "Created", "-e", "no-stream")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == (
        "esctl: error: wrong expected version for stream 'order-1': expected no-stream, actual 1\n"
    )
    assert file_digest(db) == before
    assert cli("append", "order-1", "Paid", "-e", "1").exit_code == 0
    assert cli("append", "order-1", "Paid", "-e", "1").exit_code == 3
    assert cli("append", "order-9", "Paid", "-e", "exists").exit_code == 3


def test_append_same_id_is_idempotent_and_different_content_conflicts(cli):
    first = cli("append", "s-1", "Paid", '{"a": 1}', "--id", ID1)
    again = cli("append", "s-1", "Paid", '{"a": 1}', "--id", ID1.upper(), "-e", "no-stream")
    assert again.exit_code == 0
    assert json.loads(again.stdout) == json.loads(first.stdout)
    assert again.stderr == f"esctl: event {ID1} is already stored: nothing written\n"
    clash = cli("append", "s-1", "Paid", '{"a": 2}', "--id", ID1)
    assert clash.exit_code == 3
    assert f"event id {ID1} is already used by 's-1' version 1" in clash.stderr
    # type-strict: true is not 1
    assert cli("append", "s-1", "Paid", '{"a": true}', "--id", ID1).exit_code == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["s-1", "T", "{not json"], "DATA: invalid JSON"),
        (["s-1", "T", "[1, 2]"], "DATA must be a JSON object, got [1,2]"),
        (["s-1", "T", "{}", "-m", '"text"'], '--metadata must be a JSON object, got "text"'),
        (["s-1", "T", "{}", "--id", "not-a-uuid"], '--id: "id" must be a UUID, got "not-a-uuid"'),
        (["bad stream", "T"], '"stream" must be 1-255 characters with no whitespace'),
        (["$system", "T"], "stream names starting with '$' are reserved"),
        (["s-1", "bad\ttype"], '"type" must be 1-255 characters'),
        (["s-1", "T", "{}", "-e", "seven"], "--expected-version: expected version must be any, no-stream"),
        (["s-1", "T", "{}", "-e", "-1"], "expected version must be any, no-stream, exists or an integer"),
        (["s-1", "T", "{}", "-e", "²"], "expected version must be any, no-stream, exists or an integer"),
        (["s-1", "T", "{}", "--id", ""], '"id" must be a UUID, got ""'),
        (
            ["s-1", "T", '{"n": 18446744073709551616}'],
            "cannot be stored as JSON: Integer exceeds 64-bit range",
        ),
        (["s\udcffx", "T"], "argument 's\\xffx' is not valid UTF-8"),
    ],
)
def test_append_bad_input_exits_2_and_writes_nothing(cli, db, args, message):
    cli("init")
    before = file_digest(db)
    result = cli("append", *args)
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert message in result.stderr
    assert result.stderr.startswith("esctl: error: ")
    assert "Traceback" not in result.stderr
    assert file_digest(db) == before


def test_append_over_16_mib_is_refused(cli, db, tmp_path):
    cli("init")
    before = file_digest(db)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"blob": "x" * (16 * 1024 * 1024)}))
    result = cli("append", "s-1", "T", f"@{big}")
    assert result.exit_code == 2
    assert "event is larger than 16 MiB" in result.stderr
    assert file_digest(db) == before


# --- import ---------------------------------------------------------------------


def test_import_prints_a_summary(cli):
    lines = [{"stream": f"s-{i % 3}", "type": "T", "data": {"i": i}} for i in range(7)]
    result = cli("import", input="".join(json.dumps(x) + "\n" for x in lines))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "imported": 7,
        "duplicates": 0,
        "streams": 3,
        "first_position": 1,
        "last_position": 7,
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"stream": "s-1", "type": "T", "data": [1]}', 'line 3: "data" must be a JSON object, got [1]'),
        ('{"stream": "s-1", "type": "T", "metadata": 5}', 'line 3: "metadata" must be a JSON object, got 5'),
        ('{"stream": "s-1", "type": "T"', "line 3: invalid JSON"),
        ('{"type": "T"}', 'line 3: "stream" is required'),
        ('{"stream": "s 1", "type": "T"}', 'line 3: "stream" must be 1-255 characters'),
        ('{"stream": "s-1", "type": "T", "id": 7}', 'line 3: "id" must be a UUID, got 7'),
        (
            '{"stream": "s-1", "type": "T", "version": "2"}',
            'line 3: "version" must be a positive integer, got "2"',
        ),
        (
            '{"stream": "s-1", "type": "T", "expected_version": 1.5}',
            'line 3: "expected_version": expected version',
        ),
        ('{"stream": "s-1", "type": "T", "colour": "red"}', "line 3: unknown field 'colour'"),
        (
            '{"stream": "s-1", "type": "T", "recorded_at": "yesterday"}',
            'line 3: "recorded_at" must be a UTC timestamp',
        ),
        ("[1, 2]", "line 3: expected a JSON object, got [1,2]"),
        ('{"stream": ["s-1"], "type": "T"}', 'line 3: "stream" must be 1-255 characters'),
        ('{"stream": "s-1", "type": "T", "position": "zz"}', 'line 3: "position" must be an integer'),
        ('{"stream": "s-1", "type": "T", "expected_version": "²"}', 'line 3: "expected_version": expected'),
        (
            '{"stream": "s-1", "type": "T", "recorded_at": "２０２０-01-01T00:00:00.000000Z"}',
            'line 3: "recorded_at"',
        ),
        (
            '{"stream": "s-1", "type": "T", "data": {"n": -9223372036854775809}}',
            "line 3: event data cannot be stored",
        ),
    ],
)
def test_import_bad_line_names_it_exits_2_and_leaves_the_store_as_it_was(orders, db, line, message):
    before = file_digest(db)
    good = '{"stream": "s-1", "type": "T"}'
    result = orders("import", input=f"{good}\n{good}\n{line}\n{good}\n")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr, result.stderr
    assert file_digest(db) == before


def test_import_conflict_exits_3_and_leaves_the_store_as_it_was(orders, db):
    before = file_digest(db)
    result = orders(
        "import", input='{"stream": "new-1", "type": "T"}\n{"stream": "order-1", "type": "T", "version": 7}\n'
    )
    assert result.exit_code == 3
    assert "line 2: wrong expected version for stream 'order-1': expected 6, actual 2" in result.stderr
    assert file_digest(db) == before


def test_import_of_a_missing_file_exits_2(cli, tmp_path):
    result = cli("import", str(tmp_path / "nope.ndjson"))
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


def test_a_long_import_in_one_transaction_says_other_writers_wait(cli, tmp_path, monkeypatch):
    from esctl.cli import store_commands

    events = "".join(json.dumps({"stream": f"s-{i}", "type": "T"}) + "\n" for i in range(5))
    path = tmp_path / "in.ndjson"
    path.write_text(events)
    monkeypatch.setattr(store_commands, "LONG_HOLD_BYTES", path.stat().st_size)
    monkeypatch.setattr(store_commands, "LONG_HOLD_EVENTS", 3)
    note = (
        "in one transaction: other writers wait until it commits; --batch-size N lets them in between batches"
    )

    from_file = cli("import", str(path))
    assert from_file.exit_code == 0
    assert f"esctl: importing {path} (0 MiB) {note}\n" in from_file.stderr
    assert json.loads(from_file.stdout)["imported"] == 5

    piped = cli("import", "-", input=events.replace("s-", "p-"))
    assert piped.exit_code == 0
    assert f"esctl: importing 3 events or more {note}\n" in piped.stderr

    for batched in (
        cli("import", str(path), "--batch-size", "2"),
        cli("import", "--batch-size", "2", input=events),
    ):
        assert batched.exit_code == 0
        assert "other writers wait" not in batched.stderr


def test_a_short_import_says_nothing_of_other_writers(cli, tmp_path):
    result = cli("import", "-", input=json.dumps({"stream": "s-1", "type": "T"}) + "\n")
    assert result.exit_code == 0
    assert "other writers" not in result.stderr


def test_import_batches_can_be_rerun_after_a_failure(cli, tmp_path):
    lines = [
        json.dumps({"stream": "s-1", "type": "T", "id": f"0190a2b4-0000-7000-8000-0000000000{i:02d}"})
        for i in range(10)
    ]
    broken = [*lines[:6], "{oops", *lines[6:]]
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(broken) + "\n")
    failed = cli("import", str(path), "--batch-size", "4")
    assert failed.exit_code == 2
    assert "line 7: invalid JSON" in failed.stderr
    assert (
        "the batches up to line 4 were committed (4 events imported, 0 duplicates skipped)" in failed.stderr
    )
    path.write_text("\n".join(lines) + "\n")
    rerun = cli("import", str(path), "--batch-size", "4")
    assert json.loads(rerun.stdout) == {
        "imported": 6,
        "duplicates": 4,
        "streams": 1,
        "first_position": 5,
        "last_position": 10,
    }


def test_export_into_import_reproduces_an_identical_export(orders, cli, tmp_path):
    cli(
        "append",
        "order-1",
        "Shipped",
        '{"price": 19.99, "big": 12345678901234567890, "u": "é\\u2028"}',
        "--correlation-id",
        "c-1",
    )
    exported = cli("export").stdout
    copy = tmp_path / "copy.db"
    result = cli("import", input=exported, db_path=copy)
    assert result.exit_code == 0, result.stderr
    assert cli("export", db_path=copy).stdout == exported
    # and importing the same export again is a no-op
    again = cli("import", input=exported, db_path=copy)
    assert json.loads(again.stdout)["duplicates"] == 5


# --- read -----------------------------------------------------------------------


def test_read_a_stream_as_ndjson_with_all_envelope_keys(orders):
    result = orders("read", "order-1")
    assert result.exit_code == 0
    events = ndjson(result.stdout)
    assert [list(e) for e in events] == [ENVELOPE_KEYS, ENVELOPE_KEYS]
    assert [(e["version"], e["type"]) for e in events] == [(1, "Created"), (2, "Paid")]


def test_read_options(orders):
    assert [e["version"] for e in ndjson(orders("read", "order-1", "--backwards").stdout)] == [2, 1]
    assert [e["version"] for e in ndjson(orders("read", "order-1", "--from-version", "2").stdout)] == [2]
    assert [e["version"] for e in ndjson(orders("read", "order-1", "--to-version", "1").stdout)] == [1]
    assert [e["position"] for e in ndjson(orders("read", "--all", "--limit", "2").stdout)] == [1, 2]
    assert [e["stream"] for e in ndjson(orders("read", "--all", "--category", "order").stdout)] == [
        "order-1",
        "order-1",
        "order-2",
    ]
    assert [
        e["type"] for e in ndjson(orders("read", "--all", "--type", "Paid", "--type", "Registered").stdout)
    ] == [
        "Paid",
        "Registered",
    ]
    assert [e["position"] for e in ndjson(orders("read", "--all", "--from-position", "3").stdout)] == [3, 4]


def test_read_json_output_is_one_array(orders):
    for args in (["-o", "json", "read", "order-2"], ["read", "order-2", "-o", "json"]):
        doc = json.loads(orders(*args).stdout)
        assert isinstance(doc, list) and [e["stream"] for e in doc] == ["order-2"]


def test_read_table_output_when_asked(orders):
    result = orders("read", "order-1", "-o", "table")
    assert result.exit_code == 0
    assert "Created" in result.stdout and "Paid" in result.stdout and "position" in result.stdout
    assert "\x1b[" not in result.stdout  # not a terminal: no colour


def test_read_missing_stream_exits_4(orders):
    result = orders("read", "order-9")
    assert (result.exit_code, result.stdout, result.stderr) == (
        4,
        "",
        "esctl: error: stream 'order-9' not found\n",
    )


def test_read_without_a_store_exits_4_and_creates_nothing(cli, db):
    result = cli("read", "--all")
    assert result.exit_code == 4
    assert result.stderr == f"esctl: error: no event store at {db}\n"
    assert not db.exists()


def test_read_needs_a_stream_or_all(orders):
    assert orders("read").exit_code == 2
    assert orders("read", "order-1", "--all").exit_code == 2
    assert "apply to --all" in orders("read", "order-1", "--category", "order").stderr


def test_not_an_esctl_store_exits_1_without_traceback(cli, db):
    db.write_text("hello")
    result = cli("read", "--all")
    assert result.exit_code == 1
    assert result.stderr == f"esctl: error: {db} is not an esctl event store (not a SQLite database)\n"
    assert db.read_text() == "hello"


# --- export, streams, info -------------------------------------------------------


def test_export_is_ndjson_even_when_a_table_is_asked_for(orders):
    result = orders("-o", "table", "export", "--category", "order", "--from-position", "2")
    assert [(e["stream"], e["position"]) for e in ndjson(result.stdout)] == [("order-1", 2), ("order-2", 4)]


def test_streams(orders):
    rows = ndjson(orders("streams").stdout)
    assert [(r["stream"], r["category"], r["version"], r["last_position"]) for r in rows] == [
        ("order-1", "order", 2, 2),
        ("order-2", "order", 1, 4),
        ("user-7", "user", 1, 3),
    ]
    assert set(rows[0]) == {
        "stream",
        "category",
        "version",
        "first_recorded_at",
        "last_recorded_at",
        "last_position",
    }
    assert [r["stream"] for r in ndjson(orders("streams", "--category", "user").stdout)] == ["user-7"]


def test_info_store_and_stream(orders, db):
    doc = json.loads(orders("info").stdout)
    assert (doc["events"], doc["streams"], doc["last_position"], doc["schema_version"]) == (
        4,
        3,
        4,
        SCHEMA_VERSION,
    )
    assert doc["categories"] == {"order": 3, "user": 1}
    assert doc["path"] == str(db.resolve()) and doc["file_size"] > 0
    one = json.loads(orders("info", "order-1").stdout)
    assert (one["version"], one["types"], one["last"]["type"]) == (2, {"Created": 1, "Paid": 1}, "Paid")
    assert orders("info", "order-9").exit_code == 4


def test_version_option(cli):
    from esctl import __version__

    result = cli("--version")
    assert (result.exit_code, result.stdout) == (0, f"esctl {__version__}\n")


# --- real processes: pipes, exit codes --------------------------------------------


def _esctl(*args: str) -> list[str]:
    return [sys.executable, "-m", "esctl", *args]


def test_closed_pipe_ends_quietly(tmp_path: Path):
    db = tmp_path / "e.db"
    # About 1 MB to read back, many times a pipe's buffer (64 KiB): `read` is still
    # writing when head exits, however the two are scheduled.
    lines = "".join(
        json.dumps({"stream": f"s-{i}", "type": "T", "data": {"pad": "x" * 200}}) + "\n" for i in range(3000)
    )
    subprocess.run(_esctl("--db", str(db), "import"), input=lines.encode(), check=True, capture_output=True)
    proc = subprocess.run(
        f"{' '.join(_esctl('--db', str(db), 'read', '--all'))} | head -1",
        shell=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(proc.stdout)["position"] == 1
    assert proc.stderr == ""


def test_python_dash_m_and_exit_codes_in_a_real_process(tmp_path: Path):
    db = str(tmp_path / "e.db")
    assert subprocess.run(_esctl("--db", db, "read", "x-1"), capture_output=True).returncode == 4
    subprocess.run(_esctl("--db", db, "append", "x-1", "T"), check=True, capture_output=True)
    proc = subprocess.run(_esctl("--db", db, "append", "x-1", "T", "-e", "0"), capture_output=True, text=True)
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert proc.stderr.startswith("esctl: error: wrong expected version")


def test_a_refused_write_to_a_missing_store_leaves_no_store_behind(cli, db):
    assert cli("append", "s-1", "T", "-e", "3").exit_code == 3
    assert not db.exists()
    assert cli("import", input="{oops\n").exit_code == 2
    assert not db.exists()
    assert cli("read", "s-1").stderr == f"esctl: error: no event store at {db}\n"


def test_init_reports_created_for_an_empty_file(cli, db):
    db.write_bytes(b"")
    assert json.loads(cli("init").stdout)["created"] is True
    assert json.loads(cli("init").stdout)["created"] is False


def test_a_byte_order_mark_is_ignored(cli, tmp_path):
    path = tmp_path / "bom.ndjson"
    path.write_bytes(b'\xef\xbb\xbf{"stream": "s-1", "type": "T"}\n')
    assert json.loads(cli("import", str(path)).stdout)["imported"] == 1
    (tmp_path / "d.json").write_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert json.loads(cli("append", "s-1", "T", f"@{tmp_path / 'd.json'}").stdout)["data"] == {"a": 1}


@pytest.mark.parametrize(
    "args",
    [
        ["read", ""],
        ["info", ""],
        ["read", "order-1", "--from-version", "99999999999999999999"],
        ["read", "--all", "--limit", "99999999999999999999"],
    ],
)
def test_out_of_range_or_empty_arguments_are_usage_errors(orders, args):
    result = orders(*args)
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_an_empty_db_path_is_a_usage_error(cli):
    from typer.testing import CliRunner

    from esctl.cli.app import app

    result = CliRunner().invoke(app, ["--db", "", "read", "--all"])
    assert result.exit_code == 2
    assert "must not be empty" in result.stderr


def test_closed_pipe_ends_quietly_for_tables_too(tmp_path: Path):
    db = tmp_path / "e.db"
    # A table of about 210 kB, over three times a pipe's buffer (64 KiB): the exit
    # status is 141 (closed pipe), not 0 (all written before head exited).
    lines = "".join(json.dumps({"stream": f"s-{i}", "type": "T"}) + "\n" for i in range(3000))
    subprocess.run(_esctl("--db", str(db), "import"), input=lines.encode(), check=True, capture_output=True)
    proc = subprocess.run(
        f"{' '.join(_esctl('--db', str(db), '-o', 'table', 'read', '--all'))} | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True,
        capture_output=True,
        text=True,
        executable="/bin/bash",
    )
    assert proc.stderr == ""
    assert proc.returncode == 141


@pytest.mark.slow
def test_import_on_a_terminal_shows_progress_and_a_panel(tmp_path: Path):
    import pexpect

    source = tmp_path / "in.ndjson"
    source.write_text(
        "".join(
            json.dumps({"stream": f"s-{i % 50}", "type": "T", "data": {"i": i}}) + "\n" for i in range(60000)
        )
    )
    child = pexpect.spawn(
        sys.executable,
        ["-m", "esctl", "--db", str(tmp_path / "e.db"), "import", str(source)],
        env={**os.environ, "COLUMNS": "100", "LINES": "30", "TERM": "xterm"},
        encoding="utf-8",
        timeout=HANG,
    )
    child.expect("importing")  # the progress bar, drawn on the terminal's stderr
    child.expect("60,000")  # then the summary panel, numbers with separators
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_json_output_of_an_empty_list_is_an_empty_array(orders):
    result = orders("-o", "json", "read", "--all", "--category", "nope")
    assert (result.exit_code, result.stdout) == (0, "[]\n")


# --- copy ------------------------------------------------------------------------


def test_copy_to_a_new_file_prints_what_it_did_and_exports_the_same(orders, db, tmp_path):
    from tests.helpers import exported

    target = tmp_path / "copy.db"
    result = orders("copy", str(db), str(target))
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {k: doc[k] for k in ("source", "destination", "copied", "already_there", "last_position")} == {
        "source": str(db),
        "destination": str(target),
        "copied": 4,
        "already_there": 0,
        "last_position": 4,
    }
    assert result.stderr == f"esctl: created a new store at {target}\n"
    assert exported(target) == exported(db)


def test_copy_from_a_missing_store_exits_4_and_creates_nothing(cli, tmp_path):
    result = cli("copy", str(tmp_path / "nope.db"), str(tmp_path / "copy.db"))
    assert result.exit_code == 4
    assert result.stdout == ""
    assert result.stderr == f"esctl: error: no event store at {tmp_path / 'nope.db'}\n"
    assert not (tmp_path / "copy.db").exists()


def test_copy_needs_a_source_and_a_destination(cli):
    result = cli("copy")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "esctl: error: missing argument SOURCE",
        "esctl: see 'esctl copy --help'",
    ]


def test_copy_refuses_a_log_that_shares_ids_but_not_events_and_a_store_onto_itself(orders, db, tmp_path):
    other = tmp_path / "other.db"
    first = orders("export").stdout.splitlines()[0]
    changed = first.replace('"total":10', '"total":11')  # the same id, stream and version
    assert orders("import", "-", input=changed + "\n", db_path=other).exit_code == 0
    refused = orders("copy", str(db), str(other))
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        f"esctl: error: {other} holds other events: its position 1 is order-1 v1, the source's is stored otherwise;"
    )
    itself = orders("copy", str(db), str(db))
    assert itself.exit_code == 1
    assert itself.stderr == f"esctl: error: {db} and {db} are the same store: nothing to copy\n"
