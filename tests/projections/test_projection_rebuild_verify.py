"""Rebuild into shadow tables with an atomic swap; verify against scratch rebuilds."""

from __future__ import annotations

import sqlite3

import pytest

from esctl.projections import ProjectionFailed, projections_in
from esctl.projections.catalog import existing_tables, record
from esctl.projections.rebuild import rebuild
from esctl.projections.reset import reset
from esctl.projections.runner import catch_up
from esctl.projections.verify import verify
from tests.projections.conftest import COUNTER_MODEL


def counter(load, source: str = COUNTER_MODEL):
    return projections_in(load(source))[0]


def test_rebuild_swaps_in_new_tables_and_checkpoint(store, read_conn, load, append) -> None:
    for i in range(30):
        append(store, f"s-{i % 3}", "Added", {"x": i})
    catch_up(store, read_conn, counter(load))
    read_conn.execute("UPDATE counts SET total = -1")  # damage it: a rebuild repairs it
    generation = record(read_conn, "counts").generation
    result = rebuild(store, read_conn, counter(load), batch_size=7)
    assert (result.checkpoint, result.applied) == (30, 30)
    assert [r[0] for r in read_conn.execute("SELECT total FROM counts ORDER BY stream")] == [135, 145, 155]
    rec = record(read_conn, "counts")
    assert (rec.checkpoint, rec.generation, rec.failure) == (30, generation + 1, None)
    assert not [t for t in existing_tables(read_conn) if t.startswith("esctl_shadow_")]


def test_readers_see_the_old_tables_until_the_swap(store, read_conn, load, append, tmp_path) -> None:
    for _i in range(10):
        append(store, "s-1", "Added", {"x": 1})
    catch_up(store, read_conn, counter(load))
    seen = []
    reader = sqlite3.connect(store.path)

    def look(n: int) -> None:
        seen.append(reader.execute("SELECT n FROM counts").fetchone()[0])

    changed = counter(load, COUNTER_MODEL.replace('"n": row["n"] + 1', '"n": row["n"] + 10'))
    rebuild(store, read_conn, changed, batch_size=3, progress=look)
    assert len(seen) >= 3 and set(seen) == {10}  # the old table while the shadow filled
    assert reader.execute("SELECT n FROM counts").fetchone()[0] == 100


def test_a_failed_rebuild_leaves_the_old_tables_and_checkpoint(store, read_conn, load, append) -> None:
    for x in (1, 2, 3):
        append(store, "s-1", "Added", {"x": x})
    catch_up(store, read_conn, counter(load))
    before = read_conn.execute("SELECT * FROM counts").fetchall()
    rec = record(read_conn, "counts")
    broken = counter(load, COUNTER_MODEL.replace("sign = 1", "sign = 1 / (event.version - 2)"))
    with pytest.raises(ProjectionFailed, match=r"rebuild failed .* position 2 .*ZeroDivisionError"):
        rebuild(store, read_conn, broken, batch_size=1)
    assert read_conn.execute("SELECT * FROM counts").fetchall() == before
    after = record(read_conn, "counts")
    assert (after.checkpoint, after.fingerprint, after.failure) == (rec.checkpoint, rec.fingerprint, None)
    assert not [t for t in existing_tables(read_conn) if t.startswith("esctl_shadow_")]


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


def test_reset_drops_tables_and_checkpoint(store, read_conn, load, append) -> None:
    append(store, "s-1", "Added")
    catch_up(store, read_conn, counter(load))
    assert reset(read_conn, "counts") == ["counts", "log"]
    assert record(read_conn, "counts") is None
    assert not {"counts", "log"} & existing_tables(read_conn)
    assert reset(read_conn, "counts") is None
    assert catch_up(store, read_conn, counter(load)).applied == 1  # starts again at 1


def test_verify_passes_a_faithful_read_model(store, read_conn, load, append) -> None:
    for i in range(12):
        append(store, f"s-{i % 3}", "Added", {"x": i})
    catch_up(store, read_conn, counter(load))
    append(store, "s-9", "Added")  # past the checkpoint: not part of the comparison
    report = verify(store, store.path, counter(load))
    assert report.ok, report.differences
    assert (report.checkpoint, report.rows) == (12, {"counts": 3, "log": 12})


def test_verify_finds_hand_edited_missing_and_extra_rows(store, read_conn, load, append) -> None:
    for i in range(6):
        append(store, f"s-{i % 3}", "Added", {"x": i})
    catch_up(store, read_conn, counter(load))
    read_conn.execute("UPDATE counts SET total = 99 WHERE stream = 's-1'")
    read_conn.execute("DELETE FROM counts WHERE stream = 's-2'")
    read_conn.execute("INSERT INTO counts VALUES ('s-7', 1, 1, 1)")
    read_conn.execute("INSERT INTO log VALUES ('s-7', 'Added')")
    report = verify(store, store.path, counter(load))
    assert not report.ok
    assert {k: v for k, v in report.counts.items() if v} == {"different": 1, "missing": 1, "extra": 2}
    found = {(d.table, d.kind, tuple(d.key.values())): d for d in report.differences}
    different = found["counts", "different", ("s-1",)]
    assert different.columns == ["total"]
    assert (different.live["total"], different.rebuilt["total"]) == (99, 1 + 4)
    assert ("counts", "missing", ("s-2",)) in found
    assert ("counts", "extra", ("s-7",)) in found
    assert ("log", "extra", (7,)) in found


def test_verify_flags_a_non_deterministic_projection(store, read_conn, load, append) -> None:
    p = counter(
        load,
        COUNTER_MODEL.replace('"last": event.version', '"last": __import__("random").randrange(10**12)'),
    )
    append(store, "s-1", "Added")
    catch_up(store, read_conn, p)
    report = verify(store, store.path, p)
    assert report.counts["nondeterministic"] == 1
    assert report.counts["different"] == 1


def test_verify_reports_a_failed_projection_as_failed_not_ok(store, read_conn, load, append) -> None:
    p = counter(load, COUNTER_MODEL.replace("sign = 1", "sign = 1 // event.data['x']"))
    for x in (1, 0, 2):
        append(store, "s-1", "Added", {"x": x})
    with pytest.raises(ProjectionFailed):
        catch_up(store, read_conn, p)
    report = verify(store, store.path, p)
    assert (report.ok, report.failed, report.status, report.total) == (False, True, "failed", 0)
    doc = report.to_dict()
    assert doc["error"] == record(read_conn, "counts").failure
    assert {k: doc[k] for k in ("name", "checkpoint", "ok", "status", "counts", "differences")} == {
        "name": "counts",
        "checkpoint": 0,  # the failing event's batch was rolled back whole
        "ok": False,
        "status": "failed",
        "counts": {},
        "differences": [],
    }
    assert (doc["error"]["position"], doc["error"]["type"]) == (2, "Added")


def test_a_verify_report_as_a_document(store, read_conn, load, append) -> None:
    append(store, "s-1", "Added", {"x": 1})
    catch_up(store, read_conn, counter(load))
    assert verify(store, store.path, counter(load)).to_dict() == {
        "name": "counts",
        "checkpoint": 1,
        "ok": True,
        "status": "matches",
        "rows": {"counts": 1, "log": 1},
        "counts": {},
        "differences": [],
    }
    read_conn.execute("UPDATE counts SET total = 7")
    doc = verify(store, store.path, counter(load)).to_dict()
    assert (doc["ok"], doc["status"], doc["counts"]) == (False, "differs", {"different": 1})
    assert doc["differences"] == [
        {
            "table": "counts",
            "diff": "different",
            "key": {"stream": "s-1"},
            "columns": ["total"],
            "live": {"stream": "s-1", "n": 1, "total": 7, "last": 1},
            "rebuilt": {"stream": "s-1", "n": 1, "total": 1, "last": 1},
        }
    ]


def test_verify_of_a_projection_never_built(store, load) -> None:
    from esctl.errors import NotFound

    with pytest.raises(NotFound, match="has not been built"):
        verify(store, store.path, counter(load))


# --- one rebuild at a time; a reset waits for it ----------------------------------------


def test_a_second_rebuild_or_a_reset_during_a_rebuild_is_refused(store, read_conn, load, append) -> None:
    from esctl.errors import ConcurrencyError
    from esctl.projections.catalog import open_read_models

    for i in range(12):
        append(store, f"s-{i % 3}", "Added", {"x": i})
    p = counter(load)
    catch_up(store, read_conn, p)
    other = open_read_models(store.path, None, create=False)
    refusals = []

    def meanwhile(_n: int) -> None:
        if refusals:  # once, between the first batches (later calls hold the write lock)
            return
        for attempt in (lambda: rebuild(store, other, p), lambda: reset(other, "counts")):
            with pytest.raises(ConcurrencyError, match="being rebuilt by process") as refused:
                attempt()
            refusals.append(str(refused.value))

    result = rebuild(store, read_conn, p, batch_size=5, progress=meanwhile)
    assert refusals and result.checkpoint == 12
    assert [r[0] for r in read_conn.execute("SELECT total FROM counts ORDER BY stream")] == [18, 22, 26]
    assert not [t for t in existing_tables(read_conn) if t.startswith("esctl_shadow_")]
    # Done: the claim is given back, so both work again.
    assert rebuild(store, other, p).checkpoint == 12
    assert reset(other, "counts") == ["counts", "log"]
    other.close()


def test_the_claim_of_a_rebuild_that_died_does_not_block(store, read_conn, load, append) -> None:
    import subprocess
    import sys

    from esctl.projections.catalog import rebuilder

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    append(store, "s-1", "Added", {"x": 1})
    p = counter(load)
    rebuild(store, read_conn, p)
    read_conn.execute(
        "INSERT INTO esctl_rebuilds VALUES ('counts', ?, ?, '', '2026-01-01T00:00:00Z')",
        (dead.pid, __import__("socket").gethostname()),
    )
    assert rebuilder(read_conn, "counts") is None
    assert rebuild(store, read_conn, p).checkpoint == 1


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


def test_a_lost_table_makes_it_stale_and_only_a_rebuild_goes_on(store, read_conn, load, append) -> None:
    from esctl.projections.runner import ProjectionNeedsRebuild
    from esctl.projections.status import status

    for i in range(4):
        append(store, "s-1", "Added", {"x": i})
    p = counter(load)
    catch_up(store, read_conn, p)
    read_conn.execute("DROP TABLE counts")
    doc = status(read_conn, p, store.head_position())
    assert (doc["status"], doc["missing"]) == ("stale", ["counts"])
    append(store, "s-1", "Added", {"x": 10})
    with pytest.raises(ProjectionNeedsRebuild, match=r"lost its table counts .* rebuild counts"):
        catch_up(store, read_conn, p)
    assert "counts" not in existing_tables(read_conn)  # not silently recreated empty
    rebuild(store, read_conn, p)
    assert read_conn.execute("SELECT n, total FROM counts").fetchall() == [(5, 16)]
    assert status(read_conn, p, store.head_position())["status"] == "live"
