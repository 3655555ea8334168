"""Several processes writing one store at once, on every backend: exact expected
versions under a race, and a follower that must see every event once, in order,
while writers commit out of step; a writer killed mid-transaction."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time

import pytest

from esctl import NewEvent, WrongExpectedVersion
from esctl import store as backends
from tests.helpers import HANG, wait_until

WRITERS, EACH = 4, 25


def _writer(url: str, name: str, first_read, conflicts, errors) -> None:  # runs in a child process
    try:
        with backends.open(url) as store:
            written = 0
            while written < EACH:
                version = store.stream_version("counter-1")
                if first_read is not None:
                    # Every writer has read version 0 before any appends: all but one of
                    # the first appends conflict, however the processes are scheduled.
                    first_read.wait(HANG)
                    first_read = None
                try:
                    store.append("counter-1", [NewEvent("counter-1", "Incremented", {"by": name})], version)
                    written += 1
                except WrongExpectedVersion:
                    with conflicts.get_lock():
                        conflicts.value += 1
                    continue  # someone else won this version: reload and retry
    except Exception as exc:  # reported to the parent, which fails the test
        errors.put(f"{name}: {type(exc).__name__}: {exc}")


def _reported(errors) -> list[str]:
    reported = []
    while not errors.empty():
        reported.append(errors.get())
    return reported


@pytest.mark.slow
def test_racing_writers_with_exact_expected_versions(store_url):
    backends.open(store_url, create=True).close()
    ctx = mp.get_context("spawn")
    first_read, conflicts, errors = ctx.Barrier(WRITERS), ctx.Value("i", 0), ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(store_url, f"w{i}", first_read, conflicts, errors))
        for i in range(WRITERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(HANG)
    assert _reported(errors) == []  # in particular no "database is locked"
    assert [p.exitcode for p in procs] == [0] * WRITERS
    assert conflicts.value >= WRITERS - 1
    with backends.open(store_url) as store:
        events = list(store.read_stream("counter-1"))
    assert [e.version for e in events] == list(range(1, WRITERS * EACH + 1))
    assert [e.position for e in events] == list(range(1, WRITERS * EACH + 1))
    by_writer = {f"w{i}": 0 for i in range(WRITERS)}
    for e in events:
        by_writer[e.data["by"]] += 1
    assert by_writer == {f"w{i}": EACH for i in range(WRITERS)}


GAP_WRITERS, GAP_APPENDS = 8, 30


def _slowed(store, seed: int) -> None:
    """Make some of the store's transactions wait between their inserts and their
    commit, so that commits come out of step with the order the writers began."""
    rnd = random.Random(seed)
    make = store._writer

    def writer():
        w = make()
        commit = w.commit

        def slow_commit() -> None:
            if rnd.random() < 0.3:
                time.sleep(rnd.random() * 0.02)  # widens the window; no test waits on it
            commit()

        w.commit = slow_commit
        return w

    store._writer = writer


def _gap_writer(url: str, index: int, errors) -> None:  # runs in a child process
    try:
        rnd = random.Random(index)
        with backends.open(url) as store:
            _slowed(store, index)
            for n in range(GAP_APPENDS):
                stream = f"w{index}-{rnd.randrange(3)}"
                batch = [
                    NewEvent(stream, "E", {"w": index, "n": n, "k": k}) for k in range(rnd.randint(1, 4))
                ]
                store.append(stream, batch)
    except Exception as exc:
        errors.put(f"writer {index}: {type(exc).__name__}: {exc}")


@pytest.mark.slow
def test_a_follower_reading_by_position_never_skips_an_event(store_url):
    """8 writers append at once, some committing late; a follower that keeps the
    last position it saw as its checkpoint, as `--follow` and every projection do,
    sees every event exactly once, in position order, and positions are gapless."""
    backends.open(store_url, create=True).close()
    ctx = mp.get_context("spawn")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_gap_writer, args=(store_url, i, errors)) for i in range(GAP_WRITERS)]
    for p in procs:
        p.start()
    seen: list[int] = []
    deadline = time.monotonic() + HANG
    try:
        with backends.open(store_url) as follower:
            while True:
                running = any(p.is_alive() for p in procs)  # read before the catch-up below
                new = [e.position for e in follower.read_all(from_position=(seen[-1] if seen else 0) + 1)]
                seen += new
                if not running:
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"the writers did not finish within {HANG:.0f} s")
                if not new:
                    time.sleep(0.001)  # leave the 2 cores to the writers; not a synchronisation
            head = follower.head_position()
            per_stream: dict[str, list[int]] = {}
            for event in follower.read_all():
                per_stream.setdefault(event.stream, []).append(event.version)
        for p in procs:
            p.join(HANG)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
    assert _reported(errors) == []
    assert [p.exitcode for p in procs] == [0] * GAP_WRITERS
    assert seen == list(range(1, head + 1))
    assert all(versions == list(range(1, len(versions) + 1)) for versions in per_stream.values())
    assert sum(len(v) for v in per_stream.values()) == head > GAP_WRITERS * GAP_APPENDS


def _killed_writer(url: str, ready_path: str) -> None:  # runs in a child process; killed by the test
    with backends.open(url) as store:
        make = store._writer

        def writer():
            w = make()

            def commit() -> None:  # inserted, not committed: tell the test, then wait to be killed
                with open(ready_path, "w") as f:
                    f.write("inserted\n")
                time.sleep(HANG)

            w.commit = commit
            return w

        store._writer = writer
        store.append("s-1", [NewEvent("s-1", "Lost", {"n": n}) for n in range(50)])


@pytest.mark.slow
def test_a_writer_killed_mid_transaction_leaves_nothing_and_holds_nothing(store_url, tmp_path):
    with backends.open(store_url, create=True) as store:
        store.append("s-1", [NewEvent("s-1", "Kept")])
    ready = tmp_path / "ready"
    ctx = mp.get_context("spawn")
    child = ctx.Process(target=_killed_writer, args=(store_url, str(ready)))
    child.start()
    try:
        wait_until(lambda: ready.exists() or not child.is_alive(), "the writer to reach its commit")
        assert ready.exists(), f"the writer exited ({child.exitcode}) before its commit"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(HANG)
    with backends.open(store_url) as store:
        assert [e.type for e in store.read_all()] == ["Kept"]
        store.append("s-1", [NewEvent("s-1", "After")], 1)  # the lock went with the process
        assert [(e.version, e.position, e.type) for e in store.read_stream("s-1")] == [
            (1, 1, "Kept"),
            (2, 2, "After"),
        ]
