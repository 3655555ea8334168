"""The write side: commands, optimistic concurrency with retries, metadata."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from esctl import NewEvent
from esctl.aggregates import Aggregate, CommandRejected, Upcasters, command, evolve, execute, upcaster
from esctl.errors import ConcurrencyError
from esctl.store import EventStore
from tests.helpers import HANG


def racing_counter(db: Path, interfere: int) -> type[Aggregate]:
    """A counter whose command handler lets another writer append first, `interfere` times."""
    calls = {"n": 0}

    class Counter(Aggregate):
        category = "counter"

        def initial():
            return {"count": 0}

        @evolve("Added")
        def added(state, data):
            return {"count": state["count"] + data["n"]}

        @command("add")
        def add(state, args):
            calls["n"] += 1
            if calls["n"] <= interfere:
                with EventStore.open(db) as other:
                    other.append("counter-1", [NewEvent("counter-1", "Added", {"n": 100})])
            if args.get("n", 1) < 1:
                raise CommandRejected("n must be positive")
            return [("Added", {"n": args.get("n", 1)})]

    return Counter


def test_a_new_stream_is_written_with_expected_version_no_stream(rw_store, db):
    executed = execute(rw_store, "counter-1", racing_counter(db, 0), "add", {"n": 2})
    assert [(e.version, e.type, e.data) for e in executed.events] == [(1, "Added", {"n": 2})]
    assert (executed.version, executed.state, executed.attempts) == (1, {"count": 2}, 1)


def test_metadata_links_the_events_to_the_command(rw_store, db):
    executed = execute(
        rw_store,
        "counter-1",
        racing_counter(db, 0),
        "add",
        {},
        correlation_id="corr-9",
        metadata={"user": "ann"},
    )
    meta = executed.events[0].metadata
    assert meta == {
        "user": "ann",
        "correlation_id": "corr-9",
        "causation_id": executed.command_id,
        "command": "add",
    }
    other = execute(rw_store, "counter-1", racing_counter(db, 0), "add", {})
    assert other.correlation_id not in ("corr-9", executed.correlation_id)


def test_a_concurrent_write_is_retried_on_the_reloaded_state(rw_store, db):
    conflicts = []
    executed = execute(
        rw_store, "counter-1", racing_counter(db, 2), "add", {}, on_conflict=lambda e, n: conflicts.append(n)
    )
    assert conflicts == [1, 2]
    assert executed.attempts == 3
    assert executed.state == {"count": 201}
    assert [e.version for e in executed.events] == [3]


def test_too_many_conflicts_give_up_with_a_concurrency_error_and_write_nothing(rw_store, db):
    with pytest.raises(ConcurrencyError, match="conflicted with other writers 2 times"):
        execute(rw_store, "counter-1", racing_counter(db, 5), "add", {}, retries=1)
    assert [e.data for e in rw_store.read_stream("counter-1")] == [{"n": 100}, {"n": 100}]


def test_a_rejected_command_writes_nothing(rw_store, db):
    execute(rw_store, "counter-1", racing_counter(db, 0), "add", {})
    with pytest.raises(CommandRejected, match="n must be positive"):
        execute(rw_store, "counter-1", racing_counter(db, 0), "add", {"n": 0})
    assert rw_store.stream_version("counter-1") == 1


@upcaster("Added", from_schema=1)
def _added_v2(data):
    return data


def test_events_of_an_upcast_type_are_stamped_with_the_current_schema(rw_store, db):
    executed = execute(
        rw_store, "counter-1", racing_counter(db, 0), "add", {}, upcasters=Upcasters([_added_v2])
    )
    assert executed.events[0].metadata["schema"] == 2


def test_commands_snapshot_every_n_events(rw_store, db):
    class Every(racing_counter(db, 0)):
        snapshot_every = 3

    from esctl.aggregates import Replayer

    for _ in range(7):
        execute(rw_store, "counter-1", Every, "add", {})
    versions = [s.version for s in Replayer(rw_store, Every).snapshots.list("counter-1")]
    assert versions == [3, 6]


_first_decision: list = []  # in each pool process: the barrier its first decision waits at


def _hold_first_decision(barrier) -> None:  # the pool's initializer
    _first_decision.append(barrier)


def _worker(db: str, count: int) -> int:
    """One process executing `count` add commands; returns how many attempts it needed."""

    class Counter(Aggregate):
        category = "counter"

        def initial():
            return {"count": 0}

        @evolve("Added")
        def added(state, data):
            return {"count": state["count"] + 1}

        @command("add")
        def add(state, args):
            if _first_decision:
                # Every worker has loaded the empty stream before any appends: all but
                # one of these first decisions are stale, whatever the scheduling.
                _first_decision.pop().wait(HANG)
            time.sleep(0.002)  # more collisions after the first ones (nothing counts on them)
            return [("Added", {"seen": state["count"]})]

    attempts = 0
    with EventStore.open(db) as store:
        for _ in range(count):
            attempts += execute(store, "counter-1", Counter, "add", {}, retries=1000).attempts
    return attempts


@pytest.mark.slow
def test_writers_racing_in_separate_processes_lose_no_command(db):
    EventStore.open(db, create=True).close()
    ctx = multiprocessing.get_context("spawn")
    # A task holds its process at the barrier until all four run: one task each.
    with ctx.Pool(4, initializer=_hold_first_decision, initargs=(ctx.Barrier(4),)) as pool:
        attempts = pool.starmap(_worker, [(str(db), 25)] * 4)
    with EventStore.open(db) as store:
        events = list(store.read_stream("counter-1"))
    assert [e.version for e in events] == list(range(1, 101))
    # Each command saw every earlier one: the state it decided on was never stale.
    assert [e.data["seen"] for e in events] == list(range(100))
    assert sum(attempts) >= 100 + 3  # three of the first four decisions lost, and were retried


def test_ids_given_in_the_metadata_are_the_ones_reported(rw_store, db):
    executed = execute(
        rw_store,
        "counter-1",
        racing_counter(db, 0),
        "add",
        {},
        metadata={"correlation_id": "corr-x", "causation_id": "cmd-x"},
    )
    meta = executed.events[0].metadata
    assert (meta["correlation_id"], meta["causation_id"]) == ("corr-x", "cmd-x")
    assert (executed.correlation_id, executed.command_id) == ("corr-x", "cmd-x")


def test_two_different_correlation_ids_are_refused(rw_store, db):
    from esctl.errors import InvalidInput

    with pytest.raises(InvalidInput, match="two correlation ids: 'a', and 'b' in metadata correlation_id"):
        execute(
            rw_store,
            "counter-1",
            racing_counter(db, 0),
            "add",
            {},
            correlation_id="a",
            metadata={"correlation_id": "b"},
        )
    assert rw_store.stream_version("counter-1") == 0
