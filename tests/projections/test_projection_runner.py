"""Catching up: checkpoints move with the table writes, failures roll back whole and
resume at the same event, code changes make a projection stale, a projection
touches only its own tables."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esctl.errors import InvalidInput
from esctl.projections import ProjectionFailed, projections_in
from esctl.projections.catalog import open_read_models, record
from esctl.projections.rebuild import rebuild
from esctl.projections.runner import catch_up
from esctl.projections.status import status
from esctl.store import EventStore
from tests.projections.conftest import COUNTER_MODEL


def counter(load):
    return projections_in(load(COUNTER_MODEL))[0]


def dump(conn: sqlite3.Connection) -> tuple[list, list]:
    return (
        conn.execute("SELECT * FROM counts ORDER BY stream").fetchall(),
        conn.execute("SELECT * FROM log ORDER BY rowid").fetchall(),
    )


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


def test_small_batches_give_the_same_tables(store, load, append, tmp_path) -> None:
    p = counter(load)
    for i in range(25):
        append(store, f"s-{i % 4}", "Added" if i % 3 else "Skip", {"x": i})
    one = open_read_models(str(tmp_path / "a.db"), None, create=True)
    many = open_read_models(str(tmp_path / "b.db"), None, create=True)
    catch_up(store, one, p)
    result = catch_up(store, many, p, batch_size=2)
    assert result.checkpoint == 25
    assert dump(one) == dump(many)


FAILING = COUNTER_MODEL.replace(
    'sign = 1 if event.type == "Added" else -1',
    'sign = 1 if event.type == "Added" else -1\n    if event.data.get("x") == 13:\n        raise RuntimeError("unlucky")',
)


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
    assert "IntegrityError" in failed.value.failure.message
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


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO events (stream) VALUES ('x')",
        "DELETE FROM esctl_projections",
        "UPDATE other SET v = 1",
        "SELECT * FROM events",
        "DROP TABLE other",
        "COMMIT",
    ],
)
def test_a_projection_touches_only_its_own_tables(store, read_conn, load, append, statement) -> None:
    read_conn.execute("CREATE TABLE other (v)")
    p = projections_in(
        load(
            f"""
            from esctl.projections import Projection, Table
            p = Projection("p", Table("mine", {{"k": str}}))

            @p.on("A")
            def a(event, db):
                db["mine"].insert({{"k": "x"}})
                db.conn.execute({statement!r})
            """
        )
    )[0]
    append(store, "s-1", "A")
    with pytest.raises(ProjectionFailed, match="may only touch its own tables"):
        catch_up(store, read_conn, p)
    assert read_conn.execute("SELECT count(*) FROM mine").fetchone()[0] == 0
    assert read_conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_tables_of_others_are_never_taken_over(store, read_conn, load, append) -> None:
    read_conn.execute("CREATE TABLE log (mine)")
    with pytest.raises(InvalidInput, match="exists and is not one of its read models"):
        catch_up(store, read_conn, counter(load))
    read_conn.execute("DROP TABLE log")
    catch_up(store, read_conn, counter(load))
    thief = projections_in(
        load(
            """
            from esctl.projections import Projection, Table
            thief = Projection("thief", Table("counts", {"stream": str}))
            """
        )
    )[0]
    with pytest.raises(InvalidInput, match="projection 'counts' owns it"):
        catch_up(store, read_conn, thief)


def test_a_separate_read_db_holds_tables_and_checkpoints(store, load, append, tmp_path) -> None:
    append(store, "s-1", "Added", {"x": 1})
    conn = open_read_models(store.path, str(tmp_path / "read.db"), create=True)
    catch_up(store, conn, counter(load))
    assert record(conn, "counts").checkpoint == 1
    names = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "counts" not in names and "esctl_projections" not in names


def test_a_checkpoint_moved_by_another_runner_is_respected(store, load, append, tmp_path) -> None:
    p = counter(load)
    path = str(tmp_path / "r.db")
    first = open_read_models(store.path, path, create=True)
    second = open_read_models(store.path, path, create=True)
    for i in range(5):
        append(store, "s-1", "Added", {"x": i})
    catch_up(store, first, p, batch_size=2)
    assert catch_up(store, second, p).applied == 0
    assert dump(second)[0] == [("s-1", 5, 10, 5)]


# --- the property: rebuild equals catch-up in pieces ------------------------------------

events = st.lists(
    st.tuples(
        st.sampled_from(["a-1", "a-2", "b-1"]),
        st.sampled_from(["Added", "Removed", "Noise"]),
        st.integers(-5, 5),
    ),
    max_size=30,
)


@pytest.mark.slow
@settings(
    max_examples=40,
    suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.function_scoped_fixture],
)
@given(events=events, cuts=st.lists(st.integers(0, 30), max_size=4), batch=st.integers(1, 7))
def test_rebuild_equals_catch_up_in_pieces(tmp_path_factory, load, events, cuts, batch) -> None:
    p = counter(load)
    tmp = tmp_path_factory.mktemp("prop")
    with EventStore.open(tmp / "events.db", create=True) as store:
        incremental = open_read_models(store.path, str(tmp / "inc.db"), create=True)
        whole = open_read_models(store.path, str(tmp / "whole.db"), create=True)
        appended = 0
        for cut in sorted({min(c, len(events)) for c in cuts} | {len(events)}):
            for stream, event_type, x in events[appended:cut]:
                store.append(stream, [__import__("esctl").NewEvent(stream, event_type, {"x": x})])
            appended = cut
            catch_up(store, incremental, p, batch_size=batch)
        rebuild(store, whole, p, batch_size=batch)
        assert dump(incremental) == dump(whole)
        assert record(incremental, "counts").checkpoint == record(whole, "counts").checkpoint == len(events)
        incremental.close()
        whole.close()


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


# --- a handler's own SQL and sqlite-utils work the same in every mode -------------------

SELF_READING = """
from esctl.projections import Projection, Table

qp = Projection("qp", Table("qp_t", {"k": str, "n": int}, pk="k"))

@qp.on("A")
def a(event, db):
    found = list(db.query("SELECT n FROM qp_t WHERE k = ?", [event.stream]))
    db["qp_t"].upsert({"k": event.stream, "n": (found[0]["n"] if found else 0) + 1})
"""


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
    assert verify(store, store.path, p).ok
    assert read_conn.execute("SELECT count(*) FROM sqlite_temp_master").fetchone()[0] == 0


SQLITE_UTILS = """
from esctl.projections import Projection, Table

su = Projection("su", Table("su_t", {"k": str, "n": int, "seen": int}, pk="k"))

@su.on("A")
def a(event, db):
    seen = db.sqlite.execute("SELECT count(*) FROM su_t").fetchone()[0]
    db["su_t"].table.upsert({"k": event.stream, "n": event.version, "seen": seen}, pk="k")
"""


def test_the_sqlite_utils_escape_hatch_works_under_the_guard(store, read_conn, load, append) -> None:
    p = projections_in(load(SQLITE_UTILS))[0]
    for i in range(5):
        append(store, f"s-{i % 2}", "A")
    expected = [("s-0", 3, 2), ("s-1", 2, 2)]
    catch_up(store, read_conn, p, batch_size=2)
    assert read_conn.execute("SELECT * FROM su_t ORDER BY k").fetchall() == expected
    rebuild(store, read_conn, p, batch_size=2)
    assert read_conn.execute("SELECT * FROM su_t ORDER BY k").fetchall() == expected
    assert [tuple(r.values()) for r in p.run_in_memory(store.read_all())["su_t"]] == expected


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ('db["mine"].table.insert({"nope": 1})', "OperationalError: table mine has no column named nope"),
        ('db.sqlite["other"].insert({"v": 1})', "refused INSERT into other: projection 'p' may only touch"),
    ],
)
def test_sqlite_utils_failures_name_the_users_line(store, read_conn, load, append, body, error) -> None:
    read_conn.execute("CREATE TABLE other (v)")
    module = load(
        f"""
        from esctl.projections import Projection, Table
        p = Projection("p", Table("mine", {{"k": str}}))

        @p.on("A")
        def a(event, db):
            {body}
        """
    )
    append(store, "s-1", "A")
    with pytest.raises(ProjectionFailed) as failed:
        catch_up(store, read_conn, projections_in(module)[0])
    message = failed.value.failure.message
    assert message.startswith(f"{module.__file__}, line 7: ")  # the handler's line, not sqlite-utils'
    assert error in message
    assert read_conn.execute("SELECT count(*) FROM other").fetchone()[0] == 0


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
            with EventStore.open(store.path) as other:
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
