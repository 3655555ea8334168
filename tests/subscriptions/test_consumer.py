"""The consumer runner on every backend, with an injected clock (no sleeping):
delivery once and in order with a stable idempotency key, the stored backoff
schedule, the breaker's transitions, parking by event and by stream, re-driving
and skipping, and one runner per group."""

from __future__ import annotations

import random

import pytest

from esctl import NewEvent
from esctl import store as backends
from esctl.errors import ConcurrencyError, InvalidInput
from esctl.store.consumers import ConsumerStore
from esctl.subscriptions import EventFilter, ManualClock
from esctl.subscriptions.consumer import ConsumerRunner, Outcome
from esctl.subscriptions.dlq import retry, skip
from esctl.subscriptions.resilience import Settings


class Recorder:
    """A handler that fails where told and records every call."""

    def __init__(self, fail=lambda delivery: False) -> None:
        self.fail = fail
        self.calls: list[tuple[str, int, int, str]] = []  # (stream, version, attempt, key)

    def __call__(self, delivery) -> Outcome:
        row = delivery.row
        self.calls.append((row.stream, row.version, delivery.attempt, delivery.idempotency_key))
        if self.fail(delivery):
            return Outcome(False, 1, f"refused {row.stream} v{row.version}")
        return Outcome(True, 0)

    def delivered(self) -> list[tuple[str, int]]:
        return [(s, v) for s, v, _, _ in self.calls]


@pytest.fixture
def store(store_url):
    with backends.open(store_url, create=True) as opened:
        yield opened


def add(store, stream: str, *types: str) -> None:
    store.append(stream, [NewEvent(stream, t, {}) for t in types])


def runner(store, db, handler, clock=None, *, group="g", wanted=EventFilter(), **settings) -> ConsumerRunner:
    return ConsumerRunner(
        store,
        db,
        group,
        wanted,
        handler,
        Settings(**settings),
        clock=clock or ManualClock(1_000_000.0),
        rng=random.Random(7),
    )


def test_each_wanted_event_is_delivered_once_in_order_and_keyed(store, open_models) -> None:
    add(store, "order-1", "Placed", "Paid")
    add(store, "user-1", "Joined")
    add(store, "order-2", "Placed")
    handler = Recorder()
    db = open_models()
    summary = runner(store, db, handler, wanted=EventFilter.of(categories=["order"])).run(once=True)
    assert handler.delivered() == [("order-1", 1), ("order-1", 2), ("order-2", 1)]
    assert summary.delivered == 3
    assert ConsumerStore(db).get("g").checkpoint == 4
    add(store, "order-1", "Shipped")
    runner(store, db, handler, wanted=EventFilter.of(categories=["order"])).run(once=True)
    assert handler.delivered()[-1] == ("order-1", 3) and len(handler.calls) == 4
    ids = [e.id for e in store.read_all() if e.stream.startswith("order")]
    assert [key for *_, key in handler.calls] == [f"g:{i}" for i in ids]


def test_a_group_keeps_its_filter_and_park_mode(store, open_models) -> None:
    add(store, "order-1", "Placed")
    db = open_models()
    runner(store, db, Recorder(), wanted=EventFilter.of(categories=["order"])).run(once=True)
    with pytest.raises(InvalidInput, match="follows category order: give the same filters"):
        runner(store, db, Recorder()).run(once=True)
    with pytest.raises(
        InvalidInput, match=r"parks by stream: park by stream \(--park, or a Subscriber.s park=\)"
    ):
        runner(store, db, Recorder(), wanted=EventFilter.of(categories=["order"]), park_mode="event").run(
            once=True
        )


def test_retries_follow_the_stored_backoff_schedule_across_restarts(store, open_models) -> None:
    add(store, "s-1", "A")
    clock = ManualClock(1_000_000.0)
    times: list[float] = []
    handler = Recorder(fail=lambda d: times.append(clock.now()) or d.attempt < 3)
    settings = {"retries": 5, "backoff_base": 1.0, "backoff_max": 3.0, "break_after": 99}
    stops = iter([False, False, True])  # stopped while it waits for the first retry
    db = open_models()
    runner(store, db, handler, clock, **settings).run(should_stop=lambda: next(stops, True))
    first_delay = Settings(**settings).delay(1, random.Random(7))
    state = ConsumerStore(db).get("g")
    assert (state.attempt, state.attempt_at, state.checkpoint) == (1, 1, 0)
    assert state.retry_at == pytest.approx(times[0] + first_delay)
    # A restarted runner waits out the stored delay, then makes attempt 2, not 1.
    runner(store, open_models(), handler, clock, **settings).run(once=True)
    assert [a for _, _, a, _ in handler.calls] == [1, 2, 3]
    second_delay = Settings(**settings).delay(2, random.Random(7))  # the new runner's first draw
    assert times[1] == pytest.approx(times[0] + first_delay)
    assert times[2] == pytest.approx(times[1] + second_delay)
    assert ConsumerStore(open_models()).get("g").checkpoint == 1
    # Full jitter: a delay lies anywhere in [0, min(max, base * 2**(n-1))].
    for n in range(1, 8):
        delays = [Settings(**settings).delay(n, random.Random(seed)) for seed in range(200)]
        assert min(delays) >= 0 and max(delays) <= min(3.0, 2 ** (n - 1))
        assert max(delays) > 0.9 * min(3.0, 2 ** (n - 1))


def test_the_breaker_opens_half_opens_for_one_trial_and_closes(store, open_models) -> None:
    add(store, "s-1", "A", "B")
    clock = ManualClock(1_000_000.0)
    outcomes = iter([False, False, False, True, True])  # fail, fail (opens), trial fails, trial ok
    handler = Recorder(fail=lambda d: not next(outcomes))
    reports = []
    run = runner(
        store,
        open_models(),
        handler,
        clock,
        retries=10,
        backoff_base=0.0,
        backoff_max=0.0,
        break_after=2,
        cool_down=30.0,
    )
    run.on_report = reports.append
    run.run(once=False, should_stop=lambda: len(handler.calls) >= 5)
    assert [r.outcome for r in reports] == ["failed", "open", "open", "ok", "ok"]
    start = 1_000_000.0
    # The trial waited for the cool-down after the breaker opened, twice.
    assert clock.t - start == pytest.approx(60.0)
    state = ConsumerStore(open_models()).get("g")
    assert (state.breaker, state.failures, state.checkpoint) == ("closed", 0, 2)


def test_a_drain_stops_at_an_open_breaker(store, open_models) -> None:
    add(store, "s-1", "A")
    run = runner(
        store,
        open_models(),
        Recorder(fail=lambda d: True),
        retries=5,
        backoff_base=0.0,
        backoff_max=0.0,
        break_after=1,
        cool_down=30.0,
    )
    summary = run.run(once=True)
    assert summary.stopped_by_breaker == pytest.approx(1_000_000.0 + 30.0)
    assert ConsumerStore(open_models()).get("g").breaker == "open"


def test_stream_mode_holds_a_parked_streams_later_events_and_retry_releases_them_in_order(
    store, open_models
) -> None:
    add(store, "s-1", "A", "B", "C")
    add(store, "s-2", "A", "B")
    broken = {("s-1", 2)}
    handler = Recorder(fail=lambda d: (d.row.stream, d.row.version) in broken)
    db = open_models()
    summary = runner(store, db, handler, retries=1, backoff_base=0.0, backoff_max=0.0).run(once=True)
    delivered = [c[:2] for c in handler.calls if (c[0], c[1]) not in broken]
    assert delivered == [("s-1", 1), ("s-2", 1), ("s-2", 2)]  # never s-1 v3 before v2
    assert (summary.parked, summary.held) == (1, 1)
    state = ConsumerStore(db)
    assert [(p.position, p.state, p.attempts) for p in state.parked("g")] == [
        (2, "parked", 2),
        (3, "held", 0),
    ]
    assert state.get("g").checkpoint == 5
    # Fixed downstream: re-driving the parked event releases the held one, in order.
    broken.clear()
    assert retry(db, state, state.get("g"), 2) == [2, 3]
    handler.calls.clear()
    runner(store, db, handler, retries=1).run(once=True)
    assert handler.delivered() == [("s-1", 2), ("s-1", 3)]
    assert [p.state for p in state.parked("g", states=())] == ["done", "done"]
    assert [h["what"] for h in state.one("g", 2).history] == ["parked", "retry requested", "delivered"]


def test_a_re_driven_event_that_fails_again_keeps_its_stream_held(store, open_models) -> None:
    add(store, "s-1", "A", "B", "C")
    handler = Recorder(fail=lambda d: d.row.version == 1)
    db = open_models()
    runner(store, db, handler, retries=0).run(once=True)
    state = ConsumerStore(db)
    retry(db, state, state.get("g"), None)
    handler.calls.clear()
    runner(store, db, handler, retries=0).run(once=True)
    assert handler.delivered() == [("s-1", 1)]  # v1 failed again: v2 and v3 wait behind it
    assert [p.state for p in state.parked("g")] == ["parked", "held", "held"]


def test_skip_gives_up_one_event_and_releases_those_held_behind_it(store, open_models) -> None:
    add(store, "s-1", "A", "B")
    handler = Recorder(fail=lambda d: d.row.version == 1)
    db = open_models()
    runner(store, db, handler, retries=0).run(once=True)
    state = ConsumerStore(db)
    assert skip(db, state, state.get("g"), 1) == [2]
    handler.calls.clear()
    runner(store, db, handler, retries=0).run(once=True)
    assert handler.delivered() == [("s-1", 2)]
    assert [p.state for p in state.parked("g", states=())] == ["skipped", "done"]


def test_event_mode_parks_and_moves_on_in_the_same_stream(store, open_models) -> None:
    add(store, "s-1", "A", "B", "C")
    handler = Recorder(fail=lambda d: d.row.version == 2)
    db = open_models()
    runner(store, db, handler, retries=0, park_mode="event").run(once=True)
    assert [c[:2] for c in handler.calls] == [("s-1", 1), ("s-1", 2), ("s-1", 3)]
    assert [(p.position, p.state) for p in ConsumerStore(db).parked("g")] == [(2, "parked")]


def test_one_runner_per_group(store, open_models) -> None:
    add(store, "s-1", "A")
    first, second = open_models(), open_models()
    assert first.acquire_lease("consumer:g", 5.0) is None
    with pytest.raises(ConcurrencyError, match="consumer 'g' is being run by"):
        runner(store, second, Recorder(), wait_for_lease=False).run(once=True)
    first.release_lease("consumer:g")
    handler = Recorder()
    runner(store, second, handler, wait_for_lease=False).run(once=True)
    assert handler.delivered() == [("s-1", 1)]
    assert second.lease_holder("consumer:g") is None  # given back at the end


def test_parking_does_not_reset_the_breaker(store, open_models) -> None:
    """Failures in a row count across events: a downstream that is down opens the
    breaker even though each event is parked after its retries."""
    add(store, "s-1", "A")
    add(store, "s-2", "A")
    handler = Recorder(fail=lambda d: True)
    summary = runner(
        store,
        open_models(),
        handler,
        retries=1,
        backoff_base=0.0,
        backoff_max=0.0,
        break_after=3,
        cool_down=30.0,
        park_mode="event",
    ).run(once=True)
    assert len(handler.calls) == 3  # s-1 twice (then parked), s-2 once: the third failure opens it
    assert summary.parked == 1 and summary.stopped_by_breaker is not None
    state = ConsumerStore(open_models()).get("g")
    assert (state.breaker, state.failures, state.checkpoint) == ("open", 3, 1)


def test_a_runner_that_waited_for_the_lease_starts_from_the_state_it_finds(store, open_models) -> None:
    import threading

    add(store, "s-1", "A", "B", "C")
    holder, waiter = open_models(), open_models()
    assert holder.acquire_lease("consumer:g", 5.0) is None
    waiting = threading.Event()
    late = Recorder()
    errors = []

    def run_second() -> None:
        try:
            with backends.open(store.path) as own:  # a store connection of its own thread
                second = runner(own, waiter, late, retries=0)
                second.on_wait = lambda note: waiting.set()
                second.run(once=True)
        except BaseException as exc:
            errors.append(exc)
            waiting.set()

    thread = threading.Thread(target=run_second)
    thread.start()
    assert waiting.wait(60)
    first = Recorder(fail=lambda d: d.row.version == 2)
    runner(store, holder, first, retries=0).run(
        once=True
    )  # delivers 1 and 3 (2 is held... parked), then lets go
    thread.join(60)
    assert errors == []
    assert late.calls == []  # nothing left: it read the group after taking the lease
    state = ConsumerStore(open_models())
    assert state.get("g").checkpoint == 3
    assert [(p.position, p.state) for p in state.parked("g")] == [(2, "parked"), (3, "held")]


def test_a_dlq_step_taken_during_a_re_drive_is_kept(store, open_models) -> None:
    add(store, "s-1", "A")
    db, operator = open_models(), open_models()
    runner(store, db, Recorder(fail=lambda d: True), retries=0).run(once=True)
    state = ConsumerStore(db)
    retry(db, state, state.get("g"), 1)

    def skipped_meanwhile(delivery) -> Outcome:
        skip(operator, ConsumerStore(operator), ConsumerStore(operator).get("g"), 1)
        return Outcome(True, 0)

    runner(store, db, skipped_meanwhile, retries=0).run(once=True)
    parked = state.one("g", 1)
    assert parked.state == "skipped"
    assert [h["what"] for h in parked.history][-2:] == ["skipped", "delivered while skipped"]


def test_a_stream_freed_during_a_batch_is_not_held_again(store, open_models) -> None:
    add(store, "s-1", "A", "B")
    db, operator = open_models(), open_models()
    runner(store, db, Recorder(fail=lambda d: d.row.version == 1), retries=0).run(once=True)
    add(store, "s-2", "A")
    add(store, "s-1", "C")

    def frees_s1(delivery) -> Outcome:
        if delivery.row.stream == "s-2":  # an operator gives s-1 v1 up while s-2 v1 runs
            skip(operator, ConsumerStore(operator), ConsumerStore(operator).get("g"), 1)
        return Outcome(True, 0)

    handler = Recorder()
    runner(store, db, lambda d: (frees_s1(d), handler(d))[1], retries=0).run(once=True)
    # v3 came while v2 was back in line: it queued behind it, rather than being held for good.
    assert handler.delivered() == [("s-2", 1), ("s-1", 2), ("s-1", 3)]
    assert [p.state for p in ConsumerStore(db).parked("g", states=())] == ["skipped", "done", "done"]


def test_a_runner_whose_lease_was_taken_over_moves_nothing(tmp_path) -> None:
    """SQLite's lease is a row: another runner takes it over once it expires (a
    PostgreSQL lease is a session lock, which no one can take from a live session)."""
    from esctl.errors import StoreError
    from esctl.store.sqlite.readmodels import SQLiteReadModels

    with backends.open(tmp_path / "events.db", create=True) as store:
        add(store, "s-1", "A", "B")
        with (
            SQLiteReadModels.open(store.path, create=True) as db,
            SQLiteReadModels.open(store.path, create=True) as thief,
        ):

            def taken_over(delivery) -> Outcome:
                thief.execute("UPDATE esctl_leases SET token = 'another holder'")  # as after an expiry
                return Outcome(True, 0)

            with pytest.raises(StoreError, match="lost its lease"):
                runner(store, db, taken_over).run(once=True)
            assert ConsumerStore(thief).get("g").checkpoint == 0
