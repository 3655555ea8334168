"""Rebuild into shadow tables with an atomic swap; verify against scratch rebuilds."""

from __future__ import annotations

import sqlite3

import pytest

from esctl.projections import projections_in
from esctl.projections.rebuild import rebuild
from esctl.projections.runner import catch_up
from esctl.store.sqlite.readmodels import SQLiteReadModels
from tests.projections.conftest import COUNTER_MODEL


def counter(load, source: str = COUNTER_MODEL):
    return projections_in(load(source))[0]


def test_indexes_survive_repeated_rebuilds(store, read_conn, load, append) -> None:
    p = counter(load, COUNTER_MODEL.replace('pk="stream"', 'pk="stream", indexes=["total", ("n", "last")]'))
    append(store, "s-1", "Added", {"x": 1})
    for _ in range(3):
        rebuild(store, read_conn, p)
    indexes = [
        r[0]
        for r in read_conn.execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='counts' AND sql IS NOT NULL"
        )
    ]
    assert len(indexes) == 2 and all(name.endswith("_g3") for name in indexes)


# --- one rebuild at a time; a reset waits for it ----------------------------------------


def test_the_claim_of_a_rebuild_that_died_does_not_block(store, read_conn, load, append) -> None:
    """A claim is a lease its holder renews: one whose time ran out (its holder
    was killed, or stopped renewing) is no claim."""
    import time

    append(store, "s-1", "Added", {"x": 1})
    p = counter(load)
    rebuild(store, read_conn, p)
    read_conn.execute(
        "INSERT INTO esctl_leases VALUES ('rebuild:counts', 'process 1 on elsewhere', 'dead', ?)",
        (time.time() - 1,),
    )
    assert read_conn.rebuilder("counts") is None
    assert rebuild(store, read_conn, p).checkpoint == 1


def test_a_rebuild_renews_its_claim_while_it_runs(store, read_conn, load, append, monkeypatch) -> None:
    import time

    from esctl.store.sqlite import readmodels

    monkeypatch.setattr(readmodels, "REBUILD_LEASE", 0.3)
    for i in range(12):
        append(store, f"s-{i % 3}", "Added", {"x": i})
    p = counter(load)
    other = SQLiteReadModels.open(store.path, create=False)
    seen = []

    def slowly(_n: int) -> None:  # between batches, longer than the lease: renewals keep it
        if not read_conn.in_transaction:  # not in the final transaction, which holds the file
            time.sleep(0.4)
            seen.append(other.rebuilder("counts"))

    assert rebuild(store, read_conn, p, batch_size=3, progress=slowly).checkpoint == 12
    assert seen and all(
        holder and holder.startswith(f"process {__import__('os').getpid()} on ") for holder in seen
    )
    assert other.rebuilder("counts") is None  # given back
    other.close()


def test_shadow_tables_dropped_by_someone_else_are_not_blamed_on_the_handler(
    store, read_conn, load, append
) -> None:
    from esctl.errors import StoreError

    for i in range(10):
        append(store, "s-1", "Added", {"x": i})
    p = counter(load)
    catch_up(store, read_conn, p)
    before = read_conn.execute("SELECT * FROM counts").fetchall()
    intruder = sqlite3.connect(store.path, isolation_level=None)

    def drop_shadows(_n: int) -> None:
        if not dropped:  # between the first batches (later calls hold the write lock)
            intruder.execute("DROP TABLE esctl_shadow_counts")
            dropped.append(True)

    dropped: list[bool] = []

    with pytest.raises(StoreError, match="lost its shadow tables"):
        rebuild(store, read_conn, p, batch_size=3, progress=drop_shadows)
    intruder.close()
    assert read_conn.execute("SELECT * FROM counts").fetchall() == before
    assert rebuild(store, read_conn, p).checkpoint == 10  # nothing left claimed


# --- a table dropped by hand --------------------------------------------------------------


def test_a_rebuild_whose_claim_was_taken_stops_and_changes_nothing(store, read_conn, load, append) -> None:
    from esctl.errors import StoreError

    for i in range(12):
        append(store, f"s-{i % 3}", "Added", {"x": i})
    p = counter(load)
    catch_up(store, read_conn, p)
    before = read_conn.execute("SELECT * FROM counts ORDER BY stream").fetchall()
    thief = SQLiteReadModels.open(store.path, create=False)

    def taken(_n: int) -> None:  # as when its renewals stalled past the lease and another took it
        if not read_conn.in_transaction:
            thief.execute("UPDATE esctl_leases SET token = 'theirs' WHERE name = 'rebuild:counts'")

    with pytest.raises(StoreError, match="lost its claim"):
        rebuild(store, read_conn, p, batch_size=3, progress=taken)
    thief.close()
    assert read_conn.execute("SELECT * FROM counts ORDER BY stream").fetchall() == before
