"""The aggregate commands through the CLI: stdout, stderr and exit codes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from .conftest import COUNTER_MODEL, ORDERS_EVENTS, ORDERS_MODEL

MODEL = ["--model", str(ORDERS_MODEL)]


def lines(text: str) -> list[dict]:
    return [orjson.loads(line) for line in text.splitlines()]


def count_events(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


# --- replay --------------------------------------------------------------------------------


def test_replay_order_1_with_the_model_and_with_the_default_fold(cli, orders_db):
    result = cli(*MODEL, "replay", "order-1")
    assert result.exit_code == 0, result.stderr
    doc = orjson.loads(result.stdout)
    assert list(doc) == ["stream", "version", "position", "state"]
    assert (doc["stream"], doc["version"], doc["position"]) == ("order-1", 3, 3)
    assert '"total":79.97' in result.stdout
    assert doc["state"]["status"] == "shipped"
    assert result.stderr == ""

    plain = cli("replay", "order-1")
    assert plain.exit_code == 0
    assert orjson.loads(plain.stdout)["state"] == {
        "customer_id": "c-1",
        "lines": [
            {"product_id": "p-1", "quantity": 2, "price": "29.99"},
            {"product_id": "p-2", "quantity": 1, "price": "19.99"},
        ],
        "tracking_number": "T-1",
    }


@pytest.mark.parametrize(
    ("options", "version", "status"),
    [
        (["--to-version", "1"], 1, "created"),
        (["--to-version", "2"], 2, "confirmed"),
        (["--as-of", "2026-01-05T12:00:00Z"], 2, "confirmed"),
        (["--as-of", "2026-01-05T09:00:00.000000Z"], 1, "created"),
        (["--as-of", "2026-01-05T10:30:00+01:00"], 1, "created"),
        (["--as-of", "2030-01-01"], 3, "shipped"),
        (["--until-type", "OrderShipped"], 2, "confirmed"),
        (["--until-type", "OrderCancelled"], 3, "shipped"),
        (["--to-version", "3", "--until-type", "OrderConfirmed"], 1, "created"),
    ],
)
def test_time_travel(cli, orders_db, options, version, status):
    result = cli(*MODEL, "replay", "order-1", *options)
    assert result.exit_code == 0, result.stderr
    doc = orjson.loads(result.stdout)
    assert (doc["version"], doc["state"]["status"]) == (version, status)


def test_time_travel_to_before_the_first_event_gives_the_initial_state(cli, orders_db):
    result = cli(*MODEL, "replay", "order-1", "--as-of", "2020-01-01T00:00:00Z")
    assert result.exit_code == 0
    doc = orjson.loads(result.stdout)
    assert (doc["version"], doc["position"], doc["state"]["status"]) == (0, None, None)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["replay", "order-1", "--to-version", "4"],
            4,
            "stream 'order-1' has no version 4 (its version is 3)",
        ),
        (["replay", "order-99"], 4, "stream 'order-99' not found"),
        (["replay", "order-1", "--as-of", "yesterday"], 2, "not an ISO 8601 timestamp: 'yesterday'"),
        (["replay", "order-1", "--steps", "--step"], 2, "give --steps or --step, not both"),
        (["replay", "order-1", "--step"], 2, "--step needs a terminal; use --steps for a listing"),
        (["diff", "order-1", "0", "9"], 4, "stream 'order-1' has no version 9"),
        (["versions", "order-99"], 4, "stream 'order-99' not found"),
    ],
)
def test_replay_errors(cli, orders_db, args, code, message):
    result = cli(*MODEL, *args)
    assert result.exit_code == code
    assert result.stdout == ""
    assert message in result.stderr


def test_replay_on_a_missing_store_exits_4(cli, db):
    result = cli("replay", "order-1")
    assert result.exit_code == 4
    assert result.stderr == f"esctl: error: no event store at {db}\n"


def test_unknown_event_types_are_skipped_with_a_note_or_refused_with_strict(cli, orders_db):
    result = cli(*MODEL, "replay", "order-2")
    assert result.exit_code == 0
    assert orjson.loads(result.stdout)["state"]["status"] == "confirmed"
    assert result.stderr == (
        "esctl: order-2: skipped 1 OrderNoteAdded event (first at v2): Order has no handler for it;"
        " --strict refuses\n"
    )
    strict = cli(*MODEL, "replay", "order-2", "--strict")
    assert strict.exit_code == 2
    assert strict.stdout == ""
    assert strict.stderr == (
        "esctl: error: Order has no handler for event type 'OrderNoteAdded' (stream 'order-2', version 2)\n"
    )


def test_replay_steps_prints_each_event_with_its_changes(cli, orders_db):
    result = cli(*MODEL, "replay", "order-1", "--steps")
    assert result.exit_code == 0
    steps = lines(result.stdout)
    assert [list(s) for s in steps] == [["version", "position", "type", "changes", "state"]] * 3
    assert [s["type"] for s in steps] == ["OrderCreated", "OrderConfirmed", "OrderShipped"]
    assert steps[1]["changes"] == [
        {"path": "status", "pointer": "/status", "op": "change", "old": "created", "new": "confirmed"}
    ]
    assert steps[2]["state"]["tracking_number"] == "T-1"
    limited = cli(*MODEL, "replay", "order-1", "--steps", "--to-version", "1")
    assert [s["version"] for s in lines(limited.stdout)] == [1]


def test_replay_as_a_table(cli, orders_db):
    result = cli(*MODEL, "replay", "order-1", "-o", "table")
    assert result.exit_code == 0
    assert "order-1 · version 3 · position 3" in result.stdout
    assert '"total": 79.97' in result.stdout
    steps = cli(*MODEL, "replay", "order-1", "--steps", "-o", "table")
    assert "v2 OrderConfirmed" in steps.stdout
    assert "status" in steps.stdout


def test_a_model_that_does_not_import_is_reported_with_file_and_line(cli, orders_db, write_model):
    path = write_model("x = 1\nraise RuntimeError('boom')\n", "broken")
    result = cli("--model", str(path), "replay", "order-1")
    assert result.exit_code == 2
    assert f"{path}, line 2: RuntimeError: boom" in result.stderr


def test_a_model_without_an_aggregate_for_the_category_uses_the_default_fold(cli, orders_db, write_model):
    path = write_model(COUNTER_MODEL, "counter_only")
    result = cli("--model", str(path), "replay", "order-1")
    assert result.exit_code == 0
    assert "status" not in orjson.loads(result.stdout)["state"]
    assert result.stderr == "esctl: no aggregate for category 'order' in the model: using the default fold\n"


# --- diff and versions ------------------------------------------------------------------------


def test_diff_between_versions(cli, orders_db):
    result = cli(*MODEL, "diff", "order-1", "1", "3")
    assert result.exit_code == 0
    assert orjson.loads(result.stdout) == {
        "stream": "order-1",
        "from": 1,
        "to": 3,
        "changes": [
            {"path": "status", "pointer": "/status", "op": "change", "old": "created", "new": "shipped"},
            {
                "path": "tracking_number",
                "pointer": "/tracking_number",
                "op": "change",
                "old": None,
                "new": "T-1",
            },
        ],
    }
    backwards = orjson.loads(cli(*MODEL, "diff", "order-1", "3", "1").stdout)
    assert backwards["changes"][0] == {
        "path": "status",
        "pointer": "/status",
        "op": "change",
        "old": "shipped",
        "new": "created",
    }
    table = cli(*MODEL, "diff", "order-1", "0", "1", "-o", "table")
    assert "lines.0" in table.stdout
    assert "79.97" in table.stdout


def test_diff_with_the_default_fold_reports_adds_and_removes(cli, db):
    cli("append", "thing-1", "A", '{"a": 1, "b": {"c": 2}}')
    cli("append", "thing-1", "B", '{"a": null, "b": {"d": 3}}')
    result = cli("diff", "thing-1", "1", "2")
    assert orjson.loads(result.stdout)["changes"] == [
        {"path": "a", "pointer": "/a", "op": "remove", "old": 1},
        {"path": "b.d", "pointer": "/b/d", "op": "add", "new": 3},
    ]


def test_versions_lists_the_paths_each_event_changed(cli, orders_db):
    result = cli(*MODEL, "versions", "order-1")
    assert result.exit_code == 0
    rows = lines(result.stdout)
    assert rows[0] == {
        "version": 1,
        "position": 1,
        "type": "OrderCreated",
        "recorded_at": "2026-01-05T09:00:00.000000Z",
        "changed": ["status", "customer_id", "lines.0", "lines.1", "total"],
    }
    assert [r["changed"] for r in rows[1:]] == [["status"], ["status", "tracking_number"]]
    table = cli(*MODEL, "versions", "order-1", "-o", "table")
    assert "OrderConfirmed" in table.stdout


# --- exec ---------------------------------------------------------------------------------------

CREATE = (
    '{"customer_id": "c-1", "lines": [{"product_id": "p-1", "quantity": 2, "price": "29.99"},'
    ' {"product_id": "p-2", "quantity": 1, "price": "19.99"}]}'
)


def test_exec_appends_the_decided_events_with_correlation_and_causation(cli, db):
    result = cli(
        *MODEL, "exec", "order-5", "create", CREATE, "--correlation-id", "corr-5", "--command-id", "cmd-5"
    )
    assert result.exit_code == 0, result.stderr
    [event] = lines(result.stdout)
    assert (event["stream"], event["version"], event["type"]) == ("order-5", 1, "OrderCreated")
    assert event["metadata"] == {
        "correlation_id": "corr-5",
        "causation_id": "cmd-5",
        "command": "create",
        "schema": 2,
    }
    again = lines(cli(*MODEL, "exec", "order-5", "confirm").stdout)[0]
    assert again["metadata"]["correlation_id"] not in ("corr-5", "")
    assert again["metadata"]["causation_id"] != again["metadata"]["correlation_id"]


def test_exec_rejections_exit_6_and_write_nothing(cli, db):
    assert cli(*MODEL, "exec", "order-5", "create", CREATE).exit_code == 0
    before = count_events(db)
    ship = cli(*MODEL, "exec", "order-5", "ship", '{"tracking_number": "T-1"}')
    assert ship.exit_code == 6
    assert ship.stdout == ""
    assert ship.stderr == "esctl: error: ship rejected: can only ship confirmed orders (status: created)\n"
    create = cli(*MODEL, "exec", "order-5", "create", CREATE)
    assert create.exit_code == 6
    assert "the order already exists (status: created)" in create.stderr
    assert count_events(db) == before


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["exec", "order-5", "cancel"], 2, "Order has no command 'cancel' (commands: confirm, create, ship)"),
        (["exec", "order-5", "create", "{not json"], 2, "ARGS_JSON: invalid JSON"),
        (["exec", "order-5", "create", "[1]"], 2, "ARGS_JSON must be a JSON object"),
        (["exec", "cart-1", "create", "{}"], 2, "the model has no aggregate for category 'cart'"),
    ],
)
def test_exec_usage_errors(cli, db, args, code, message):
    result = cli(*MODEL, *args)
    assert result.exit_code == code
    assert message in result.stderr


def test_exec_needs_a_model(cli, db):
    result = cli("exec", "order-5", "confirm")
    assert result.exit_code == 2
    assert "no model" in result.stderr


RACING_MODEL = """
    import os
    from esctl import EventStore, NewEvent
    from esctl.aggregates import Aggregate, command, evolve

    calls = {"n": 0}


    class Counter(Aggregate):
        category = "counter"
        initial = dict

        @evolve("Added")
        def added(state, data):
            return {"count": state.get("count", 0) + 1}

        @command("add")
        def add(state, args):
            # Another writer appends between this command's load and its append.
            calls["n"] += 1
            if calls["n"] <= int(os.environ["RACE_TIMES"]):
                with EventStore.open(os.environ["ESCTL_DB"]) as other:
                    other.append("counter-1", [NewEvent("counter-1", "Added", {"by": "racer"})])
            return [("Added", {"by": "exec"})]
"""


def test_exec_retries_after_a_racing_writer(cli, db, write_model, monkeypatch):
    path = write_model(RACING_MODEL, "racing_ok")
    monkeypatch.setenv("ESCTL_DB", str(db))
    monkeypatch.setenv("RACE_TIMES", "2")
    cli("init")
    result = cli("--model", str(path), "exec", "counter-1", "add")
    assert result.exit_code == 0, result.stderr
    assert [e["version"] for e in lines(result.stdout)] == [3]
    assert result.stderr.count("reloading and retrying") == 2
    assert "wrong expected version for stream 'counter-1': expected no-stream, actual 1" in result.stderr


def test_exec_gives_up_with_exit_3_after_its_retries(cli, db, write_model, monkeypatch):
    path = write_model(RACING_MODEL, "racing_lose")
    monkeypatch.setenv("ESCTL_DB", str(db))
    monkeypatch.setenv("RACE_TIMES", "99")
    cli("init")
    result = cli("--model", str(path), "exec", "counter-1", "add", "--retries", "2")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "add on 'counter-1' conflicted with other writers 3 times (retries: 2)" in result.stderr
    assert count_events(db) == 3  # the racer's three events, none of exec's


# --- snapshots ------------------------------------------------------------------------------------

COUNTER_V1 = """
    from esctl.aggregates import Aggregate, evolve


    class Counter(Aggregate):
        category = "counter"
        initial = dict

        @evolve("Added")
        def added(state, data):
            return {"total": state.get("total", 0) + data["n"]}
"""
COUNTER_V2 = COUNTER_V1.replace('+ data["n"]', '+ 10 * data["n"]')


def test_snapshots_are_used_listed_and_ignored_after_a_code_change(cli, db, write_model):
    for n in (1, 2, 3):
        cli("append", "counter-1", "Added", f'{{"n": {n}}}')
    v1 = write_model(COUNTER_V1, "counter_model")
    written = cli("--model", str(v1), "snapshot", "counter-1", "--to-version", "2")
    assert written.exit_code == 0, written.stderr
    doc = orjson.loads(written.stdout)
    assert (doc["stream"], doc["version"], doc["aggregate"]) == ("counter-1", 2, "Counter")
    listed = lines(cli("--model", str(v1), "snapshot", "counter-1", "--list").stdout)
    assert [(s["version"], s["valid"]) for s in listed] == [(2, True)]
    table = cli("--model", str(v1), "replay", "counter-1", "-o", "table")
    assert "from snapshot v2" in table.stdout
    assert orjson.loads(cli("--model", str(v1), "replay", "counter-1").stdout)["state"] == {"total": 6}

    v2 = write_model(COUNTER_V2, "counter_model")  # same file, new code
    listed = lines(cli("--model", str(v2), "snapshot", "counter-1", "--list").stdout)
    assert [(s["version"], s["valid"]) for s in listed] == [(2, False)]
    replayed = cli("--model", str(v2), "replay", "counter-1")
    assert orjson.loads(replayed.stdout)["state"] == {"total": 60}
    assert "from v1" in cli("--model", str(v2), "replay", "counter-1", "-o", "table").stdout
    same = cli("--model", str(v2), "replay", "counter-1", "--no-snapshots")
    assert same.stdout == replayed.stdout


def test_snapshot_of_a_missing_stream_exits_4(cli, db):
    cli("init")
    result = cli("snapshot", "order-1")
    assert result.exit_code == 4
    assert "stream 'order-1' not found" in result.stderr


def test_no_snapshots_gives_the_same_document(cli, orders_db):
    assert cli(*MODEL, "snapshot", "order-1").exit_code == 0
    assert (
        cli(*MODEL, "replay", "order-1").stdout == cli(*MODEL, "replay", "order-1", "--no-snapshots").stdout
    )


# --- upcast --------------------------------------------------------------------------------------


def test_upcast_dry_run_shows_stored_events_before_and_after(cli, orders_db):
    result = cli(*MODEL, "upcast", "OrderCreated", "--dry-run")
    assert result.exit_code == 0, result.stderr
    rows = lines(result.stdout)
    assert [(r["stream"], r["from_schema"], r["to_schema"]) for r in rows] == [
        ("order-1", 2, 2),
        ("order-2", 2, 2),
        ("order-3", 1, 2),
    ]
    old = rows[2]
    assert old["before"] == {"customer": "c-1", "items": [{"sku": "p-2", "qty": 1, "unit_price": "19.99"}]}
    assert old["after"] == {
        "customer_id": "c-1",
        "lines": [{"product_id": "p-2", "quantity": 1, "price": "19.99"}],
    }
    assert rows[0]["changes"] == []
    stored = lines(cli("read", "order-3").stdout)[0]
    assert stored["data"] == old["before"]  # never rewritten
    table = cli(*MODEL, "upcast", "OrderCreated", "--dry-run", "-o", "table")
    assert "schema 1 → 2" in table.stdout


def test_upcast_without_dry_run_or_model_is_refused(cli, orders_db):
    result = cli(*MODEL, "upcast", "OrderCreated")
    assert result.exit_code == 2
    assert "never rewrite stored events" in result.stderr
    assert cli("upcast", "OrderCreated", "--dry-run").exit_code == 2


def test_upcast_of_a_type_without_upcasters_reads_as_stored(cli, orders_db):
    result = cli(*MODEL, "upcast", "OrderShipped", "--dry-run")
    assert result.exit_code == 0
    assert [r["changes"] for r in lines(result.stdout)] == [[]]
    assert "no upcaster for 'OrderShipped'" in result.stderr


def test_the_sample_events_import_cleanly(cli, db):
    result = cli("import", str(ORDERS_EVENTS))
    assert orjson.loads(result.stdout)["imported"] == 7


# --- model errors name the model, the file and the line -------------------------------------


def _line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize(
    ("body", "culprit", "message"),
    [
        ('category = "or-der"', "class Bad", "Bad.category must be a name without '-' or spaces"),
        ("snapshot_every = 0", "class Bad", "Bad.snapshot_every must be a positive integer or None"),
        ("@evolve()\n    def e(state, data): return state", "@evolve()", "@evolve needs the event types"),
        ('@evolve("E")\n    def e(state): return state', '@evolve("E")', "evolve handler Bad.e must take"),
    ],
)
def test_a_bad_definition_names_the_model_file_and_line(cli, orders_db, write_model, body, culprit, message):
    path = write_model(
        f"from esctl.aggregates import Aggregate, evolve\n\n\nclass Bad(Aggregate):\n    {body}\n"
    )
    result = cli("--model", str(path), "replay", "order-1")
    assert result.exit_code == 2
    assert result.stdout == ""
    line = _line(path, culprit)
    assert result.stderr.startswith(f"esctl: error: model {path}: {path}, line {line}: {message}"), (
        result.stderr
    )


TWO_ORDERS = """
    from esctl.aggregates import Aggregate


    class Order(Aggregate):
        category = "order"


    class OtherOrder(Aggregate):
        category = "order"
"""


def test_two_aggregates_for_one_category_name_both_definitions(cli, orders_db, write_model):
    path = write_model(TWO_ORDERS)
    result = cli("--model", str(path), "replay", "order-1")
    assert result.exit_code == 2
    assert result.stderr == (
        f"esctl: error: more than one aggregate for category 'order': {path}, line {_line(path, 'class Order')}:"
        f" Order; {path}, line {_line(path, 'class OtherOrder')}: OtherOrder\n"
    )


FAILING = """
    from esctl.aggregates import Aggregate, evolve, upcaster


    class Order(Aggregate):
        category = "order"

        @evolve("OrderCreated")
        def created(state, data):
            return {"lines": len(data["lines"])}

        @evolve("OrderConfirmed")
        def confirmed(state, data):
            state["when"] = object()
            return state

        @evolve("OrderShipped")
        def shipped(state, data):
            return state


    @upcaster("OrderCreated", from_schema=1)
    def rename(data):
        return {"lines": data["items"]}
"""


def test_a_state_that_is_not_json_names_the_version_the_handler_and_its_line(cli, orders_db, write_model):
    path = write_model(FAILING)
    result = cli("--model", str(path), "replay", "order-1", "--to-version", "2")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"esctl: error: {path}, line {_line(path, 'class Order')}: order-1 v2: ")
    assert "not JSON-serialisable: object at 'when'" in result.stderr
    steps = cli("--model", str(path), "replay", "order-1", "--steps")
    assert steps.exit_code == 2
    assert f"{path}, line {_line(path, 'OrderConfirmed')}: order-1 v2 after Order.confirmed: " in steps.stderr
    snap = cli("--model", str(path), "snapshot", "order-1", "--to-version", "2")
    assert snap.exit_code == 2
    assert snap.stderr.startswith(f"esctl: error: {path}, line {_line(path, 'class Order')}: order-1 v2: ")


NOPE = 'data["nope"]'


def test_an_upcaster_that_raises_names_its_line(cli, orders_db, write_model):
    path = write_model(FAILING.replace('data["items"]', NOPE))
    result = cli("--model", str(path), "replay", "order-3")
    assert result.exit_code == 2
    assert result.stderr == (
        f"esctl: error: {path}, line {_line(path, NOPE)}: order-3 v1: upcaster rename"
        " (OrderCreated schema 1) raised KeyError: 'nope'\n"
    )


MISSING = "state['missing']"


def test_a_handler_that_raises_during_replay_names_the_line_that_raised(cli, orders_db, write_model):
    path = write_model(
        FAILING.replace("return state\n\n\n    @upcaster", f"return {MISSING}\n\n\n    @upcaster")
    )
    result = cli("--model", str(path), "replay", "order-1")
    assert result.exit_code == 2
    assert result.stderr == (
        f"esctl: error: {path}, line {_line(path, MISSING)}: Order.shipped raised"
        " KeyError: 'missing' at order-1 v3 (OrderShipped)\n"
    )


# --- smaller review findings ---------------------------------------------------------------


def test_until_type_that_never_occurs_says_so(cli, orders_db):
    result = cli(*MODEL, "replay", "order-1", "--until-type", "OrderCancelled")
    assert result.exit_code == 0
    assert orjson.loads(result.stdout)["version"] == 3
    assert (
        result.stderr == "esctl: order-1 has no OrderCancelled event: --until-type does not stop the replay\n"
    )
    found = cli(*MODEL, "replay", "order-1", "--until-type", "OrderShipped")
    assert found.stderr == ""


@pytest.mark.parametrize(
    "command", [["replay"], ["versions"], ["snapshot"], ["diff", "0", "1"], ["replay", "--steps"]]
)
def test_a_missing_stream_is_not_found_before_any_note_about_the_fold(cli, orders_db, write_model, command):
    path = write_model("x = 1\n", "no_aggregates")
    name, *rest = command
    result = cli("--model", str(path), name, "thing-9", *rest)
    assert result.exit_code == 4
    assert result.stderr == "esctl: error: stream 'thing-9' not found\n"


def test_a_schema_newer_than_the_model_is_refused(cli, orders_db):
    cli(
        "append",
        "order-7",
        "OrderCreated",
        '{"customer_id": "c", "lines": []}',
        "--metadata",
        '{"schema": 3}',
    )
    result = cli(*MODEL, "replay", "order-7")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "order-7 v1: OrderCreated is stored in schema 3, newer than this model reads (2" in result.stderr


def test_upcast_dry_run_lists_every_failure_and_fails_at_the_end(cli, orders_db):
    cli("append", "order-7", "OrderCreated", '{"items": []}')  # schema 1 without "customer"
    cli("append", "order-8", "OrderCreated", '{"items": []}')
    result = cli(*MODEL, "upcast", "OrderCreated", "--dry-run")
    assert result.exit_code == 2
    assert [(r["stream"], r["to_schema"]) for r in lines(result.stdout)] == [
        ("order-1", 2),
        ("order-2", 2),
        ("order-3", 2),
    ]
    errors = result.stderr.splitlines()
    assert len(errors) == 3
    assert "order-7 v1: upcaster" in errors[0] and "raised KeyError: 'customer'" in errors[0]
    assert "order-8 v1: upcaster" in errors[1]
    assert errors[2] == "esctl: error: 2 of 5 OrderCreated events could not be upcast"


def test_exec_refuses_two_different_correlation_ids(cli, orders_db):
    args = '{"customer_id": "c", "lines": [{"product_id": "p", "quantity": 1, "price": "1"}]}'
    both = ["--correlation-id", "y", "-m", '{"correlation_id": "x"}']
    result = cli(*MODEL, "exec", "order-7", "create", args, *both)
    assert result.exit_code == 2
    assert result.stderr == "esctl: error: two correlation ids: 'y', and 'x' in metadata correlation_id\n"
    assert count_events(orders_db) == 7
    one = cli(*MODEL, "exec", "order-7", "create", args, "-m", '{"correlation_id": "x"}')
    assert one.exit_code == 0, one.stderr
    assert lines(one.stdout)[0]["metadata"]["correlation_id"] == "x"
