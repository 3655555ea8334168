"""Every failure in one voice: one `esctl: error: ...` line on stderr (at most one
hint or note after it), nothing on stdout, the documented exit code, and a store
left exactly as it was when a write fails.

Environment failures are produced for real where a test can (SQLite's
max_page_count for a full disk, a corrupted page, a row written around esctl, a
read-only bind mount in a private mount namespace); a read-only location is also
simulated in-process, since tests run as root, for whom file modes stop nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import esctl.model
from esctl.store.sqlite import schema
from tests.helpers import file_digest

ROOT = Path(__file__).resolve().parents[2]
ORDERS = ROOT / "sample_streams" / "orders" / "events.ndjson"
BANK = ROOT / "sample_streams" / "bank"


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def orders(cli):
    result = cli("import", str(ORDERS))
    assert result.exit_code == 0, result.stderr
    return cli


@pytest.fixture(autouse=True)
def fresh_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(esctl.model, "_loaded", {})


# --- 1. usage errors: one line, one hint, exit 2 --------------------------------------


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (
            ["-o", "yaml", "read", "--all"],
            "--output: 'yaml' is not one of 'auto', 'table', 'json', 'ndjson'",
            "esctl",
        ),
        (
            ["read", "--all", "-o", "yaml"],
            "--output: 'yaml' is not one of 'auto', 'table', 'json', 'ndjson'",
            "esctl read",
        ),
        (["read", "--all", "--limit", "-1"], "--limit: -1 is not in the range x>=0", "esctl read"),
        (["read", "--all", "--limit", "x"], "--limit: 'x' is not a valid int range", "esctl read"),
        (["read", "--limit"], "option '--limit' requires an argument", "esctl read"),
        (["read", "--bogus"], "no such option --bogus", "esctl read"),
        (["read", "--lmit", "3"], "no such option --lmit (did you mean --limit?)", "esctl read"),
        (["read", "a", "b"], "got unexpected extra argument(s) (b)", "esctl read"),
        (["append"], "missing argument STREAM", "esctl append"),
        (["append", "s-1"], "missing argument TYPE", "esctl append"),
        (
            ["frobnicate"],
            "no such command 'frobnicate' (commands: init, append, import, read, export, streams,"
            " info, copy, migrate, replay, diff, versions, exec, snapshot, upcast, query, follow, consume,"
            " consumers, contracts, help, project, dlq)",
            "esctl",
        ),
        (
            ["project", "frobnicate"],
            "no such command 'frobnicate' (commands: list, run, rebuild, verify, reset)",
            "esctl project",
        ),
        (["project", "run", "--bogus"], "no such option --bogus", "esctl project run"),
        (["project", "run", "--follow=3"], "option '--follow' does not take a value", "esctl project run"),
        (["--db", "", "read", "--all"], "--db: must not be empty", "esctl"),
    ],
)
def test_usage_errors_are_one_line_and_a_hint(orders, db, args, error, hint):
    before = file_digest(db)
    result = orders(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"esctl: error: {error}\nesctl: see '{hint} --help'\n"
    assert file_digest(db) == before


def test_help_and_no_args_help_still_work(cli):
    helped = cli("read", "--help")
    assert helped.exit_code == 0
    assert "Read a stream's events, or every event with --all." in helped.stdout
    assert helped.stderr == ""
    for args in ([], ["project"]):
        from typer.testing import CliRunner

        from esctl.cli.app import app

        bare = CliRunner().invoke(app, args)
        assert bare.exit_code == 2  # as Click has it: usage shown, nothing done
        assert "Usage: esctl" in bare.output and "Commands" in bare.output
        assert "esctl: error" not in bare.output


def test_usage_errors_on_a_terminal_are_the_same_line_not_a_box(tmp_path):
    import pexpect

    child = pexpect.spawn(
        sys.executable,
        ["-m", "esctl", "--db", str(tmp_path / "e.db"), "read", "--all", "--limit", "-1"],
        env={**os.environ, "COLUMNS": "100", "LINES": "30", "TERM": "xterm", "NO_COLOR": "1"},
        encoding="utf-8",
        timeout=30,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert child.before.replace("\r\n", "\n") == (
        "esctl: error: --limit: -1 is not in the range x>=0\nesctl: see 'esctl read --help'\n"
    )


def test_usage_errors_in_a_real_process_and_a_pipe(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "esctl", "--db", str(tmp_path / "e.db"), "project", "frobnicate"],
        capture_output=True,
        text=True,
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.splitlines() == [
        "esctl: error: no such command 'frobnicate' (commands: list, run, rebuild, verify, reset)",
        "esctl: see 'esctl project --help'",
    ]


# --- 2. environment failures: their own message, not "unexpected" ---------------------


def _full_disk(monkeypatch: pytest.MonkeyPatch, spare_pages: int = 0) -> None:
    """Every store opened from now on may grow by `spare_pages` pages only: SQLite
    then fails a write with SQLITE_FULL, as on a full disk."""
    real = schema.connect

    def connect(path, *, create):
        connected = real(path, create=create)
        pages = connected.conn.execute("PRAGMA page_count").fetchone()[0]
        connected.conn.execute(f"PRAGMA max_page_count = {pages + spare_pages}")
        return connected

    monkeypatch.setattr(schema, "connect", connect)


def test_disk_full_on_append_is_explained_and_writes_nothing(orders, db, monkeypatch):
    before = file_digest(db)
    _full_disk(monkeypatch)
    result = orders("append", "order-1", "Noted", json.dumps({"pad": "x" * 50_000}))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"esctl: error: disk full: cannot write {db}; the transaction was rolled back\n"
    assert file_digest(db) == before


def test_disk_full_on_import_is_explained_and_writes_nothing(orders, db, monkeypatch, tmp_path):
    source = tmp_path / "in.ndjson"
    source.write_text("".join(json.dumps({"stream": f"s-{i}", "type": "T"}) + "\n" for i in range(5000)))
    before = file_digest(db)
    _full_disk(monkeypatch, spare_pages=2)
    result = orders("import", str(source))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"esctl: error: disk full: cannot write {db}; the transaction was rolled back\n"
    assert file_digest(db) == before


def test_disk_full_in_a_batch_rolls_it_back_and_says_which_batches_were_committed(
    cli, db, monkeypatch, tmp_path
):
    cli("init")
    source = tmp_path / "in.ndjson"
    source.write_text(
        "".join(
            json.dumps({"stream": f"s-{i % 7}", "type": "T", "data": {"i": i}}) + "\n" for i in range(3000)
        )
    )
    _full_disk(monkeypatch, spare_pages=12)
    result = cli("import", str(source), "--batch-size", "100")
    assert (result.exit_code, result.stdout) == (1, "")
    error, note = result.stderr.splitlines()
    assert error == f"esctl: error: disk full: cannot write {db}; the transaction was rolled back"
    monkeypatch.undo()
    committed = lines(cli("read", "--all").stdout)
    assert committed and len(committed) % 100 == 0  # whole batches only
    n = len(committed)
    assert note.startswith(
        f"esctl: the batches up to line {n} were committed ({n} events imported, 0 duplicates skipped);"
        " the failing batch was rolled back."
    )
    assert [e["data"]["i"] for e in committed] == list(range(n))


def _damage_a_page(db: Path) -> None:
    """Overwrite one page in the middle of the events table with garbage."""
    conn = sqlite3.connect(db)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(db, "r+b") as f:
        f.seek(size * (pages // 2))
        f.write(b"\xde\xad" * (size // 2))


def test_a_damaged_page_is_reported_as_damage(cli, db, tmp_path):
    source = tmp_path / "in.ndjson"
    source.write_text(
        "".join(
            json.dumps({"stream": f"s-{i % 30}", "type": "T", "data": {"pad": "x" * 300}}) + "\n"
            for i in range(3000)
        )
    )
    assert cli("import", str(source)).exit_code == 0
    _damage_a_page(db)
    for args in (["read", "--all"], ["export"]):  # (info reads counters, not the events)
        result = cli(*args)
        assert result.exit_code == 1, args
        assert result.stderr == (
            f"esctl: error: {db} is damaged (database disk image is malformed): restore it from a backup\n"
        ), args


def _insert_around_esctl(db: Path, data: str, metadata: str = "{}") -> None:
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO events (stream, version, position, type, data, metadata, id, recorded_at)"
        " VALUES ('order-1', (SELECT max(version) + 1 FROM events WHERE stream = 'order-1'),"
        " (SELECT max(position) + 1 FROM events), 'Noted', ?, ?,"
        " '0190a2b4-0000-7000-8000-00000000ffff', '2026-01-01T00:00:00.000000Z')",
        (data, metadata),
    )
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["read", "order-1"], "event 8 (order-1 v4)"),
        (["read", "--all"], "event 8 (order-1 v4)"),
        (["export"], "event 8 (order-1 v4)"),
        (["info", "order-1"], "event 8 (order-1 v4)"),
        (["versions", "order-1"], "event 8 (order-1 v4)"),
        (["replay", "order-1"], "order-1 v4"),  # the default fold, not a model's fault
    ],
)
def test_a_stored_row_that_is_not_json_is_reported_as_damage(orders, db, args, where):
    _insert_around_esctl(db, "not json")
    result = orders(*args)
    assert result.exit_code == 1
    # NDJSON streams: the events before the damaged one were printed already.
    assert all(doc.get("version", 0) < 4 for doc in lines(result.stdout))
    assert (
        result.stderr
        == f'esctl: error: the store is damaged: {where} has data that is not JSON: "not json"\n'
    )


def test_stored_metadata_that_is_not_json_is_named(orders, db):
    _insert_around_esctl(db, "{}", "{oops")
    result = orders("read", "order-1")
    assert result.exit_code == 1
    assert result.stderr == (
        'esctl: error: the store is damaged: event 8 (order-1 v4) has metadata that is not JSON: "{oops"\n'
    )


@pytest.mark.parametrize(
    "args",
    [
        ["read", "--all", "--category", "ord\udcffer"],
        ["streams", "--category", "\udcff"],
        ["export", "--category", "\udcff"],
        ["replay", "order-\udcff"],
        ["append", "order-1", "T", "--correlation-id", "\udcff"],
        ["query", "select '\udcff'"],
    ],
)
def test_bytes_that_are_not_utf8_on_the_command_line_are_refused(orders, db, args):
    before = file_digest(db)
    result = orders(*args)
    assert (result.exit_code, result.stdout) == (2, "")
    bad = next(a for a in args if "\udcff" in a)
    shown = repr(os.fsencode(bad))[1:]
    at = bad.index("\udcff") + 1
    assert (
        result.stderr == f"esctl: error: argument {shown} is not valid UTF-8 (byte 0xff at character {at})\n"
    )
    assert file_digest(db) == before


def test_a_db_path_from_the_environment_that_is_not_utf8_is_refused(cli, monkeypatch):
    from typer.testing import CliRunner

    from esctl.cli.app import app

    monkeypatch.setenv("ESCTL_DB", "e\udcff.db")
    result = CliRunner().invoke(app, ["read", "--all"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert (
        result.stderr
        == "esctl: error: ESCTL_DB ('e\\xff.db') is not valid UTF-8 (byte 0xff at character 2)\n"
    )


def test_a_bug_is_unexpected_and_says_how_to_see_the_traceback(orders, monkeypatch):
    from esctl.store import EventStore

    def broken(self, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(EventStore, "streams", broken)
    result = orders("streams")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "esctl: error: unexpected ValueError: boom (a bug in esctl; ESCTL_DEBUG=1 shows the traceback)\n"
    )
    monkeypatch.setenv("ESCTL_DEBUG", "1")
    debugged = orders("streams")
    assert isinstance(debugged.exception, ValueError)  # raised: Python prints the traceback


def test_an_sqlite_error_that_is_not_the_environment_is_a_bug(orders, monkeypatch):
    from esctl.store import EventStore

    def broken(self, **kwargs):
        return self.conn.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr(EventStore, "streams", broken)
    result = orders("streams")
    assert result.exit_code == 1
    assert result.stderr.startswith("esctl: error: unexpected OperationalError: no such table: no_such_table")


def test_a_full_output_device_is_explained(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    db = tmp_path / "e.db"
    subprocess.run(
        [sys.executable, "-m", "esctl", "--db", str(db), "import", str(ORDERS)],
        check=True,
        capture_output=True,
    )
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "esctl", "--db", str(db), "read", "--all"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert proc.returncode == 1
    assert proc.stderr == "esctl: error: cannot write the output: No space left on device\n"


# --- 3. missing directories, read-only locations ---------------------------------------


def test_a_missing_directory_says_so(cli, tmp_path):
    nowhere = tmp_path / "nope" / "events.db"
    for args in (["init"], ["append", "s-1", "T"], ["import"]):
        result = cli(*args, db_path=nowhere, input="")
        assert (result.exit_code, result.stdout) == (1, ""), args
        assert result.stderr == f"esctl: error: directory {nowhere.parent} does not exist\n", args
    read = cli("read", "--all", db_path=nowhere)
    assert read.exit_code == 4
    assert (
        read.stderr
        == f"esctl: error: no event store at {nowhere} (directory {nowhere.parent} does not exist)\n"
    )
    assert not nowhere.parent.exists()


def test_a_file_where_the_directory_should_be_says_so(cli, tmp_path):
    (tmp_path / "file").write_text("")
    result = cli("init", db_path=tmp_path / "file" / "events.db")
    assert result.exit_code == 1
    assert result.stderr == f"esctl: error: directory {tmp_path / 'file'} is not a directory\n"


@pytest.fixture
def read_only_media(orders, db, monkeypatch):
    """The store as on read-only media, in-process (tests run as root, whom file
    modes do not stop): the file system says so (statvfs, access) and SQLite cannot
    map a -shm (a directory stands where it would go), so it can only read."""
    assert orders("info").exit_code == 0  # closed: no -wal, no -shm left
    assert not Path(f"{db}-shm").exists() and not Path(f"{db}-wal").exists()
    Path(f"{db}-shm").mkdir()
    real_statvfs = os.statvfs

    class ReadOnly:
        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        @property
        def f_flag(self):
            return self.real.f_flag | os.ST_RDONLY

    def statvfs(path):
        result = real_statvfs(path)
        return ReadOnly(result) if str(path).startswith(str(db.parent)) else result

    real_access = os.access

    def access(path, mode, **kwargs):
        if mode & os.W_OK and str(path).startswith(str(db.parent)):
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "statvfs", statvfs)
    monkeypatch.setattr(os, "access", access)
    yield orders
    os.rmdir(f"{db}-shm")


READ_ONLY_NOTE = "esctl: {db} is read-only (read-only file system): it was read, nothing can be written\n"


@pytest.mark.parametrize(
    "args",
    [
        ["read", "order-1"],
        ["read", "--all"],
        ["export"],
        ["info"],
        ["streams"],
        ["replay", "order-1"],
        ["--model", str(BANK / "model.py"), "project", "list"],
    ],
)
def test_a_store_on_read_only_media_can_be_read_with_a_note(read_only_media, db, args):
    before = file_digest(db)
    result = read_only_media(*args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout
    assert result.stderr.endswith(READ_ONLY_NOTE.format(db=db))
    assert file_digest(db) == before


@pytest.mark.parametrize(
    "args",
    [
        ["append", "order-1", "Noted"],
        ["import"],
        ["--model", str(BANK / "model.py"), "project", "run", "--all"],
    ],
)
def test_writing_to_a_store_on_read_only_media_is_one_clear_line(read_only_media, db, args):
    before = file_digest(db)
    result = read_only_media(*args, input='{"stream": "s-1", "type": "T"}\n')
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"esctl: error: read-only file system: cannot write {db}\n"
    assert file_digest(db) == before


def _can_mount_read_only() -> bool:
    if not shutil.which("unshare") or not shutil.which("mount"):
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount --bind / /mnt 2>/dev/null && mount -o remount,bind,ro /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


_RUN_ALL = """
import json, subprocess, sys
results = []
for args in json.loads(sys.argv[1]):
    p = subprocess.run([sys.executable, "-m", "esctl", *args], capture_output=True, text=True)
    results.append([p.returncode, p.stdout, p.stderr])
print(json.dumps(results))
"""


def _on_a_read_only_mount(target: Path, commands: list[list[str]]) -> list[list]:
    """Run esctl commands with `target` bind-mounted read-only over itself, in a
    private mount namespace; [returncode, stdout, stderr] for each."""
    script = f'mount --bind {target} {target} && mount -o remount,bind,ro {target} && exec "$@"'
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", sys.executable, "-c", _RUN_ALL, json.dumps(commands)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


needs_mount = pytest.mark.skipif(
    not _can_mount_read_only(), reason="needs unshare -m and mount (a private mount namespace)"
)


@pytest.mark.slow
@needs_mount
@pytest.mark.parametrize("what", ["directory", "file"])
def test_a_store_on_a_real_read_only_mount(tmp_path, what):
    """A read-only bind mount in a private mount namespace: the directory (SQLite
    cannot create its -wal and -shm), or the file alone (it can, beside it)."""
    store = tmp_path / "store"
    store.mkdir()
    db = store / "events.db"
    subprocess.run(
        [sys.executable, "-m", "esctl", "--db", str(db), "import", str(ORDERS)],
        check=True,
        capture_output=True,
    )
    before = file_digest(db)
    target = store if what == "directory" else db
    commands = [
        ["--db", str(db), "read", "order-1"],
        ["--db", str(db), "info"],
        ["--db", str(db), "export"],
        ["--db", str(db), "append", "order-1", "Noted"],
    ]
    (read, read_out, read_err), (info, _, _), (export, export_out, _), (append, append_out, append_err) = (
        _on_a_read_only_mount(target, commands)
    )
    note = f"esctl: {db} is read-only (read-only file system): it was read, nothing can be written\n"
    assert (read, read_err) == (0, note)
    assert [e["version"] for e in lines(read_out)] == [1, 2, 3]
    assert (info, export) == (0, 0)
    assert len(lines(export_out)) == 7
    assert (append, append_out) == (1, "")
    assert append_err == f"esctl: error: read-only file system: cannot write {db}\n"
    assert file_digest(db) == before
    if what == "directory":
        assert sorted(os.listdir(store)) == ["events.db"]  # nothing was created beside it


@pytest.mark.slow
@needs_mount
def test_a_read_only_copy_with_changes_in_its_wal_is_refused_not_read_stale(tmp_path):
    """Copied while a writer had it open: committed events only in the -wal, no -shm.
    immutable=1 would ignore the -wal and show the store without them."""
    db = tmp_path / "events.db"
    subprocess.run(
        [sys.executable, "-m", "esctl", "--db", str(db), "import", str(ORDERS)],
        check=True,
        capture_output=True,
    )
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("INSERT INTO esctl_meta VALUES ('k', 'v')")  # committed, in the -wal only
    copy = tmp_path / "copy"
    copy.mkdir()
    for suffix in ("", "-wal"):
        shutil.copy(f"{db}{suffix}", copy / f"events.db{suffix}")
    writer.close()
    copied = copy / "events.db"
    ((code, out, err),) = _on_a_read_only_mount(copy, [["--db", str(copied), "read", "order-1"]])
    assert (code, out) == (1, "")
    assert err == (
        f"esctl: error: read-only file system: cannot read {copied}: its -wal file holds changes that"
        " SQLite can only apply where it may write (copy the store with its -wal and -shm to a writable"
        " place)\n"
    )


# --- 5. exit codes: input files, models that exit, Ctrl-C ------------------------------


def test_an_input_file_that_cannot_be_read_is_invalid_input(cli, db, tmp_path):
    missing = tmp_path / "missing.ndjson"
    imported = cli("import", str(missing))
    assert (imported.exit_code, imported.stdout) == (2, "")
    assert imported.stderr == f"esctl: error: cannot read {missing}: No such file or directory\n"
    appended = cli("append", "s-1", "T", f"@{tmp_path / 'missing.json'}")
    assert (appended.exit_code, appended.stdout) == (2, "")
    assert (
        appended.stderr
        == f"esctl: error: DATA: cannot read {tmp_path / 'missing.json'}: No such file or directory\n"
    )
    meta = cli("append", "s-1", "T", "-m", f"@{tmp_path}")
    assert meta.exit_code == 2
    assert meta.stderr == f"esctl: error: --metadata: cannot read {tmp_path}: Is a directory\n"
    assert not db.exists()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import sys\nX = 1\nsys.exit(9)\n", "line 3: SystemExit(9) while loading: a model must not exit"),
        ("raise SystemExit\n", "line 1: SystemExit(None) while loading: a model must not exit"),
        ("class Stop(BaseException):\n    pass\n\nraise Stop('no')\n", "line 4: Stop: no"),
    ],
)
def test_a_model_that_exits_while_loading_is_a_model_error(orders, tmp_path, source, message):
    model = tmp_path / f"exiting_{abs(hash(source))}.py"
    model.write_text(source)
    result = orders("--model", str(model), "replay", "order-1")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"esctl: error: model {model}: {model}, {message}\n"


def test_ctrl_c_while_loading_a_model_exits_130(orders, tmp_path):
    model = tmp_path / "interrupted.py"
    model.write_text("raise KeyboardInterrupt\n")
    result = orders("--model", str(model), "replay", "order-1")
    assert (result.exit_code, result.stdout, result.stderr) == (130, "", "esctl: interrupted\n")


def test_ctrl_c_in_a_projection_handler_exits_130_and_rolls_the_batch_back(cli, db, tmp_path):
    model = tmp_path / "interrupting.py"
    model.write_text(
        textwrap.dedent(
            """
            from esctl.projections import Projection, Table

            seen = Projection("seen", Table("seen", {"stream": str, "n": int}, pk="stream"))

            @seen.on("T")
            def t(event, db):
                if event.data.get("stop"):
                    raise KeyboardInterrupt  # as if Ctrl-C arrived here
                db["seen"].upsert({"stream": event.stream, "n": event.version})
            """
        )
    )
    for data in ("{}", "{}", '{"stop": true}'):
        assert cli("append", "s-1", "T", data).exit_code == 0
    result = cli("--model", str(model), "project", "run", "seen")
    assert (result.exit_code, result.stdout, result.stderr) == (130, "", "esctl: interrupted\n")
    # The batch (all three events) was rolled back with its checkpoint.
    (status,) = lines(cli("--model", str(model), "project", "list").stdout)
    assert (status["checkpoint"], status["status"]) == (0, "behind")
    assert lines(cli("query", "SELECT count(*) AS n FROM seen").stdout) == [{"n": 0}]


def test_ctrl_c_during_a_batch_import_says_which_batches_were_committed(cli, db, monkeypatch, tmp_path):
    from esctl.store.sqlite import writer

    source = tmp_path / "in.ndjson"
    source.write_text("".join(json.dumps({"stream": "s-1", "type": "T"}) + "\n" for i in range(10)))
    real = writer.Writer.write
    calls = []

    def write(self, events):
        calls.append(len(events))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, events)

    monkeypatch.setattr(writer.Writer, "write", write)
    result = cli("import", str(source), "--batch-size", "4")
    assert (result.exit_code, result.stdout) == (130, "")
    interrupted, note = result.stderr.splitlines()
    assert interrupted == "esctl: interrupted"
    assert note.startswith("esctl: the batches up to line 8 were committed (8 events imported, 0 duplicates")
    monkeypatch.undo()
    assert len(lines(cli("read", "s-1").stdout)) == 8


def _has_open(pid: int, suffix: str) -> bool:
    """Whether process `pid` has a file ending in `suffix` open (Linux /proc)."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd).endswith(suffix):
                return True
        except OSError:  # closed meanwhile
            continue
    return False


@pytest.mark.slow
def test_ctrl_c_while_waiting_for_the_write_lock_exits_130_at_once(db, cli):
    """SQLite waits for a lock inside one C call (up to 60 s): esctl waits in short
    steps, so that Python sees the SIGINT between them."""
    assert cli("init").exit_code == 0
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    proc = subprocess.Popen(
        [sys.executable, "-m", "esctl", "--db", str(db), "append", "s-1", "T"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The barrier: it has opened the store (its -wal is open), so it is at the lock.
        while proc.poll() is None and not _has_open(proc.pid, "events.db-wal"):
            pass
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)  # far less than the 60 s busy timeout
    finally:
        proc.kill()
        holder.execute("ROLLBACK")
        holder.close()
    assert (proc.returncode, out, err) == (130, "", "esctl: interrupted\n")
    assert lines(cli("read", "--all").stdout) == []


# --- 6. two different correlation or causation ids ------------------------------------


@pytest.mark.parametrize(
    ("option", "key"), [("--correlation-id", "correlation_id"), ("--causation-id", "causation_id")]
)
def test_append_refuses_two_different_ids_and_accepts_the_same_twice(cli, db, option, key):
    assert cli("init").exit_code == 0
    before = file_digest(db)
    both = cli("append", "s-1", "T", option, "c1", "-m", json.dumps({key: "c2"}))
    assert (both.exit_code, both.stdout) == (2, "")
    what = key.replace("_", " ")
    assert both.stderr == f"esctl: error: two {what}s: 'c1', and 'c2' in metadata {key}\n"
    assert file_digest(db) == before
    same = cli("append", "s-1", "T", option, "c1", "-m", json.dumps({key: "c1", "x": 1}))
    assert same.exit_code == 0, same.stderr
    assert json.loads(same.stdout)["metadata"] == {key: "c1", "x": 1}
