"""A Subscriber in the model: plain handlers, testable by calling them or with
run_in_memory on a clock that never sleeps; found in the model, read through its
upcasters, and run by `esctl consume NAME` with the settings it gives."""

from __future__ import annotations

import json
import textwrap

import pytest
from typer.testing import CliRunner

from esctl import NewEvent
from esctl.cli.app import app
from esctl.errors import InvalidInput
from esctl.model import load_model
from esctl.subscriptions import ManualClock, Subscriber, subscribers_in

MODEL = """
from esctl.aggregates import upcaster
from esctl.subscriptions import Subscriber

sent = []
notifier = Subscriber("notifier", categories=["order"], retries=2, backoff=(10, 40), break_after=99)

@notifier.on("OrderShipped")
def shipped(event, attempt):
    if event.data.get("fail_until", 0) >= attempt.number:
        raise ConnectionError(f"smtp down ({attempt.number})")
    sent.append((event.stream, event.data["tracking"], attempt.idempotency_key))

fast = Subscriber("fast", categories=["order"], retries=2, backoff=(0, 0))
fast.on("OrderShipped")(shipped)

@upcaster("OrderShipped", from_schema=1)
def tracking_renamed(data):
    return {"tracking": data.pop("tracking_number"), **data}
"""


def shipped(stream: str, tracking: str, **data) -> NewEvent:
    return NewEvent(stream, "OrderShipped", {"tracking": tracking, **data}, {"schema": 2})


@pytest.fixture
def model(tmp_path, monkeypatch):
    import esctl.model

    monkeypatch.setattr(esctl.model, "_loaded", {})
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(MODEL))
    return load_model(str(path)), path


def test_handlers_are_plain_functions(model) -> None:
    module, _ = model
    from esctl.store.writing import decode  # noqa: F401 - the envelope type handlers get
    from esctl.subscriptions import Attempt

    module.shipped(type("E", (), {"stream": "order-1", "data": {"tracking": "T-1"}})(), Attempt(1, "k"))
    assert module.sent == [("order-1", "T-1", "k")]


def _failing(event):
    from dataclasses import replace

    return replace(event, data={**event.data, "fail_until": 1})


def test_run_in_memory_retries_on_a_clock_that_never_sleeps_and_parks_by_stream(model) -> None:
    module, _ = model
    notifier, _fast = subscribers_in(module)
    clock = ManualClock()
    summary, parked = notifier.run_in_memory(
        [
            shipped("order-1", "T-1", fail_until=2),  # fails twice, then the last retry works
            shipped("order-2", "T-2", fail_until=9),  # fails every time: parked
            shipped("order-2", "T-3"),  # held behind it
            NewEvent("user-1", "OrderShipped", {"tracking": "T-4"}, {"schema": 2}),  # not its category
        ],
        clock=clock,
    )
    assert [(s, t) for s, t, _ in module.sent] == [("order-1", "T-1")]
    assert (summary.delivered, summary.parked, summary.held, summary.failures) == (1, 1, 1, 5)
    assert [(p.stream, p.state, p.attempts) for p in parked] == [
        ("order-2", "parked", 3),
        ("order-2", "held", 0),
    ]
    assert "ConnectionError: smtp down (3)" in parked[0].error
    assert 0 < sum(clock.sleeps) <= 4 * (10 + 20)  # backoff waited on the clock alone


def test_the_model_s_subscribers_read_through_its_upcasters(model) -> None:
    module, _ = model
    notifier, _fast = subscribers_in(module)
    notifier.run_in_memory([NewEvent("order-1", "OrderShipped", {"tracking_number": "T-9"})])
    assert module.sent[0][:2] == ("order-1", "T-9")


def test_a_subscriber_checks_its_definition() -> None:
    with pytest.raises(ValueError, match="--park must be event or stream"):
        Subscriber("s", park="never")
    s = Subscriber("s")
    s.on("A")(lambda e, a: None)
    with pytest.raises(ValueError, match="'A' already has a handler"):
        s.on("A")(lambda e, a: None)
    module = type("M", (), {})()
    module.a, module.b = Subscriber("x"), Subscriber("x")
    with pytest.raises(InvalidInput, match="two subscribers are named 'x'"):
        subscribers_in(module)


def test_esctl_consume_runs_the_model_s_subscriber(model, store_url, monkeypatch) -> None:
    _, path = model
    for var in ("ESCTL_DB", "ESCTL_MODEL", "ESCTL_READ_DB"):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()
    from esctl import store as backends

    with backends.open(store_url, create=True) as store:
        store.append("order-1", [shipped("order-1", "T-1", fail_until=1)])
    done = runner.invoke(app, ["--db", store_url, "--model", str(path), "consume", "fast", "--once"])
    assert (done.exit_code, done.stderr) == (0, "")
    reports = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["outcome"], r["attempt"]) for r in reports] == [("failed", 1), ("ok", 2)]  # its own retries
    assert "smtp down (1)" in reports[0]["error"]
    refused = runner.invoke(app, ["--db", store_url, "--model", str(path), "consume", "fast", "--all"])
    assert refused.exit_code == 2 and "says which events it takes" in refused.stderr
    unknown = runner.invoke(app, ["--db", store_url, "--model", str(path), "consume", "nobody", "--once"])
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("esctl: error: give the command to run (--exec COMMAND), or --model")


def test_run_in_memory_reads_through_the_upcasters_of_the_handlers_module(model) -> None:
    module, _ = model
    module.fast.run_in_memory([NewEvent("order-1", "OrderShipped", {"tracking_number": "T-7"})])
    assert module.sent[0][:2] == ("order-1", "T-7")  # upcast, though subscribers_in never ran


def test_a_subscriber_s_own_settings_are_not_overridden_on_the_command_line(model, cli) -> None:
    _, path = model
    result = cli("--model", str(path), "consume", "fast", "--once", "--retries", "9", "--park", "event")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "esctl: error: subscriber 'fast' gives its own retries, backoff, breaker and park mode in the model:"
        " drop --retries, --park\n"
    )
