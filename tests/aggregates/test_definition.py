"""Given/when/then tests of aggregates as plain Python: no database."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from esctl import codec
from esctl.aggregates import Aggregate, CommandContext, CommandRejected, Emitted, ModelError, command, evolve
from esctl.aggregates.definition import class_defined_at, spec_of
from esctl.usercode import shown_path

CREATE = {
    "customer_id": "c-1",
    "lines": [
        {"product_id": "p-1", "quantity": 2, "price": "29.99"},
        {"product_id": "p-2", "quantity": 1, "price": "19.99"},
    ],
}


def test_given_nothing_when_create_then_order_created_with_exact_prices(orders):
    events = orders.Order.decide(orders.Order.initial_state(), "create", CREATE)
    assert events == [
        Emitted(
            "OrderCreated",
            {
                "customer_id": "c-1",
                "lines": [
                    {"product_id": "p-1", "quantity": 2, "price": "29.99"},
                    {"product_id": "p-2", "quantity": 1, "price": "19.99"},
                ],
            },
        )
    ]


def test_given_created_the_total_is_exact_decimal(orders):
    state = orders.Order.fold(orders.Order.decide(orders.Order.initial_state(), "create", CREATE))
    assert state.status == "created"
    assert state.total == Decimal("79.97")
    assert str(state.total) == "79.97"
    assert codec.dumps({"total": state.total}) == b'{"total":79.97}'


def test_prices_given_as_json_numbers_are_exact_too(orders):
    data = {"customer_id": "c-1", "lines": [{"product_id": "p", "quantity": 3, "price": 0.1}]}
    state = orders.Order.fold([("OrderCreated", data)])
    assert state.total == Decimal("0.3")


def test_given_created_when_ship_then_rejected(orders):
    state = orders.Order.fold([("OrderCreated", CREATE)])
    with pytest.raises(CommandRejected, match="can only ship confirmed orders"):
        orders.Order.decide(state, "ship", {"tracking_number": "T-1"})


def test_given_created_and_confirmed_when_ship_then_shipped(orders):
    state = orders.Order.fold([("OrderCreated", CREATE), ("OrderConfirmed", {})])
    events = orders.Order.decide(state, "ship", {"tracking_number": "T-1"})
    assert events == [Emitted("OrderShipped", {"tracking_number": "T-1"})]
    shipped = orders.Order.fold(events, state)
    assert (shipped.status, shipped.tracking_number) == ("shipped", "T-1")
    assert state.status == "confirmed"  # the handlers return new states


@pytest.mark.parametrize(
    ("given", "command_name", "args", "message"),
    [
        ([("OrderCreated", CREATE)], "create", CREATE, "already exists"),
        ([], "confirm", {}, "only a created order"),
        ([("OrderCreated", CREATE), ("OrderConfirmed", {})], "confirm", {}, "only a created order"),
        ([], "create", {"customer_id": "c-1", "lines": []}, "at least one line"),
        (
            [],
            "create",
            {"customer_id": "c-1", "lines": [{"product_id": "p", "quantity": 0, "price": "1"}]},
            "quantity",
        ),
        (
            [],
            "create",
            {"customer_id": "c-1", "lines": [{"product_id": "p", "quantity": 1, "price": "x"}]},
            "price",
        ),
    ],
)
def test_rules_reject_commands(orders, given, command_name, args, message):
    state = orders.Order.fold(given)
    with pytest.raises(CommandRejected, match=message):
        orders.Order.decide(state, command_name, args)


def test_unknown_command_names_the_known_ones(orders):
    with pytest.raises(ModelError, match=r"no command 'cancel' \(commands: confirm, create, ship\)"):
        orders.Order.decide(orders.Order.initial_state(), "cancel", {})


def test_fold_refuses_an_unknown_event_type(orders):
    with pytest.raises(ModelError, match="no handler for event type 'OrderLost'"):
        orders.Order.fold([("OrderLost", {})])


def test_initial_value_is_copied_for_each_replay():
    class Tally(Aggregate):
        category = "tally"
        initial = {"items": []}  # noqa: RUF012 - a value, deep-copied for each replay

        @evolve("Added")
        def added(state, data):
            state["items"].append(data["x"])
            return state

    assert Tally.fold([("Added", {"x": 1})]) == {"items": [1]}
    assert Tally.fold([("Added", {"x": 2})]) == {"items": [2]}
    assert Tally.initial == {"items": []}


def test_handlers_can_take_the_event_and_the_command_context():
    @dataclass
    class Seen:
        last: int = 0

    class Log(Aggregate):
        category = "log"
        initial = Seen

        @evolve("Noted")
        def noted(state, data, event):
            return Seen(event.version)

        @command
        def note(state, args, context):
            return {"type": "Noted", "data": {"by": context.command, "at": context.version}}

    assert Log.fold([("Noted", {}), ("Noted", {})]) == Seen(2)
    context = CommandContext(stream="log-1", version=7, command="note")
    assert Log.decide(Seen(), "note", {}, context) == [Emitted("Noted", {"by": "note", "at": 7})]


def test_wildcard_handler_sees_types_without_their_own():
    class Any_(Aggregate):
        category = "any"
        initial = list

        @evolve("Known")
        def known(state, data):
            return [*state, "known"]

        @evolve("*")
        def other(state, data):
            return [*state, "other"]

    assert Any_.fold([("Known", {}), ("Else", {})]) == ["known", "other"]


def test_a_subclass_overrides_an_inherited_handler():
    class Base(Aggregate):
        initial = dict

        @evolve("E")
        def e(state, data):
            return {"by": "base"}

    class Child(Base):
        category = "child"

        @evolve("E")
        def e2(state, data):
            return {"by": "child"}

    assert Child.fold([("E", {})]) == {"by": "child"}
    assert spec_of(Base).category == ""


@pytest.mark.parametrize(
    "returned",
    [
        ("Done", {"ok": True}),
        [("Done", {"ok": True})],
        {"type": "Done", "data": {"ok": True}},
        [Emitted("Done", {"ok": True})],
        (e for e in [("Done", {"ok": True})]),
    ],
)
def test_command_results_are_normalised(returned):
    class Job(Aggregate):
        category = "job"

        @command("run")
        def run(state, args):
            return returned

    assert Job.decide({}, "run") == [Emitted("Done", {"ok": True})]


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ([("Bad type", {})], "whitespace"),
        ([("Done", [1])], '"data" must be a JSON object'),
        ([42], r"expected \(type, data\)"),
    ],
)
def test_malformed_command_results_name_the_handler(returned, message):
    class Job(Aggregate):
        category = "job"

        @command("run")
        def run(state, args):
            return returned

    with pytest.raises(ModelError, match=f"Job.run returned an event esctl cannot use: .*{message}"):
        Job.decide({}, "run")


def test_an_evolve_handler_returning_none_is_reported():
    class Forgetful(Aggregate):
        category = "forgetful"

        @evolve("E")
        def e(state, data):
            state["x"] = 1

    with pytest.raises(ModelError, match=r"Forgetful\.e returned None"):
        Forgetful.fold([("E", {})])


def test_a_failing_handler_is_reported_with_its_name():
    class Fragile(Aggregate):
        category = "fragile"

        @evolve("E")
        def e(state, data):
            return data["missing"]

    with pytest.raises(ModelError, match=r"Fragile\.e raised KeyError"):
        Fragile.fold([("E", {})])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('category = "or-der"', "category must be a name without '-'"),
        ("snapshot_every = 0", "snapshot_every must be a positive integer"),
        ("def fold(cls): pass", "fold is reserved"),
    ],
)
def test_bad_definitions_are_refused_at_class_creation(body, message):
    namespace: dict = {"Aggregate": Aggregate}
    with pytest.raises(ModelError, match=message):
        exec(f"class Bad(Aggregate):\n    {body}\n", namespace)


def test_a_handler_with_the_wrong_parameters_is_refused():
    with pytest.raises(ModelError, match="must take"):

        class Bad(Aggregate):
            category = "bad"

            @evolve("E")
            def e(state):
                return state


def test_two_handlers_for_one_type_are_refused():
    with pytest.raises(ModelError, match="two evolve handlers for 'E'"):

        class Bad(Aggregate):
            category = "bad"

            @evolve("E")
            def a(state, data):
                return state

            @evolve("E")
            def b(state, data):
                return state


# --- a handler's mistake names the user's line ----------------------------------------------

HERE = shown_path(__file__)  # messages show paths relative to the current directory


def _line_of(fn, text: str) -> int:
    """The line number of `text` inside fn's source."""
    import inspect

    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


@pytest.mark.parametrize("returned", [42, "Done", 3.5, b"x"])
def test_a_command_returning_something_that_is_not_events_is_a_model_error(returned):
    class Job(Aggregate):
        category = "job"

        @command("run")
        def run(state, args):
            return returned

    with pytest.raises(ModelError) as caught:
        Job.decide({}, "run")
    message = str(caught.value)
    assert message.startswith(f"{HERE}, line ")
    assert f"Job.run returned {returned!r}; expected events" in message
    assert message.startswith(f"{HERE}, line {Job.run.__code__.co_firstlineno}: ")


def test_a_command_handler_that_raises_names_the_line_that_raised_not_the_def():
    class Job(Aggregate):
        category = "job"

        @command("run")
        def run(state, args):
            total = 1
            return [("Ran", {"n": total / args["zero"]})]

    with pytest.raises(ModelError) as caught:
        Job.decide({}, "run", {"zero": 0})
    line = _line_of(Job.run, "total / args")
    message = str(caught.value)
    assert message.startswith(f"{HERE}, line {line}: ")
    assert message.endswith("Job.run raised ZeroDivisionError: division by zero")


def test_a_generator_command_that_raises_part_way_is_a_model_error():
    class Job(Aggregate):
        category = "job"

        @command("run")
        def run(state, args):
            yield ("Ran", {})
            raise KeyError("later")

    with pytest.raises(ModelError, match=r"line \d+: .*Job.run raised KeyError: 'later'"):
        Job.decide({}, "run")


def test_an_evolve_handler_returning_none_names_its_definition_and_the_event():
    class Forgetful(Aggregate):
        category = "forgetful"

        @evolve("E")
        def e(state, data):
            state["x"] = 1

    with pytest.raises(ModelError) as caught:
        Forgetful.fold([("E", {})])
    line = Forgetful.e.__code__.co_firstlineno
    message = str(caught.value)
    assert message.startswith(f"{HERE}, line {line}: ")
    assert message.endswith("Forgetful.e returned None at event 1: an evolve handler returns the new state")


def test_an_evolve_handler_that_raises_names_the_line_that_raised():
    class Fragile(Aggregate):
        category = "fragile"

        @evolve("E")
        def e(state, data):
            value = 1
            return data["missing"] + value

    with pytest.raises(ModelError) as caught:
        Fragile.fold([("E", {})])
    line = _line_of(Fragile.e, 'data["missing"]')
    message = str(caught.value)
    assert message.startswith(f"{HERE}, line {line}: ")
    assert message.endswith("Fragile.e raised KeyError: 'missing' at event 1")


def test_a_class_is_placed_with_the_same_path_as_a_function():
    class Placed(Aggregate):
        category = "placed"

    line = _line_of(test_a_class_is_placed_with_the_same_path_as_a_function, "class Placed")
    assert class_defined_at(Placed) == f"{HERE}, line {line}: "
