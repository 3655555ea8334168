"""The definition API: validation, fingerprints, and handlers tested with no store."""

from __future__ import annotations

from decimal import Decimal

import pytest

from esctl.errors import InvalidInput
from esctl.events import RecordedEvent
from esctl.projections import Projection, ProjectionFailed, Table, projections_in
from esctl.projections.definition import pick


def event(stream: str, version: int, position: int, type_: str, data: dict | None = None) -> RecordedEvent:
    return RecordedEvent(
        stream, version, position, type_, data or {}, {}, f"id-{position}", "2026-01-01T00:00:00.000000Z"
    )


@pytest.mark.parametrize(
    "name",
    [
        "events",
        "EVENTS",
        "esctl_projections",
        "esctl_meta",
        "esctl_shadow_x",
        "sqlite_master",
        "1abc",
        "a-b",
        'x"y',
        "a b",
        "",
    ],
)
def test_reserved_and_malformed_table_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        Table(name, {"a": str})


def test_table_checks_its_columns_and_keys() -> None:
    with pytest.raises(ValueError, match="not one of its columns"):
        Table("t", {"a": str}, pk="b")
    with pytest.raises(ValueError, match="not one of its columns"):
        Table("t", {"a": str}, indexes=["c"])
    with pytest.raises(ValueError, match="plain identifier"):
        Table("t", {"a;drop": str})
    assert Table("t", {"a": str, "b": int}, pk=("a", "b")).key == ("a", "b")
    assert Table("t", {"a": str}).key == ()
    # Types every backend stores alike, and nothing else (NUMERIC would read back as
    # a float on SQLite and a Decimal on PostgreSQL).
    assert Table("t", {"a": "text", "b": "REAL", "c": bool}).columns["a"] == "text"
    for kind in ("NUMERIC", object, "varchar(3)"):
        with pytest.raises(ValueError, match=r"has type .*; give one of str, int"):
            Table("t", {"a": kind})


def test_projection_refuses_two_handlers_for_one_type_and_a_table_twice() -> None:
    p = Projection("p", Table("t", {"a": str}))
    p.on("A")(lambda e, db: None)
    with pytest.raises(ValueError, match="already has a handler"):
        p.on("A")(lambda e, db: None)
    with pytest.raises(ValueError, match="twice"):
        Projection("q", Table("t", {"a": str}), Table("T", {"a": str}))
    with pytest.raises(ValueError, match="at least one Table"):
        Projection("q")


def test_two_projections_cannot_own_one_table(load) -> None:
    module = load(
        """
        from esctl.projections import Projection, Table
        a = Projection("a", Table("shared", {"x": str}))
        b = Projection("b", Table("shared", {"x": str}))
        """
    )
    with pytest.raises(InvalidInput, match="owned by projection 'a'"):
        projections_in(module)


def test_pick_names_unknown_projections() -> None:
    p = Projection("p", Table("t", {"a": str}))
    assert pick([p], ["p", "p"]) == [p]
    with pytest.raises(Exception, match="no projection named 'zz'"):
        pick([p], ["zz"])


# --- fingerprints ---------------------------------------------------------------------

SOURCE = """
from esctl.projections import Projection, Table

def helper(x):
    return x + {bump}

p = Projection("p", Table("t", {{"k": str, "v": int}}, pk="k"))

@p.on("A")
def on_a(event, db):
    db["t"].upsert({{"k": event.stream, "v": helper({value})}})
"""


def fp(load, **kw: int) -> str:
    values = {"bump": 1, "value": 1} | kw
    return projections_in(load(SOURCE.format(**values)))[0].fingerprint


def test_fingerprint_is_stable_and_follows_handlers_and_their_helpers(load) -> None:
    base = fp(load)
    assert fp(load) == base  # the same code in another file
    assert fp(load, value=2) != base  # the handler changed
    assert fp(load, bump=2) != base  # a helper it calls changed


def test_fingerprint_follows_tables_version_and_reader_code() -> None:
    def make(columns: dict, version: int = 1) -> Projection:
        p = Projection("p", Table("t", columns), version=version)
        p.on("A")(_noop)
        return p

    base = make({"a": str}).fingerprint
    assert make({"a": str}).fingerprint == base
    assert make({"a": int}).fingerprint != base
    assert make({"a": str}, version=2).fingerprint != base
    assert make({"a": str}).using(lambda e: e, [_upcaster]).fingerprint != base


def _noop(event, db) -> None:
    pass


def _upcaster(data):
    return data


# --- handlers with no store -------------------------------------------------------------


def test_bank_projection_given_when_then(load) -> None:
    from pathlib import Path

    import esctl.model

    bank = esctl.model.load_model(str(Path(__file__).resolve().parents[2] / "sample_streams/bank/model.py"))
    rows = bank.balances.run_in_memory(
        [
            event("account-a", 1, 1, "Opened", {"owner": "A"}),
            event("account-a", 2, 2, "Deposited", {"amount": 100}),
            event("account-b", 1, 3, "Opened", {"owner": "B"}),
            event("account-a", 3, 4, "Withdrawn", {"amount": 40}),
        ]
    )
    assert rows == {
        "balances": [
            {"account": "a", "balance": 60, "version": 3},
            {"account": "b", "balance": 0, "version": 1},
        ]
    }
    # Out of order (a deposit before the opening) is an error naming the event.
    with pytest.raises(ProjectionFailed, match="account-a', version 1, type Deposited"):
        bank.balances.run_in_memory([event("account-a", 1, 1, "Deposited", {"amount": 5})])


def test_values_are_stored_as_sqlite_values() -> None:
    p = Projection("p", Table("t", {"k": str, "d": "TEXT", "j": str, "b": int}, pk="k"))

    @p.on("A")
    def on_a(event, db):
        db["t"].insert({"k": event.stream, "d": Decimal("79.97"), "j": {"x": [1, 2]}, "b": True})

    assert p.run_in_memory([event("s-1", 1, 1, "A")]) == {
        "t": [{"k": "s-1", "d": "79.97", "j": '{"x":[1,2]}', "b": 1}]
    }
