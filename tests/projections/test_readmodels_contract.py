"""The read-model contract: what the projection engine gives on every read-model
backend (SQLite beside the events or in a file of its own, PostgreSQL in a schema
per projection). Checkpoints commit with the rows; failures roll back whole and
resume at the same event; rebuilds swap atomically and one runs at a time;
verify compares with scratch rebuilds. Backend specifics (the SQLite authorizer,
shadow tables by name, advisory locks) are tested beside each backend."""

from __future__ import annotations

import pytest

from esctl import store as backends
from esctl.projections import ProjectionFailed, projections_in
from esctl.projections.rebuild import rebuild
from esctl.projections.reset import reset
from esctl.projections.runner import catch_up
from esctl.projections.status import status
from esctl.projections.verify import verify
from tests.helpers import read_models_of
from tests.projections.conftest import COUNTER_MODEL


@pytest.fixture
def store(store_url):
    """The store, once per backend (overriding the SQLite-only `store`)."""
    with backends.open(store_url, create=True) as opened:
        yield opened


@pytest.fixture
def read_conn(store):
    """The store's read models where they live by default."""
    db = read_models_of(store)
    yield db
    db.close()


def counter(load, source: str = COUNTER_MODEL):
    return projections_in(load(source))[0]


def dump(db) -> tuple[list, list]:
    return (
        db.execute("SELECT * FROM counts ORDER BY stream").fetchall(),
        db.execute("SELECT * FROM log ORDER BY stream, type").fetchall(),
    )


def postgres(db) -> bool:
    return db.dialect == "postgresql"


FAILING = COUNTER_MODEL.replace(
    'sign = 1 if event.type == "Added" else -1',
    'sign = 1 if event.type == "Added" else -1\n    if event.data.get("x") == 13:\n        raise RuntimeError("unlucky")',
)


UPCAST_MODEL = """
from esctl.aggregates import upcaster
from esctl.projections import Projection, Table

names = Projection("names", Table("names", {"stream": str, "full": str}, pk="stream"))

@names.on("Named")
def named(event, db):
    db["names"].upsert({"stream": event.stream, "full": event.data["full"]})

@upcaster("Named", from_schema=1)
def split_to_full(data):
    return {"full": data["first"] + " " + data["last"]}
"""


SELF_READING = """
from esctl.projections import Projection, Table

qp = Projection("qp", Table("qp_t", {"k": str, "n": int}, pk="k"))

@qp.on("A")
def a(event, db):
    found = list(db.query("SELECT n FROM qp_t WHERE k = ?", [event.stream]))
    db["qp_t"].upsert({"k": event.stream, "n": (found[0]["n"] if found else 0) + 1})
"""


def test_catch_up_applies_each_event_once_and_moves_the_checkpoint(store, read_conn, load, append) -> None:
    p = counter(load)
    append(store, "s-1", "Added", {"x": 5})
    append(store, "s-1", "Other")  # no handler: skipped, but the checkpoint passes it
    append(store, "s-2", "Added", {"x": 1})
    result = catch_up(store, read_conn, p)
    assert (result.start, result.checkpoint, result.applied) == (0, 3, 2)
    assert status(read_conn, p, store.head_position())["status"] == "live"
    append(store, "s-1", "Removed", {"x": 2})
    assert status(read_conn, p, store.head_position()) == {
        "name": "counts",
        "checkpoint": 3,
        "head": 4,
        "lag": 1,
        "status": "behind",
    }
    result = catch_up(store, read_conn, p)
    assert (result.start, result.checkpoint, result.applied) == (3, 4, 1)
    assert dump(read_conn)[0] == [("s-1", 2, 3, 3), ("s-2", 1, 1, 1)]
    assert catch_up(store, read_conn, p).applied == 0


def test_a_failing_handler_moves_nothing_and_a_fixed_one_resumes_there(
    store, read_conn, load, append
) -> None:
    broken = projections_in(load(FAILING))[0]
    for x in (1, 2):
        append(store, "s-1", "Added", {"x": x})
    catch_up(store, read_conn, broken)
    before = dump(read_conn)
    for x in (3, 13, 4):  # one batch: the good event before the bad one is rolled back too
        append(store, "s-1", "Added", {"x": x})
    with pytest.raises(ProjectionFailed) as failed:
        catch_up(store, read_conn, broken)
    assert failed.value.failure.position == 4
    assert "RuntimeError: unlucky" in str(failed.value)
    assert dump(read_conn) == before
    doc = status(read_conn, broken, store.head_position())
    assert doc["status"] == "failed" and doc["checkpoint"] == 2
    assert {k: doc["error"][k] for k in ("position", "stream", "version", "type")} == {
        "position": 4,
        "stream": "s-1",
        "version": 4,
        "type": "Added",
    }
    assert "unlucky" in doc["error"]["message"] and "line" in doc["error"]["message"]
    # Running the broken code again fails on the same event.
    with pytest.raises(ProjectionFailed, match="position 4"):
        catch_up(store, read_conn, broken)
    # The fixed code resumes from event 3 (not 1, not 4) and adopts the fix.
    fixed = counter(load)
    result = catch_up(store, read_conn, fixed)
    assert (result.start, result.checkpoint, result.applied, result.adopted_code) == (2, 5, 3, True)
    assert dump(read_conn)[0] == [("s-1", 5, 1 + 2 + 3 + 13 + 4, 5)]
    assert status(read_conn, fixed, store.head_position())["status"] == "live"


def test_a_failing_deferred_write_is_pinned_to_its_event(store, read_conn, load, append) -> None:
    p = projections_in(
        load(
            """
            from esctl.projections import Projection, Table
            p = Projection("p", Table("t", {"k": str}, pk="k"))

            @p.on("A")
            def a(event, db):
                db["t"].insert({"k": event.data["k"]})  # a repeated key fails at the flush
            """
        )
    )[0]
    for k in ("a", "b", "c", "b", "d"):
        append(store, "s-1", "A", {"k": k})
    with pytest.raises(ProjectionFailed) as failed:
        catch_up(store, read_conn, p)
    assert failed.value.failure.position == 4
    message = failed.value.failure.message
    assert ("UniqueViolation" if postgres(read_conn) else "IntegrityError") in message
    assert read_conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0


def test_changed_code_makes_it_stale_until_rebuilt(store, read_conn, load, append) -> None:
    append(store, "s-1", "Added", {"x": 1})
    catch_up(store, read_conn, counter(load))
    changed = projections_in(load(COUNTER_MODEL.replace('"n": row["n"] + 1', '"n": row["n"] + 10')))[0]
    assert status(read_conn, changed, 1)["status"] == "stale"
    assert status(read_conn, counter(load), 1)["status"] == "live"
    catch_up(store, read_conn, changed)  # running on does not make it fresh
    assert status(read_conn, changed, 1)["status"] == "stale"
    rebuild(store, read_conn, changed)
    assert status(read_conn, changed, 1)["status"] == "live"
    assert dump(read_conn)[0] == [("s-1", 10, 1, 1)]


def test_a_checkpoint_moved_by_another_runner_is_respected(store, load, append, open_models) -> None:
    p = counter(load)
    first, second = open_models(), open_models()
    for i in range(5):
        append(store, "s-1", "Added", {"x": i})
    catch_up(store, first, p, batch_size=2)
    assert catch_up(store, second, p).applied == 0
    assert dump(second)[0] == [("s-1", 5, 10, 5)]


def test_projections_see_upcast_events_and_upcaster_changes_make_them_stale(store, read_conn, load) -> None:
    from esctl.events import NewEvent

    store.append("p-1", [NewEvent("p-1", "Named", {"first": "Ada", "last": "Lovelace"})])
    store.append("p-2", [NewEvent("p-2", "Named", {"full": "Grace Hopper"}, {"schema": 2})])
    p = projections_in(load(UPCAST_MODEL))[0]
    catch_up(store, read_conn, p)
    assert read_conn.execute("SELECT * FROM names ORDER BY stream").fetchall() == [
        ("p-1", "Ada Lovelace"),
        ("p-2", "Grace Hopper"),
    ]
    changed = projections_in(load(UPCAST_MODEL.replace('" " + data["last"]', '", " + data["last"]')))[0]
    assert status(read_conn, changed, 2)["status"] == "stale"
    assert projections_in(load(UPCAST_MODEL), upcasting=False)[0].fingerprint != p.fingerprint


def test_own_tables_by_name_work_the_same_under_run_rebuild_and_verify(
    store, read_conn, load, append
) -> None:
    from esctl.projections.verify import verify

    p = projections_in(load(SELF_READING))[0]
    for i in range(9):
        append(store, f"s-{i % 2}", "A")
    catch_up(store, read_conn, p, batch_size=4)
    expected = [("s-0", 5), ("s-1", 4)]
    assert read_conn.execute("SELECT * FROM qp_t ORDER BY k").fetchall() == expected
    # A rebuild reading the live table instead of the one it builds would count twice over.
    rebuild(store, read_conn, p, batch_size=4)
    assert read_conn.execute("SELECT * FROM qp_t ORDER BY k").fetchall() == expected
    assert status(read_conn, p, 9)["status"] == "live"
    assert verify(store, read_conn, p).ok
    if not postgres(read_conn):  # the rebuild's temporary views are gone
        assert read_conn.execute("SELECT count(*) FROM sqlite_temp_master").fetchone()[0] == 0


def test_an_event_appended_while_a_follower_starts_is_applied(
    store, read_conn, load, append, monkeypatch
) -> None:
    """The moment `project run --follow` can be preempted in, made certain: another
    writer appends just after the follower's first catch-up returns."""
    from esctl.events import NewEvent
    from esctl.projections import runner

    p = counter(load)
    append(store, "s-1", "Added", {"x": 1})
    first_catch_up = []

    def catch_up_then_another_writer_appends(*args, **kwargs):
        result = catch_up(*args, **kwargs)
        if not first_catch_up:
            first_catch_up.append(result)
            with backends.open(store.path) as other:
                other.append("s-1", [NewEvent("s-1", "Added", {"x": 2})])
        return result

    monkeypatch.setattr(runner, "catch_up", catch_up_then_another_writer_appends)
    results = []
    polls = iter(range(5))  # each poll after the append sees it, or never will
    runner.follow(
        store,
        read_conn,
        [p],
        on_result=results.append,
        on_failure=pytest.fail,
        poll_seconds=0,
        should_stop=lambda: next(polls, None) is None,
    )
    assert [r.checkpoint for r in results] == [1, 2]


# ---


def test_rebuild_swaps_in_new_tables_and_checkpoint(store, read_conn, load, append) -> None:
    for i in range(30):
        append(store, f"s-{i % 3}", "Added", {"x": i})
    catch_up(store, read_conn, counter(load))
    read_conn.execute("UPDATE counts SET total = -1")  # damage it: a rebuild repairs it
    generation = read_conn.record("counts").generation
    result = rebuild(store, read_conn, counter(load), batch_size=7)
    assert (result.checkpoint, result.applied) == (30, 30)
    assert [r[0] for r in read_conn.execute("SELECT total FROM counts ORDER BY stream")] == [135, 145, 155]
    rec = read_conn.record("counts")
    assert (rec.checkpoint, rec.generation, rec.failure) == (30, generation + 1, None)
    assert read_conn.present("counts", shadow=True) == set()


def test_readers_see_the_old_tables_until_the_swap(store, read_conn, load, append, open_models) -> None:
    for _i in range(10):
        append(store, "s-1", "Added", {"x": 1})
    catch_up(store, read_conn, counter(load))
    seen = []
    reader = open_models()

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
    rec = read_conn.record("counts")
    broken = counter(load, COUNTER_MODEL.replace("sign = 1", "sign = 1 / (event.version - 2)"))
    with pytest.raises(ProjectionFailed, match=r"rebuild failed .* position 2 .*ZeroDivisionError"):
        rebuild(store, read_conn, broken, batch_size=1)
    assert read_conn.execute("SELECT * FROM counts").fetchall() == before
    after = read_conn.record("counts")
    assert (after.checkpoint, after.fingerprint, after.failure) == (rec.checkpoint, rec.fingerprint, None)
    assert read_conn.present("counts", shadow=True) == set()


def test_reset_drops_tables_and_checkpoint(store, read_conn, load, append) -> None:
    append(store, "s-1", "Added")
    catch_up(store, read_conn, counter(load))
    assert reset(read_conn, "counts") == ["counts", "log"]
    assert read_conn.record("counts") is None
    assert not {"counts", "log"} & read_conn.present("counts")
    assert reset(read_conn, "counts") is None
    assert catch_up(store, read_conn, counter(load)).applied == 1  # starts again at 1


def test_verify_passes_a_faithful_read_model(store, read_conn, load, append) -> None:
    for i in range(12):
        append(store, f"s-{i % 3}", "Added", {"x": i})
    catch_up(store, read_conn, counter(load))
    append(store, "s-9", "Added")  # past the checkpoint: not part of the comparison
    report = verify(store, read_conn, counter(load))
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
    report = verify(store, read_conn, counter(load))
    assert not report.ok
    assert {k: v for k, v in report.counts.items() if v} == {"different": 1, "missing": 1, "extra": 2}
    found = {(d.table, d.kind, tuple(d.key.values())): d for d in report.differences}
    different = found["counts", "different", ("s-1",)]
    assert different.columns == ["total"]
    assert (different.live["total"], different.rebuilt["total"]) == (99, 1 + 4)
    assert ("counts", "missing", ("s-2",)) in found
    assert ("counts", "extra", ("s-7",)) in found
    # A keyless row: on SQLite its rowid, on PostgreSQL (no row order) the row itself.
    assert ("log", "extra", ("s-7", "Added") if postgres(read_conn) else (7,)) in found


def test_verify_flags_a_non_deterministic_projection(store, read_conn, load, append) -> None:
    p = counter(
        load,
        COUNTER_MODEL.replace('"last": event.version', '"last": __import__("random").randrange(10**12)'),
    )
    append(store, "s-1", "Added")
    catch_up(store, read_conn, p)
    report = verify(store, read_conn, p)
    assert report.counts["nondeterministic"] == 1
    assert report.counts["different"] == 1


def test_verify_reports_a_failed_projection_as_failed_not_ok(store, read_conn, load, append) -> None:
    p = counter(load, COUNTER_MODEL.replace("sign = 1", "sign = 1 // event.data['x']"))
    for x in (1, 0, 2):
        append(store, "s-1", "Added", {"x": x})
    with pytest.raises(ProjectionFailed):
        catch_up(store, read_conn, p)
    report = verify(store, read_conn, p)
    assert (report.ok, report.failed, report.status, report.total) == (False, True, "failed", 0)
    doc = report.to_dict()
    assert doc["error"] == read_conn.record("counts").failure
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
    assert verify(store, read_conn, counter(load)).to_dict() == {
        "name": "counts",
        "checkpoint": 1,
        "ok": True,
        "status": "matches",
        "rows": {"counts": 1, "log": 1},
        "counts": {},
        "differences": [],
    }
    read_conn.execute("UPDATE counts SET total = 7")
    doc = verify(store, read_conn, counter(load)).to_dict()
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


def test_verify_of_a_projection_never_built(store, read_conn, load) -> None:
    from esctl.errors import NotFound

    with pytest.raises(NotFound, match="has not been built"):
        verify(store, read_conn, counter(load))


def test_a_second_rebuild_or_a_reset_during_a_rebuild_is_refused(store, read_conn, load, append) -> None:
    from esctl.errors import ConcurrencyError

    for i in range(12):
        append(store, f"s-{i % 3}", "Added", {"x": i})
    p = counter(load)
    catch_up(store, read_conn, p)
    other = read_models_of(store)
    refusals = []

    def meanwhile(_n: int) -> None:
        if refusals:  # once, between the first batches (later calls hold the write lock)
            return
        for attempt in (lambda: rebuild(store, other, p), lambda: reset(other, "counts")):
            with pytest.raises(
                ConcurrencyError, match=r"being rebuilt by (server )?process [0-9]+"
            ) as refused:
                attempt()
            refusals.append(str(refused.value))

    result = rebuild(store, read_conn, p, batch_size=5, progress=meanwhile)
    assert refusals and result.checkpoint == 12
    assert [r[0] for r in read_conn.execute("SELECT total FROM counts ORDER BY stream")] == [18, 22, 26]
    assert read_conn.present("counts", shadow=True) == set()
    # Done: the claim is given back, so both work again.
    assert rebuild(store, other, p).checkpoint == 12
    assert reset(other, "counts") == ["counts", "log"]
    other.close()


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
    assert "counts" not in read_conn.present("counts")  # not silently recreated empty
    rebuild(store, read_conn, p)
    assert read_conn.execute("SELECT n, total FROM counts").fetchall() == [(5, 16)]
    assert status(read_conn, p, store.head_position())["status"] == "live"


# --- two runners of one projection at once --------------------------------------------


def test_two_runners_racing_apply_each_event_once(store, load, append, open_models) -> None:
    """Both start together (a barrier), one event per batch: each batch re-reads
    the checkpoint under the projection's write lock, so none is applied twice."""
    import threading

    p = counter(load)
    for i in range(40):
        append(store, f"s-{i % 2}", "Added", {"x": 1})
    start = threading.Barrier(2)
    results, errors = [], []

    def run() -> None:
        try:
            with backends.open(store.path) as own_store:
                db = open_models()
                start.wait()
                results.append(catch_up(own_store, db, p, batch_size=1))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r.applied for r in results) == 40
    db = open_models()
    assert dump(db)[0] == [("s-0", 20, 20, 20), ("s-1", 20, 20, 20)]
    assert len(dump(db)[1]) == 40 and db.record("counts").checkpoint == 40


# --- retries, backoff and the breaker for a projection's handlers -------------------

FLAKY = COUNTER_MODEL.replace(
    'Table("log", {"stream": str, "type": str}),\n',
    'Table("log", {"stream": str, "type": str}),\n    retries=RETRIES, backoff=(1.0, 8.0), break_after=BREAK,\n',
).replace(
    'sign = 1 if event.type == "Added" else -1',
    'sign = 1 if event.type == "Added" else -1\n'
    '    if event.data.get("x") == 13 and FAILS["left"] > 0:\n'
    '        FAILS["left"] -= 1\n'
    '        raise RuntimeError("flaky")',
)


def flaky(load, fails: int, retries: int, break_after: int = 5):
    """A projection whose handler fails its first `fails` attempts on x == 13 (a
    failed batch calls it twice: once more to find the exact event)."""
    source = f"FAILS = {{'left': {2 * fails}}}\nRETRIES, BREAK = {retries}, {break_after}\n" + FLAKY
    return projections_in(load(source))[0]


def test_a_failing_handler_is_retried_with_full_jitter_backoff(store, read_conn, load, append) -> None:
    from esctl.subscriptions import ManualClock

    p = flaky(load, fails=2, retries=3)
    for x in (1, 13, 2):
        append(store, "s-1", "Added", {"x": x})
    clock = ManualClock(1_000.0)
    result = catch_up(store, read_conn, p, clock=clock)
    assert (result.checkpoint, result.applied) == (3, 3)
    assert len(clock.sleeps) == 2
    assert 0 <= clock.sleeps[0] <= 1.0 and 0 <= clock.sleeps[1] <= 2.0  # base * 2**(attempt-1)
    assert dump(read_conn)[0] == [("s-1", 3, 16, 3)]
    assert status(read_conn, p, 3)["status"] == "live"


def test_a_retry_not_yet_due_is_stored_and_resumed_by_the_next_run(store, read_conn, load, append) -> None:
    from esctl.subscriptions import ManualClock

    p = flaky(load, fails=1, retries=2)
    for x in (1, 13):
        append(store, "s-1", "Added", {"x": x})
    clock = ManualClock(1_000.0)
    first = catch_up(store, read_conn, p, clock=clock, wait=False)
    # The batch rolled back whole: event 1 waits with it.
    assert first.checkpoint == 0 and first.retry_at is not None and first.retry_at >= 1_000.0
    doc = status(read_conn, p, 2)
    assert doc["status"] == "retrying" and doc["error"]["attempts"] == 1
    # Not due yet: the handler is not called again.
    again = catch_up(store, read_conn, p, clock=clock, wait=False)
    assert (again.checkpoint, again.retry_at) == (0, first.retry_at)
    clock.t = first.retry_at
    assert catch_up(store, read_conn, p, clock=clock, wait=False).checkpoint == 2
    assert status(read_conn, p, 2)["status"] == "live"


def test_retries_that_run_out_leave_it_failed_and_the_breaker_opens(store, read_conn, load, append) -> None:
    from esctl.subscriptions import ManualClock

    p = flaky(load, fails=100, retries=2, break_after=2)
    for x in (1, 13):
        append(store, "s-1", "Added", {"x": x})
    clock = ManualClock(1_000.0)
    with pytest.raises(ProjectionFailed, match="flaky"):
        catch_up(store, read_conn, p, clock=clock)
    # The breaker opened after two failures: the third attempt waited its cool-down (30 s).
    assert len(clock.sleeps) == 2 and clock.sleeps[1] == pytest.approx(30.0)
    doc = status(read_conn, p, 2)
    assert doc["status"] == "failed" and doc["checkpoint"] == 0
    assert doc["error"]["attempts"] == 3 and doc["error"]["retrying"] is False
    assert doc["error"]["schedule"]["breaker"] == "open"


# --- one follower of a projection at a time ------------------------------------------


def test_a_second_follower_waits_for_the_first_and_takes_over(store, load, append, open_models) -> None:
    import threading

    from esctl.projections.runner import follow

    p = counter(load)
    append(store, "s-1", "Added", {"x": 1})
    first_ran, waiting, second_ran = threading.Event(), threading.Event(), threading.Event()
    stop_first, stop_second = threading.Event(), threading.Event()
    notes, errors, applied = [], [], []

    def run(ran, stop, on_wait) -> None:
        try:
            with backends.open(store.path) as own_store:
                db = open_models()

                def result(r) -> None:
                    applied.append(r.applied)
                    ran.set()

                follow(
                    own_store,
                    db,
                    [p],
                    on_result=result,
                    on_failure=errors.append,
                    on_wait=on_wait,
                    poll_seconds=0.05,
                    should_stop=stop.is_set,
                )
                db.close()
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
            ran.set()
            waiting.set()

    first = threading.Thread(target=run, args=(first_ran, stop_first, notes.append))
    first.start()
    assert first_ran.wait(60)
    second = threading.Thread(
        target=run, args=(second_ran, stop_second, lambda note: (notes.append(note), waiting.set()))
    )
    second.start()
    assert waiting.wait(60)
    assert errors == [] and "is being followed by" in notes[0]
    stop_first.set()
    first.join(60)
    append(store, "s-1", "Added", {"x": 2})
    assert second_ran.wait(60)  # took the lease and applied what came
    stop_second.set()
    second.join(60)
    assert errors == [] and sum(applied) == 2
    assert dump(open_models())[0] == [("s-1", 2, 3, 2)]
