"""What a person sees: every main screen at 80 and 200 columns.

The commands run with `-o table` and $COLUMNS set (the width a terminal would give),
and the screens are checked for what matters on a projector: no line wider than the
terminal, every identifier whole (or its column named in a note on stderr), numbers
with separators. The `replay --step` screen is drawn on a fixed 80 x 24 and 200 x 50
console. ESCTL_SCREENS=PATH writes the 80-column screens to PATH as plain text."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from rich.cells import cell_len
from rich.console import Console

from esctl.aggregates import Replayer, aggregate_for
from esctl.cli import output, render
from esctl.events import NewEvent
from esctl.model import load_model
from esctl.store import EventStore

ROOT = Path(__file__).resolve().parents[2]
ORDERS = ROOT / "sample_streams" / "orders"
BANK = ROOT / "sample_streams" / "bank"
ORDERS_MODEL = ["--model", str(ORDERS / "model.py")]
BANK_MODEL = ["--model", str(BANK / "model.py")]
ESCTL = shutil.which("esctl", path=os.path.dirname(sys.executable))
WIDTHS = [80, 200]
NOTE = re.compile(r"^esctl: not shown at (\d+) columns: (.+) \(see them with -o json or a wider terminal\)$")


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample orders and bank, ids in metadata, names to sort, a long stream."""
    path = tmp_path_factory.mktemp("screens") / "events.db"
    with EventStore.open(path, create=True) as store:
        for sample in (ORDERS, BANK):
            with open(sample / "events.ndjson", "rb") as f:
                from esctl.ndjson import read_envelopes

                store.import_events(read_envelopes(f))
        meta = {"correlation_id": "req-42", "causation_id": "cmd-7", "user": "ada"}
        store.append("invoice-1", [NewEvent("invoice-1", "InvoiceIssued", {"amount": 1200}, meta)])
        for name in ("acct-10", "acct-2", "acct-1"):
            store.append(name, [NewEvent(name, "Opened", {})])
        big = [("", NewEvent("big-1", "Counted", {"n": n})) for n in range(1, 1235)]
        store.import_events(big)
    return path


@pytest.fixture
def screen(cli, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """screen(width, *args): the command's result at that width, as a table."""

    def run(width: int, *args: str, input: str | None = None):
        monkeypatch.setenv("COLUMNS", str(width))
        return cli(
            "--read-db", str(tmp_path / "read.db"), "-o", "table", *args, input=input, db_path=store_path
        )

    return run


def notes(result) -> dict[int, list[str]]:
    """The columns each drop note names, by the width it gives."""
    dropped: dict[int, list[str]] = {}
    for line in result.stderr.splitlines():
        if m := NOTE.match(line):
            dropped.setdefault(int(m[1]), []).extend(m[2].split(", "))
    return dropped


def whole(word: str, text: str) -> bool:
    """`word` appears in `text` as a whole token (not folded, not cut with …)."""
    return re.search(rf"(?<![\w.\-]){re.escape(word)}(?![\w\-…])", text) is not None


def check(result, width: int, *, columns=(), identifiers=()) -> list[str]:
    """The screen fits, its columns show or are named in a note, identifiers are
    whole; returns the dropped columns."""
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines, result.stderr
    too_wide = [line for line in lines if cell_len(line) > width]
    assert not too_wide, result.stdout
    assert "\x1b[" not in result.stdout
    dropped = notes(result).get(width, [])
    assert set(notes(result)) <= {width}
    header = next((line for line in lines if all(whole(c, line) or c in dropped for c in columns)), None)
    assert header is not None, (columns, dropped, result.stdout)
    for column in columns:
        assert whole(column, result.stdout) != (column in dropped), (column, dropped, result.stdout)
    for word in identifiers:
        assert whole(word, result.stdout), (word, result.stdout)
    return dropped


# --- tables -------------------------------------------------------------------------

EVENT_COLUMNS = ["position", "version", "type", "recorded_at", "correlation_id", "data", "metadata"]


@pytest.mark.parametrize("width", WIDTHS)
def test_read_one_stream_names_it_once_and_shows_its_ids(screen, width):
    result = screen(width, "read", "order-1")
    dropped = check(
        result, width, columns=EVENT_COLUMNS, identifiers=["OrderCreated", "OrderConfirmed", "OrderShipped"]
    )
    assert result.stdout.splitlines()[0] == "order-1"  # the title, not a column
    assert result.stdout.count("order-1") == 1
    assert "corr-1" in result.stdout  # correlation ids matter more than the timestamp
    if width == 80:
        assert "recorded_at" in dropped
    else:
        assert dropped == [] and whole("2026-01-05T09:00:00.000000Z", result.stdout)


@pytest.mark.parametrize("width", WIDTHS)
def test_read_shows_correlation_and_causation_ids(screen, width):
    result = screen(width, "read", "invoice-1")
    dropped = check(result, width, columns=[*EVENT_COLUMNS, "causation_id"], identifiers=["InvoiceIssued"])
    for column, value in (("correlation_id", "req-42"), ("causation_id", "cmd-7")):
        assert whole(value, result.stdout) == (column not in dropped)
    if width == 200:
        assert '{"user":"ada"}' in result.stdout  # the rest of the metadata


@pytest.mark.parametrize("width", WIDTHS)
def test_read_all(screen, width):
    result = screen(width, "read", "--all", "--limit", "40")
    streams = ["order-1", "order-2", "order-3", "account-ada", "account-bob", "account-cy"]
    dropped = check(result, width, columns=["stream", *EVENT_COLUMNS], identifiers=streams)
    assert "stream" not in dropped and "data" not in dropped


@pytest.mark.parametrize("width", WIDTHS)
def test_read_numbers_have_separators(screen, width):
    result = screen(width, "read", "big-1", "--from-version", "1230")
    check(result, width, columns=["version", "type"], identifiers=["1,230", "1,234"])


@pytest.mark.parametrize("width", WIDTHS)
def test_streams_sorted_naturally_with_the_valid_columns_or_a_note(screen, width):
    result = screen(width, "streams")
    columns = ["stream", "category", "version", "first_recorded_at", "last_recorded_at", "last_position"]
    dropped = check(result, width, columns=columns, identifiers=["acct-1", "acct-2", "acct-10", "1,234"])
    out = result.stdout
    assert out.index("acct-1 ") < out.index("acct-2 ") < out.index("acct-10 ")
    assert (dropped != []) == (width == 80)
    limited = screen(width, "streams", "--limit", "2")
    assert [line.split()[0] for line in limited.stdout.splitlines()[3:]] == ["account-ada", "account-bob"]


def test_piped_streams_are_in_the_same_natural_order(cli, store_path):
    piped = cli("streams", "--category", "acct", db_path=store_path)
    assert [json.loads(line)["stream"] for line in piped.stdout.splitlines()] == [
        "acct-1",
        "acct-2",
        "acct-10",
    ]
    limited = cli("streams", "--category", "acct", "--limit", "2", db_path=store_path)
    assert [json.loads(line)["stream"] for line in limited.stdout.splitlines()] == ["acct-1", "acct-2"]


@pytest.mark.parametrize("width", WIDTHS)
def test_versions_wrap_the_changed_paths_between_paths(screen, width):
    result = screen(width, *ORDERS_MODEL, "versions", "order-1")
    paths = ["status", "customer_id", "lines.0", "lines.1", "total", "tracking_number"]
    check(result, width, columns=["version", "position", "type", "recorded_at", "changed"], identifiers=paths)


@pytest.mark.parametrize("width", WIDTHS)
def test_diff(screen, width):
    result = screen(width, *ORDERS_MODEL, "diff", "order-1", "0", "3")
    paths = ["status", "customer_id", "lines.0", "lines.1", "total", "tracking_number"]
    check(result, width, columns=["path", "old", "new"], identifiers=paths)
    assert '"shipped"' in result.stdout


@pytest.mark.parametrize("width", WIDTHS)
def test_replay_steps(screen, width):
    result = screen(width, *ORDERS_MODEL, "replay", "order-1", "--steps")
    check(result, width, columns=["path", "new"], identifiers=["OrderConfirmed", "tracking_number", "v2"])


@pytest.mark.parametrize("width", WIDTHS)
def test_snapshot_list_keeps_valid(screen, width, tmp_path):
    assert screen(width, *ORDERS_MODEL, "snapshot", "order-2").exit_code == 0
    result = screen(width, *ORDERS_MODEL, "snapshot", "order-2", "--list")
    columns = ["version", "aggregate", "fingerprint", "bytes", "created_at", "valid"]
    dropped = check(result, width, columns=columns, identifiers=["yes"])
    assert "valid" not in dropped
    assert re.search(r"\d+ B\b", result.stdout)


@pytest.mark.parametrize("width", WIDTHS)
def test_query_right_aligns_numbers_and_keeps_names_whole(screen, width):
    assert screen(width, *BANK_MODEL, "project", "run", "balances").exit_code == 0
    sql = "SELECT account, balance * 1000 AS balance_in_cents, version FROM balances ORDER BY account"
    result = screen(width, *BANK_MODEL, "query", sql)
    check(
        result,
        width,
        columns=["account", "balance_in_cents", "version"],
        identifiers=["ada", "bob", "55,000"],
    )
    rows = [line for line in result.stdout.splitlines() if line.strip().startswith(("ada", "bob", "cy"))]
    ends = {re.match(r"\s+\S+\s+[\d,]+", line).end() for line in rows}
    assert len(rows) == 3 and len(ends) == 1  # right-aligned: the amounts end in one column


# --- projections --------------------------------------------------------------------

STATUS = ["name", "status", "checkpoint", "lag"]


@pytest.mark.parametrize("width", WIDTHS)
def test_project_list(screen, width):
    result = screen(width, *BANK_MODEL, "project", "list")
    check(result, width, columns=STATUS, identifiers=["balances", "behind"])
    assert result.stdout.splitlines()[0] == "projections · head 1,256"  # one head for all: in the title


@pytest.mark.parametrize("width", WIDTHS)
def test_project_run_and_rebuild_report_the_same_fields_the_same_way(
    screen, cli, store_path, tmp_path, width
):
    run = screen(width, *BANK_MODEL, "project", "run", "balances")
    rebuilt = screen(width, *BANK_MODEL, "project", "rebuild", "balances")
    columns = [*STATUS, "applied", "seconds", "events_per_second"]
    for result in (run, rebuilt):
        check(result, width, columns=columns, identifiers=["balances", "live"])
    assert run.stdout.splitlines()[1] == rebuilt.stdout.splitlines()[1]  # one header
    piped_run = cli(
        "--read-db", str(tmp_path / "read.db"), *BANK_MODEL, "project", "run", "balances", db_path=store_path
    )
    piped_rebuild = cli(
        "--read-db",
        str(tmp_path / "read.db"),
        *BANK_MODEL,
        "project",
        "rebuild",
        "balances",
        db_path=store_path,
    )
    assert set(json.loads(piped_run.stdout)) == set(json.loads(piped_rebuild.stdout))


@pytest.mark.parametrize("width", WIDTHS)
def test_verify_with_differences(screen, tmp_path, width):
    assert screen(width, *BANK_MODEL, "project", "run", "balances").exit_code == 0
    with sqlite3.connect(tmp_path / "read.db") as conn:
        conn.execute("UPDATE balances SET balance = balance + 1 WHERE account = 'bob'")
        conn.execute("DELETE FROM balances WHERE account = 'cy'")
    result = screen(width, *BANK_MODEL, "project", "verify", "balances")
    assert result.exit_code == 5
    result.exit_code = 0  # the screen is checked like the others
    check(
        result,
        width,
        columns=["table", "diff", "key", "live", "rebuilt"],
        identifiers=["account=bob", "account=cy"],
    )
    assert "different" in result.stdout and "missing" in result.stdout


# --- documents ----------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_info_has_human_sizes_and_separators(screen, width):
    result = screen(width, "info")
    check(result, width, identifiers=["OrderCreated", "Counted", "big", "1,234"])
    assert re.search(r"file_size\s+\d[\d.]* KiB", result.stdout)


@pytest.mark.parametrize("width", WIDTHS)
def test_info_stream_is_compact_and_the_json_keeps_every_key(screen, cli, store_path, width):
    result = screen(width, "info", "order-1")
    check(result, width, identifiers=["OrderCreated", "OrderShipped", "v1", "v3"])
    assert len(result.stdout.splitlines()) <= 12
    piped = json.loads(cli("info", "order-1", db_path=store_path).stdout)
    assert set(piped["first"]) == {
        "stream",
        "version",
        "position",
        "type",
        "data",
        "metadata",
        "id",
        "recorded_at",
    }


@pytest.mark.parametrize("width", WIDTHS)
def test_replay_state_panel(screen, width):
    result = screen(width, *ORDERS_MODEL, "replay", "order-1")
    check(result, width, identifiers=["customer_id", "tracking_number", '"T-1"'])
    assert "order-1 · version 3 · position 3" in result.stdout


@pytest.mark.parametrize("width", WIDTHS)
def test_init_append_import_panels(screen, cli, tmp_path, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    fresh = tmp_path / "fresh.db"
    init = cli("-o", "table", "init", db_path=fresh)
    check(init, width, identifiers=["created", "yes"])
    again = cli("-o", "table", "init", db_path=fresh)
    assert re.search(r"created\s+no\b", again.stdout) and "False" not in again.stdout
    appended = cli(
        "-o",
        "table",
        "append",
        "order-9",
        "OrderCreated",
        '{"total": "9.99"}',
        "--correlation-id",
        "r-1",
        db_path=fresh,
    )
    check(appended, width, identifiers=["order-9", "OrderCreated", "correlation_id", "r-1"])
    imported = cli("-o", "table", "import", str(ORDERS / "events.ndjson"), db_path=tmp_path / "other.db")
    check(imported, width, identifiers=["imported", "last_position"])
    assert re.search(r"first_position\s+1\b", imported.stdout)


def test_a_column_too_wide_for_the_terminal_is_named_never_cut(screen):
    result = screen(60, "read", "invoice-1")
    dropped = check(result, 60, columns=[*EVENT_COLUMNS, "causation_id"], identifiers=["InvoiceIssued"])
    assert {"recorded_at", "causation_id"} <= set(dropped)
    assert result.stderr.count("not shown") == 1  # one note, not one per chunk


# --- replay --step ------------------------------------------------------------------


def _step_screens(store_path: Path, stream: str, model: str | None, width: int, height: int) -> list[str]:
    with EventStore.open(store_path) as store:
        module = load_model(model) if model else None
        replayer = Replayer(store, aggregate_for(module, stream))
        target = store.stream_version(stream)
        steps = list(replayer.steps(stream, target))
        screens = []
        for index in range(target + 1):
            buffer = io.StringIO()
            con = Console(file=buffer, width=width, height=height, force_terminal=False)
            step = steps[index - 1] if index else None
            state = step.state if step else replayer.initial_plain()
            render.step_screen(stream, replayer.name, index, target, step, state, con)
            screens.append(buffer.getvalue())
    return screens


@pytest.fixture(scope="module")
def long_state(store_path: Path) -> str:
    """A stream whose state is longer than a screen, changed near its end."""
    with EventStore.open(store_path) as store:
        store.append("wide-1", [NewEvent("wide-1", "Created", {f"key_{i}": i for i in range(60)})])
        data = {"key_50": "fifty", "key_51": None, "nested": {"deep": {"a": [1, 2, 3]}}}
        meta = {"correlation_id": "req-9", "user": "ada"}
        store.append("wide-1", [NewEvent("wide-1", "Changed", data, meta)])
    return "wide-1"


@pytest.mark.parametrize(("width", "height"), [(80, 24), (200, 50)])
@pytest.mark.parametrize("stream", ["order-1", "wide-1"])
def test_the_step_screen_fits_and_marks_what_changed(store_path, long_state, stream, width, height):
    model = str(ORDERS / "model.py") if stream == "order-1" else None
    for index, text in enumerate(_step_screens(store_path, stream, model, width, height)):
        lines = text.splitlines()
        assert len(lines) < height, text  # the last line stays free: nothing scrolls
        assert all(cell_len(line) <= width for line in lines), text
        assert f"step {index}/" in lines[0]
        if index:
            assert "id " in lines[2]  # the event's metadata
    final = _step_screens(store_path, stream, model, width, height)[-1]
    if stream == "order-1":
        assert re.search(r'(^|│ )~\s+"tracking_number": "T-1"', final, re.M), final
        assert "correlation_id corr-1" in final
    else:
        assert re.search(r'(^|│ )~\s+"key_50": "fifty"', final, re.M), final
        assert re.search(r'(^|│ )\+\s+"nested":', final, re.M), final  # both changes in view
        assert "correlation_id req-9" in final
        if height == 24:
            assert re.search(r"… \d+ lines above", final)


def test_the_step_screen_in_colour_highlights_changed_keys(store_path):
    buffer = io.StringIO()
    con = Console(file=buffer, width=80, height=24, force_terminal=True, color_system="standard")
    with EventStore.open(store_path) as store:
        replayer = Replayer(store, aggregate_for(load_model(str(ORDERS / "model.py")), "order-1"))
        step = list(replayer.steps("order-1", 2))[-1]
        render.step_screen("order-1", replayer.name, 2, 3, step, step.state, con)
    assert '\x1b[1;33m"status"' in buffer.getvalue()  # the changed key in the change colour


# --- the pager ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"ESCTL_PAGER": "most", "PAGER": "more"}, "most"),
        ({"ESCTL_PAGER": "", "PAGER": "more"}, None),
        ({"ESCTL_PAGER": "cat"}, None),
        ({"PAGER": "more -s"}, "more -s"),
        ({"PAGER": " "}, None),
    ],
)
def test_the_pager_is_found_the_way_git_finds_it(environ, expected):
    assert output.pager_command(environ) == expected


def test_without_a_setting_the_pager_is_less_if_installed(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/less" if name == "less" else None)
    assert output.pager_command({}) == "less -FRX"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert output.pager_command({}) is None


def _spawn(store_path: Path, args: list[str], pager: str) -> tuple[int, str]:
    env = {**os.environ, "ESCTL_DB": str(store_path), "ESCTL_PAGER": pager, "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(ESCTL, args, env=env, dimensions=(24, 80), encoding="utf-8", timeout=30)
    text = child.read()
    child.close()
    return child.exitstatus, text


needs_esctl = pytest.mark.skipif(ESCTL is None, reason="the esctl script is not installed beside this Python")


@needs_esctl
def test_a_listing_on_a_terminal_goes_through_the_pager_in_colour(store_path, tmp_path):
    paged = tmp_path / "paged.txt"
    status, _ = _spawn(store_path, ["read", "order-1"], f"tee {paged}")
    assert status == 0
    text = paged.read_text()
    assert "OrderShipped" in text and "\x1b[" in text  # colours kept for less -R
    assert "esctl: not shown at 80 columns" in text  # the note, in order, in the pager


@needs_esctl
def test_a_pager_quit_early_ends_the_listing_quietly(store_path):
    status, text = _spawn(store_path, ["read", "--all"], "head -n 3")  # ~2,000 rows: more than a pipe holds
    assert status == 0, text
    assert "Error" not in text and "Broken" not in text and "Traceback" not in text
    assert len(text.splitlines()) <= 4


@needs_esctl
def test_no_pager_and_documents_are_not_paged(store_path, tmp_path):
    paged = tmp_path / "paged.txt"
    status, text = _spawn(store_path, ["--no-pager", "read", "order-1"], f"tee {paged}")
    assert status == 0 and "OrderShipped" in text and not paged.exists()
    status, text = _spawn(store_path, ["info", "order-1"], f"tee {paged}")
    assert status == 0 and "OrderShipped" in text and not paged.exists()


def test_a_piped_listing_is_never_paged(store_path, tmp_path):
    paged = tmp_path / "paged.txt"
    env = {**os.environ, "ESCTL_DB": str(store_path), "ESCTL_PAGER": f"tee {paged}"}
    proc = subprocess.run(
        [sys.executable, "-m", "esctl", "-o", "table", "read", "order-1"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "OrderShipped" in proc.stdout
    assert not paged.exists()


@needs_esctl
def test_a_missing_pager_is_reported_and_the_listing_shown(store_path):
    status, text = _spawn(store_path, ["read", "order-1"], "no-such-pager-here")
    assert status == 0
    assert "pager 'no-such-pager-here' not found" in text and "OrderShipped" in text


# --- the screens for people to read ---------------------------------------------------

SCREENS = [
    ("read one stream", ["read", "order-1"]),
    ("read, with causation and correlation ids", ["read", "invoice-1"]),
    ("read --all", ["read", "--all", "--limit", "12"]),
    ("streams", ["streams"]),
    ("info", ["info"]),
    ("info STREAM", ["info", "order-1"]),
    ("versions", [*ORDERS_MODEL, "versions", "order-1"]),
    ("diff", [*ORDERS_MODEL, "diff", "order-1", "0", "3"]),
    ("replay", [*ORDERS_MODEL, "replay", "order-1"]),
    ("replay --steps", [*ORDERS_MODEL, "replay", "order-1", "--steps"]),
    ("snapshot --list", [*ORDERS_MODEL, "snapshot", "order-1", "--list"]),
    ("project list", [*BANK_MODEL, "project", "list"]),
    ("project run", [*BANK_MODEL, "project", "run", "balances"]),
    ("project rebuild", [*BANK_MODEL, "project", "rebuild", "balances"]),
    ("query", ["query", "SELECT account, balance, version FROM balances ORDER BY account"]),
]


def test_every_main_screen_fits_80_columns(screen, cli, store_path, long_state, tmp_path, monkeypatch):
    """Every screen a newcomer meets, drawn at 80 columns; ESCTL_SCREENS=PATH also
    writes them to PATH for people to read."""
    out: list[str] = []
    drawn: list[str] = []

    def show(name: str, args: list[str], result, code: int = 0) -> None:
        assert result.exit_code == code, (name, result.stderr)
        drawn.extend(result.stdout.splitlines())
        shown = " ".join(shlex.quote(a) for a in args)
        out.append(f"=== {name}\n$ esctl {shown}\n")
        out.extend(f"[stderr] {line}\n" for line in result.stderr.splitlines())
        out.append(result.stdout + "\n")

    assert screen(80, *ORDERS_MODEL, "snapshot", "order-1").exit_code == 0
    for name, args in SCREENS:
        show(name, args, screen(80, *args))
    with sqlite3.connect(tmp_path / "read.db") as conn:
        conn.execute("UPDATE balances SET balance = balance + 1 WHERE account = 'bob'")
        conn.execute("DELETE FROM balances WHERE account = 'cy'")
    show(
        "project verify, with differences",
        [*BANK_MODEL, "project", "verify", "balances"],
        screen(80, *BANK_MODEL, "project", "verify", "balances"),
        code=5,
    )
    monkeypatch.setenv("COLUMNS", "80")
    fresh = tmp_path / "fresh.db"
    show("init", ["init"], cli("-o", "table", "init", db_path=fresh))
    args = [
        "append",
        "order-9",
        "OrderCreated",
        '{"customer_id": "c-9", "total": "9.99"}',
        "--correlation-id",
        "req-9",
    ]
    show("append", args, cli("-o", "table", *args, db_path=fresh))
    args = ["import", "sample_streams/orders/events.ndjson"]
    show(
        "import", args, cli("-o", "table", "import", str(ORDERS / "events.ndjson"), db_path=tmp_path / "o.db")
    )
    for stream, model in (("order-1", str(ORDERS / "model.py")), ("wide-1", None)):
        for index, text in enumerate(_step_screens(store_path, stream, model, 80, 24)):
            if stream == "wide-1" and index == 0:
                continue
            out.append(f"=== replay {stream} --step, step {index} (80 x 24)\n{text}\n")
            drawn.extend(text.splitlines())
    assert len(drawn) > 200  # every screen drew something
    assert [line for line in drawn if cell_len(line) > 80] == []
    if os.environ.get("ESCTL_SCREENS"):
        Path(os.environ["ESCTL_SCREENS"]).write_text("".join(out))


@pytest.mark.parametrize("width", WIDTHS)
def test_consumer_screens(screen, width):
    """consume's lines, consumers, dlq list and dlq show, and contracts."""
    group = f"screens-{width}"
    failing = 'test "$ESCTL_TYPE" != OrderShipped'
    consumed = screen(
        width,
        "consume",
        group,
        "--all",
        "--type",
        "OrderShipped",
        "--type",
        "OrderCreated",
        "--exec",
        failing,
        "--once",
        "--retries",
        "1",
        "--backoff",
        "0",
    )
    check(consumed, width, identifiers=["order-1", "OrderShipped"])
    assert "parked" in consumed.stdout and "failed" in consumed.stdout
    check(
        screen(width, "consumers"),
        width,
        columns=["name", "status", "checkpoint", "lag", "parked"],
        identifiers=[group],
    )
    listed = screen(width, "dlq", "list", group)
    check(listed, width, columns=["consumer", "position", "state"], identifiers=[group])
    position = next(word for word in listed.stdout.split() if word.isdigit())
    shown = screen(width, "dlq", "show", group, position)
    check(shown, width, identifiers=["OrderShipped"])
    assert "history:" in shown.stdout and "parked" in shown.stdout
    check(
        screen(width, *ORDERS_MODEL, "contracts"),
        width,
        columns=["name", "version", "domain_type"],
        identifiers=["orders.shipped"],
    )
