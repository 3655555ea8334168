"""Several processes appending to one stream with exact expected versions."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from esctl import NewEvent, WrongExpectedVersion
from esctl.store import EventStore
from tests.helpers import HANG

WRITERS, EACH = 4, 25


def _writer(path: str, name: str, first_read, conflicts, errors) -> None:  # runs in a child process
    try:
        with EventStore.open(path) as store:
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


@pytest.mark.slow
def test_racing_writers_with_exact_expected_versions(tmp_path: Path):
    path = str(tmp_path / "events.db")
    EventStore.open(path, create=True).close()
    ctx = mp.get_context("spawn")
    first_read, conflicts, errors = ctx.Barrier(WRITERS), ctx.Value("i", 0), ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(path, f"w{i}", first_read, conflicts, errors))
        for i in range(WRITERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(HANG)
    reported = []
    while not errors.empty():
        reported.append(errors.get())
    assert reported == []  # in particular no "database is locked"
    assert [p.exitcode for p in procs] == [0] * WRITERS
    assert conflicts.value >= WRITERS - 1
    with EventStore.open(path) as store:
        events = list(store.read_stream("counter-1"))
    assert [e.version for e in events] == list(range(1, WRITERS * EACH + 1))
    assert [e.position for e in events] == list(range(1, WRITERS * EACH + 1))
    by_writer = {f"w{i}": 0 for i in range(WRITERS)}
    for e in events:
        by_writer[e.data["by"]] += 1
    assert by_writer == {f"w{i}": EACH for i in range(WRITERS)}
