"""PostgreSQL read models beyond the contract: a schema per projection, the
search-path guard, advisory-lock rebuild claims that end with their session, and
objects a user made that esctl will not drop."""

from __future__ import annotations

import time

import pytest

from esctl.errors import ConcurrencyError, InvalidInput
from esctl.projections import ProjectionFailed, projections_in
from esctl.projections.rebuild import rebuild
from esctl.projections.runner import catch_up
from esctl.store.postgres import PostgresStore
from tests import postgres
from tests.projections.conftest import COUNTER_MODEL


@pytest.fixture
def store(postgres_url):
    with postgres.fresh_schema(postgres_url) as url, PostgresStore.open(url, create=True) as opened:
        yield opened


def counter(load):
    return projections_in(load(COUNTER_MODEL))[0]


@pytest.mark.parametrize(
    "statement",
    [
        "COMMIT",
        "SET search_path = public",
        "CREATE TABLE other (v int)",
        "SELECT * FROM events",  # not on the handler's search path
        "DELETE FROM esctl_projections",
    ],
)
def test_a_handler_finds_only_its_own_tables_and_cannot_end_the_batch(
    store, open_models, load, append, statement
) -> None:
    p = projections_in(
        load(
            f"""
            from esctl.projections import Projection, Table
            p = Projection("p", Table("mine", {{"k": str}}))

            @p.on("A")
            def a(event, db):
                db["mine"].insert({{"k": "x"}})
                list(db.query({statement!r}))
            """
        )
    )[0]
    append(store, "s-1", "A")
    db = open_models()
    with pytest.raises(ProjectionFailed, match=r"may only touch its own tables|does not exist"):
        catch_up(store, db, p)
    assert db.execute("SELECT count(*) FROM mine").fetchone()[0] == 0
    assert db.record("p").checkpoint == 0
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_a_schema_esctl_did_not_make_is_not_taken_over(store, open_models, load, append) -> None:
    db = open_models()
    db.conn.execute(f'CREATE SCHEMA "{db.namespace}_counts"')
    with pytest.raises(InvalidInput, match=r"exists and is not one of esctl.s read models"):
        catch_up(store, db, counter(load))


def test_a_projection_name_too_long_for_a_schema_is_refused(store, open_models, load) -> None:
    long = COUNTER_MODEL.replace('Projection(\n    "counts"', 'Projection(\n    "' + "c" * 60 + '"')
    with pytest.raises(InvalidInput, match="longer than PostgreSQL's 63 bytes"):
        catch_up(store, open_models(), projections_in(load(long))[0])


def test_a_rebuild_claim_ends_with_the_session_that_held_it(store, open_models, load, append) -> None:
    append(store, "s-1", "Added", {"x": 1})
    holder, other = open_models(), open_models()
    catch_up(store, holder, counter(load))
    holder.claim_rebuild("counts")
    assert "server process" in (other.rebuilder("counts") or "")
    with pytest.raises(ConcurrencyError, match="being rebuilt by server process"):
        rebuild(store, other, counter(load))
    pid = holder.conn.info.backend_pid
    holder.conn.close()  # as when the rebuilding process is killed: the server ends its locks
    gone_by = time.monotonic() + 60  # the barrier: its server process has exited (that is asynchronous)
    while other.conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
        assert time.monotonic() < gone_by, "the server kept the closed session"
        time.sleep(0.01)
    assert other.rebuilder("counts") is None
    assert rebuild(store, other, counter(load)).checkpoint == 1


def test_a_view_a_user_built_on_a_read_model_stops_the_swap_not_the_view(
    store, open_models, load, append
) -> None:
    append(store, "s-1", "Added", {"x": 1})
    db = open_models()
    catch_up(store, db, counter(load))
    schema = f"{db.namespace}_counts"
    db.conn.execute(f'CREATE VIEW "{schema}".totals AS SELECT total FROM "{schema}".counts')
    with pytest.raises(InvalidInput, match=r"cannot drop read model .*counts: view .*totals depends on"):
        rebuild(store, db, counter(load))
    assert db.execute(f'SELECT total FROM "{schema}".totals').fetchall() == [(1,)]
    assert db.present("counts", shadow=True) == set() and db.rebuilder("counts") is None
    db.conn.execute(f'DROP VIEW "{schema}".totals')
    assert rebuild(store, db, counter(load)).checkpoint == 1


def test_a_rebuild_that_cannot_start_gives_its_claim_back(store, open_models, load, append) -> None:
    bad = projections_in(
        load(
            """
            from esctl.projections import Projection, Table
            p = Projection("p", Table("t", {"n": int}, defaults={"n": "not a number"}))
            """
        )
    )[0]
    db, other = open_models(), open_models()
    with pytest.raises(
        InvalidInput, match=r"cannot create read model .*invalid input syntax for type bigint"
    ):
        rebuild(store, db, bad)
    assert other.rebuilder("p") is None  # the session lock went with the failed start


def test_verify_takes_every_name_run_takes(store, open_models, load, append) -> None:
    from esctl.projections.verify import verify

    name = "c" * (63 - len("__rebuild") - len(open_models().namespace) - 1)  # the longest run accepts
    long = COUNTER_MODEL.replace('Projection(\n    "counts"', f'Projection(\n    "{name}"')
    p = projections_in(load(long))[0]
    append(store, "s-1", "Added", {"x": 1})
    db = open_models()
    catch_up(store, db, p)
    assert verify(store, db, p).ok
