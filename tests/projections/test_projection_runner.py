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
from esctl.projections.rebuild import rebuild
from esctl.projections.runner import catch_up
from esctl.store import EventStore
from esctl.store.sqlite.readmodels import SQLiteReadModels
from tests.projections.conftest import COUNTER_MODEL


def counter(load):
    return projections_in(load(COUNTER_MODEL))[0]


def dump(conn: sqlite3.Connection) -> tuple[list, list]:
    return (
        conn.execute("SELECT * FROM counts ORDER BY stream").fetchall(),
        conn.execute("SELECT * FROM log ORDER BY rowid").fetchall(),
    )


def test_small_batches_give_the_same_tables(store, load, append, tmp_path) -> None:
    p = counter(load)
    for i in range(25):
        append(store, f"s-{i % 4}", "Added" if i % 3 else "Skip", {"x": i})
    one = SQLiteReadModels.open(str(tmp_path / "a.db"), create=True)
    many = SQLiteReadModels.open(str(tmp_path / "b.db"), create=True)
    catch_up(store, one, p)
    result = catch_up(store, many, p, batch_size=2)
    assert result.checkpoint == 25
    assert dump(one) == dump(many)


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
    conn = SQLiteReadModels.open(str(tmp_path / "read.db"), create=True)
    catch_up(store, conn, counter(load))
    assert conn.record("counts").checkpoint == 1
    names = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "counts" not in names and "esctl_projections" not in names


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
        incremental = SQLiteReadModels.open(str(tmp / "inc.db"), create=True)
        whole = SQLiteReadModels.open(str(tmp / "whole.db"), create=True)
        appended = 0
        for cut in sorted({min(c, len(events)) for c in cuts} | {len(events)}):
            for stream, event_type, x in events[appended:cut]:
                store.append(stream, [__import__("esctl").NewEvent(stream, event_type, {"x": x})])
            appended = cut
            catch_up(store, incremental, p, batch_size=batch)
        rebuild(store, whole, p, batch_size=batch)
        assert dump(incremental) == dump(whole)
        assert incremental.record("counts").checkpoint == whole.record("counts").checkpoint == len(events)
        incremental.close()
        whole.close()


"""


# --- a handler's own SQL and sqlite-utils work the same in every mode -------------------

"""


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
