"""Integration events: a published contract (name, version, fields, shape) apart
from the domain event; a domain event whose shape changed breaks it visibly, in
a test helper, in `esctl contracts --check` (exit 5), and in `consume --published`
(parked, never sent malformed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from esctl import NewEvent
from esctl import store as backends
from esctl.cli.app import app
from esctl.events import RecordedEvent
from esctl.subscriptions import Published, check_contract

ORDERS = Path(__file__).parents[2] / "sample_streams" / "orders"

SHIPPED = Published(
    "OrderShipped",
    name="orders.shipped",
    version=1,
    fields={"order_id": str, "tracking": str, "parcels": int},
    shape=lambda e: {
        "order_id": e.stream.partition("-")[2],
        "tracking": e.data["tracking_number"],
        "parcels": e.data.get("parcels", 1),
    },
)


def event(data: dict, position: int = 7) -> RecordedEvent:
    return RecordedEvent(
        "order-1",
        3,
        position,
        "OrderShipped",
        data,
        {"correlation_id": "c-1"},
        "id-7",
        "2026-01-01T00:00:00Z",
    )


def test_the_published_form_carries_name_version_ids_and_the_shaped_data() -> None:
    assert SHIPPED.publish(event({"tracking_number": "T-1"})) == {
        "name": "orders.shipped",
        "version": 1,
        "id": "id-7",
        "occurred_at": "2026-01-01T00:00:00Z",
        "correlation_id": "c-1",
        "data": {"order_id": "1", "tracking": "T-1", "parcels": 1},
    }


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"tracking": "T-1"}, "its shape fails: KeyError: 'tracking_number'"),
        ({"tracking_number": 42}, "field 'tracking' is integer, not string"),
        ({"tracking_number": "T-1", "parcels": "2"}, "field 'parcels' is string, not integer"),
        ({"tracking_number": "T-1", "parcels": True}, "field 'parcels' is boolean, not integer"),
    ],
)
def test_a_changed_domain_event_breaks_the_contract_by_name(data, problem) -> None:
    (line,) = check_contract([SHIPPED], [event(data)])
    assert line == f"position 7 (order-1 v3, OrderShipped): orders.shipped v1: {problem}"
    from esctl.errors import InvalidInput

    with pytest.raises(InvalidInput, match=r"breaks orders\.shipped v1"):
        SHIPPED.publish(event(data))


def test_fields_the_contract_does_not_name_are_refused_too() -> None:
    extra = Published("A", name="a.b", version=1, fields={"x": str}, shape=lambda e: {"x": "1", "y": 2})
    assert check_contract([extra], [RecordedEvent("s-1", 1, 1, "A", {}, {}, "i", "t")]) == [
        "position 1 (s-1 v1, A): a.b v1: field 'y' is not in the contract"
    ]
    assert check_contract([SHIPPED], [event({"tracking_number": "T"})]) == []


def test_contracts_check_holds_the_log_to_its_contracts(store_url, monkeypatch) -> None:
    for var in ("ESCTL_DB", "ESCTL_MODEL", "ESCTL_READ_DB"):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()
    model = ["--db", store_url, "--model", str(ORDERS / "model.py")]
    assert runner.invoke(app, ["--db", store_url, "import", str(ORDERS / "events.ndjson")]).exit_code == 0
    listed = runner.invoke(app, [*model, "contracts"])
    assert json.loads(listed.stdout)["name"] == "orders.shipped"
    held = runner.invoke(app, [*model, "contracts", "--check"])
    assert (held.exit_code, json.loads(held.stdout)["broken"]) == (0, 0)
    with backends.open(store_url) as store:
        store.append("order-2", [NewEvent("order-2", "OrderShipped", {"tracking": "T-2"})])  # renamed field
    broken = runner.invoke(app, [*model, "contracts", "--check"])
    assert broken.exit_code == 5
    assert json.loads(broken.stdout)["broken"] == 1
    assert broken.stderr.startswith(
        "esctl: error: 1 published event(s) break their contract: position 8 (order-2"
    )


def test_consume_published_hands_over_the_public_form_and_parks_a_broken_one(
    store_url, tmp_path, monkeypatch
) -> None:
    for var in ("ESCTL_DB", "ESCTL_MODEL", "ESCTL_READ_DB"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["--db", store_url, "import", str(ORDERS / "events.ndjson")]).exit_code == 0
    with backends.open(store_url) as store:
        store.append("order-2", [NewEvent("order-2", "OrderShipped", {"tracking": "T-2"})])
    done = runner.invoke(
        app,
        [
            "--db",
            store_url,
            "--model",
            str(ORDERS / "model.py"),
            "consume",
            "partner",
            "--all",
            "--published",
            "--exec",
            "cat >> published.ndjson",
            "--once",
            "--retries",
            "0",
        ],
    )
    assert done.exit_code == 0
    outcomes = [(r["position"], r["outcome"]) for r in map(json.loads, done.stdout.splitlines())]
    assert outcomes == [(3, "ok"), (8, "parked")], done.stdout  # only the published type, its public form
    (sent,) = [json.loads(line) for line in (tmp_path / "published.ndjson").read_text().splitlines()]
    assert (sent["name"], sent["version"], sent["data"]) == (
        "orders.shipped",
        1,
        {"order_id": "1", "tracking": "T-1"},
    )


def test_a_contract_is_checked_on_the_data_it_sends() -> None:
    """The shape runs once: the data checked is the data sent (a shape that
    changes the event, or differs each time, cannot slip past)."""
    calls = []
    once = Published(
        "A", name="a.b", version=1, fields={"n": int}, shape=lambda e: calls.append(1) or {"n": len(calls)}
    )
    assert once.publish(RecordedEvent("s-1", 1, 1, "A", {}, {}, "i", "t"))["data"] == {"n": 1}
    assert calls == [1]
    with pytest.raises(ValueError, match="whole number from 1"):
        Published("A", name="a.b", version=True, fields={}, shape=dict)


def test_check_contract_reads_through_the_upcasters_and_needs_a_contract() -> None:
    old = RecordedEvent("order-1", 3, 7, "OrderShipped", {"tracking": "T-1"}, {}, "id", "t")
    from dataclasses import replace

    def renamed(e: RecordedEvent) -> RecordedEvent:  # the upcaster of an older schema
        return replace(e, data={"tracking_number": e.data["tracking"]})

    assert check_contract([SHIPPED], [old], renamed) == []
    assert check_contract([SHIPPED], [old]) != []  # as stored, it breaks the contract
    with pytest.raises(ValueError, match="at least one Published contract"):
        check_contract([], [old])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["consume", "p", "--all", "--published", "--type", "OrderCreated", "--exec", "cat"],
            "--published: the model does not publish OrderCreated (it publishes OrderShipped)",
        ),
        (["consume", "p", "--published"], "--published hands the public form to a command"),
    ],
)
def test_published_usage_errors_are_one_line(cli, args, message) -> None:
    result = cli("--model", str(ORDERS / "model.py"), *args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"esctl: error: {message}") and len(result.stderr.splitlines()) == 1


def test_contracts_of_a_model_that_publishes_nothing(cli) -> None:
    bank = Path(__file__).parents[2] / "sample_streams" / "bank" / "model.py"
    result = cli("--model", str(bank), "contracts", "--check")
    assert (result.exit_code, result.stderr) == (
        2,
        "esctl: error: the model publishes no events (esctl.subscriptions.Published)\n",
    )
