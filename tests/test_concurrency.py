"""Several processes appending to one stream with exact expected versions."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from esctl import NewEvent, WrongExpectedVersion
from esctl.store import EventStore

WRITERS, EACH = 4, 25


def _writer(path: str, name: str, errors) -> None:  # runs in a child process
    try:
        with EventStore.open(path) as store:
            written = 0
            while written < EACH:
                version = store.stream_version("counter-1")
                try:
                    store.append("counter-1", [NewEvent("counter-1", "Incremented", {"by": name})], version)
                    written += 1
                except WrongExpectedVersion:
                    continue  # someone else won this version: reload and retry
    except Exception as exc:  # reported to the parent, which fails the test
        errors.put(f"{name}: {type(exc).__name__}: {exc}")


def test_racing_writers_with_exact_expected_versions(tmp_path: Path):
    path = str(tmp_path / "events.db")
    EventStore.open(path, create=True).close()
    ctx = mp.get_context("spawn")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(path, f"w{i}", errors)) for i in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    reported = []
    while not errors.empty():
        reported.append(errors.get())
    assert reported == []  # in particular no "database is locked"
    assert all(p.exitcode == 0 for p in procs)
    with EventStore.open(path) as store:
        events = list(store.read_stream("counter-1"))
    assert [e.version for e in events] == list(range(1, WRITERS * EACH + 1))
    assert [e.position for e in events] == list(range(1, WRITERS * EACH + 1))
    by_writer = {f"w{i}": 0 for i in range(WRITERS)}
    for e in events:
        by_writer[e.data["by"]] += 1
    assert by_writer == {f"w{i}": EACH for i in range(WRITERS)}
