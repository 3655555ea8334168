"""Replay against a real store: streaming fold, snapshots, upcasting, strictness."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esctl import NewEvent
from esctl.aggregates import (
    Aggregate,
    ModelError,
    Replayer,
    UnknownEventType,
    Upcasters,
    evolve,
    statecodec,
    upcaster,
)
from esctl.errors import NotFound
from esctl.store import EventStore
from esctl.store.sqlite.snapshots import TABLE


@dataclass
class Account:
    balance: Decimal = Decimal("0")
    history: list[str] = field(default_factory=list)
    tags: dict[str, int] = field(default_factory=dict)


class Ledger(Aggregate):
    category = "ledger"
    initial = Account

    @evolve("Deposited")
    def deposited(state, data):
        state.balance += Decimal(data["amount"])
        state.history.append(f"+{data['amount']}")
        return state

    @evolve("Withdrawn")
    def withdrawn(state, data):
        state.balance -= Decimal(data["amount"])
        state.history.append(f"-{data['amount']}")
        return state

    @evolve("Tagged")
    def tagged(state, data, event):
        state.tags[data["tag"]] = event.version
        return state


def append(store: EventStore, stream: str, *events: tuple[str, dict], metadata: dict | None = None) -> None:
    store.append(stream, [NewEvent(stream, t, d, dict(metadata or {})) for t, d in events])


def test_replay_folds_the_stream_and_reports_version_and_position(rw_store):
    append(rw_store, "other-1", ("Deposited", {"amount": "1"}))
    append(rw_store, "ledger-1", ("Deposited", {"amount": "10.10"}), ("Withdrawn", {"amount": "0.20"}))
    result = Replayer(rw_store, Ledger).replay("ledger-1")
    assert (result.version, result.position) == (2, 3)
    assert result.state.balance == Decimal("9.90")
    assert result.to_dict()["state"]["history"] == ["+10.10", "-0.20"]


def test_replay_to_a_version_and_beyond_the_head(rw_store):
    append(rw_store, "ledger-1", *[("Deposited", {"amount": "1"})] * 3)
    replayer = Replayer(rw_store, Ledger)
    assert replayer.replay("ledger-1", 2).state.balance == Decimal("2")
    zero = replayer.replay("ledger-1", 0)
    assert (zero.version, zero.position, zero.state) == (0, None, Account())
    with pytest.raises(NotFound, match="has no version 4 \\(its version is 3\\)"):
        replayer.replay("ledger-1", 4)
    with pytest.raises(NotFound, match="stream 'ledger-9' not found"):
        replayer.replay("ledger-9")


def test_handlers_with_three_parameters_get_the_recorded_event(rw_store):
    append(rw_store, "ledger-1", ("Deposited", {"amount": "1"}), ("Tagged", {"tag": "vip"}))
    assert Replayer(rw_store, Ledger).replay("ledger-1").state.tags == {"vip": 2}


def test_unknown_types_are_skipped_and_counted_or_refused_with_strict(rw_store):
    append(rw_store, "ledger-1", ("Deposited", {"amount": "5"}), ("Audited", {}), ("Audited", {}))
    replayer = Replayer(rw_store, Ledger)
    assert replayer.replay("ledger-1").state.balance == Decimal("5")
    skipped = replayer.skipped["Audited"]
    assert (skipped.count, skipped.first_version) == (2, 2)
    with pytest.raises(
        UnknownEventType, match=r"no handler for event type 'Audited' \(stream 'ledger-1', version 2\)"
    ):
        Replayer(rw_store, Ledger, strict=True).replay("ledger-1")


def test_a_failing_handler_names_itself_the_event_and_the_line(rw_store):
    append(rw_store, "ledger-1", ("Deposited", {"amount": "5"}), ("Deposited", {"amount": "five"}))
    with pytest.raises(ModelError) as caught:
        Replayer(rw_store, Ledger).replay("ledger-1")
    message = str(caught.value)
    assert "Ledger.deposited raised InvalidOperation" in message
    assert "at ledger-1 v2 (Deposited)" in message
    assert "test_replay.py, line" in message


def test_default_fold_merges_data(rw_store):
    append(rw_store, "thing-1", ("A", {"a": 1, "o": {"x": 1}}), ("B", {"o": {"y": 2}, "a": None}))
    result = Replayer(rw_store).replay("thing-1")
    assert result.state == {"o": {"x": 1, "y": 2}}
    assert result.aggregate == "the default fold"


# --- snapshots -------------------------------------------------------------------------


def test_replay_starts_from_the_newest_snapshot_at_or_below_the_target(rw_store):
    append(rw_store, "ledger-1", *[("Deposited", {"amount": "1"})] * 10)
    replayer = Replayer(rw_store, Ledger)
    replayer.snapshot("ledger-1", 4)
    replayer.snapshot("ledger-1", 8)
    assert replayer.replay("ledger-1").from_snapshot == 8
    assert replayer.replay("ledger-1", 6).from_snapshot == 4
    assert replayer.replay("ledger-1", 3).from_snapshot is None
    from_start = Replayer(rw_store, Ledger, snapshots=False).replay("ledger-1")
    assert from_start.from_snapshot is None
    assert from_start.state == replayer.replay("ledger-1").state


def test_snapshots_live_in_their_own_table_and_reading_creates_nothing(rw_store):
    append(rw_store, "ledger-1", ("Deposited", {"amount": "1"}))
    Replayer(rw_store, Ledger).replay("ledger-1")
    tables = {r[0] for r in rw_store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert TABLE not in tables
    Replayer(rw_store, Ledger).snapshot("ledger-1")
    assert rw_store.conn.execute(f"SELECT stream, version, aggregate FROM {TABLE}").fetchall() == [
        ("ledger-1", 1, "Ledger")
    ]
    assert rw_store.conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_a_snapshot_by_other_code_is_ignored(rw_store):
    append(rw_store, "ledger-1", *[("Deposited", {"amount": "1"})] * 3)
    Replayer(rw_store, Ledger).snapshot("ledger-1")

    class Ledger2(Ledger):  # same category, different code: doubles deposits
        @evolve("Deposited")
        def deposited_twice(state, data):
            state.balance += 2 * Decimal(data["amount"])
            return state

    result = Replayer(rw_store, Ledger2).replay("ledger-1")
    assert result.from_snapshot is None
    assert result.state.balance == Decimal("6")


def test_an_unreadable_snapshot_falls_back_to_a_full_replay_with_a_note(rw_store):
    append(rw_store, "ledger-1", *[("Deposited", {"amount": "1"})] * 3)
    replayer = Replayer(rw_store, Ledger)
    replayer.snapshot("ledger-1")
    rw_store.conn.execute(f'UPDATE {TABLE} SET state = \'{{"$":"bogus","v":1}}\'')
    fresh = Replayer(rw_store, Ledger)
    assert fresh.replay("ledger-1").state.balance == Decimal("3")
    assert "could not be read" in fresh.notes[0]


def test_automatic_snapshots_every_n_events(rw_store):
    class Every(Ledger):
        snapshot_every = 5

    append(rw_store, "ledger-1", *[("Deposited", {"amount": "1"})] * 4)
    replayer = Replayer(rw_store, Every)
    replayer.replay("ledger-1")
    assert replayer.snapshots.list("ledger-1") == []
    append(rw_store, "ledger-1", *[("Deposited", {"amount": "1"})] * 3)
    replayer.replay("ledger-1")
    assert [s.version for s in replayer.snapshots.list("ledger-1")] == [7]
    append(rw_store, "ledger-1", ("Deposited", {"amount": "1"}))
    assert replayer.replay("ledger-1").from_snapshot == 7
    assert [s.version for s in replayer.snapshots.list("ledger-1")] == [7]  # 1 event since: none


def test_automatic_snapshots_leave_a_read_only_store_alone(db):
    with EventStore.open(db, create=True) as store:
        append(store, "ledger-1", *[("Deposited", {"amount": "1"})] * 3)

    class Every(Ledger):
        snapshot_every = 1

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
    replayer = Replayer(EventStore(str(db), conn), Every)
    assert replayer.replay("ledger-1").state.balance == Decimal("3")
    assert "automatic snapshot skipped" in replayer.notes[0]
    conn.close()


amounts = st.decimals(min_value=-1000, max_value=1000, places=2).map(str)
ledger_events = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["Deposited", "Withdrawn"]), st.fixed_dictionaries({"amount": amounts})),
        st.tuples(st.just("Tagged"), st.fixed_dictionaries({"tag": st.sampled_from("abc")})),
        st.tuples(st.just("Unknown"), st.just({})),
    ),
    min_size=1,
    max_size=12,
)
small_ints = st.integers(-(2**63), 2**63 - 1)  # what JSON in the store can hold
merge_events = st.lists(
    st.tuples(
        st.just("Patched"),
        st.dictionaries(
            st.sampled_from("abc"),
            st.none() | small_ints | st.dictionaries(st.sampled_from("xy"), st.none() | small_ints),
        ),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40)
@given(st.one_of(ledger_events.map(lambda e: ("ledger-1", e)), merge_events.map(lambda e: ("thing-1", e))))
def test_replay_from_a_snapshot_at_k_equals_replay_from_the_start_for_every_k(case):
    stream, events = case
    aggregate = Ledger if stream.startswith("ledger") else None
    with (
        tempfile.TemporaryDirectory() as tmp,
        EventStore.open(os.path.join(tmp, "e.db"), create=True) as store,
    ):
        append(store, stream, *events)
        expected = Replayer(store, aggregate, snapshots=False).replay(stream)
        for k in range(1, len(events) + 1):
            Replayer(store, aggregate, snapshots=False).snapshot(stream, k)
            continued = Replayer(store, aggregate).replay(stream)
            assert continued.from_snapshot == k
            assert continued.state == expected.state
            assert statecodec.dumps(continued.state) == statecodec.dumps(expected.state)
            assert continued.to_dict() == expected.to_dict()


# --- upcasting ---------------------------------------------------------------------------


@upcaster("Deposited", from_schema=1)
def cents_to_amount(data):
    return {"amount": str(Decimal(data["cents"]) / 100)}


@upcaster("Deposited", from_schema=2)
def amount_note(data, metadata):
    return {**data, "note": f"from schema {metadata.get('schema', 1)}"}


def test_upcasters_chain_from_the_stored_schema_and_never_rewrite_the_store(rw_store):
    upcasters = Upcasters([cents_to_amount, amount_note])
    assert upcasters.current_schema("Deposited") == 3
    append(rw_store, "ledger-1", ("Deposited", {"cents": 250}))
    append(rw_store, "ledger-1", ("Deposited", {"amount": "1.00"}), metadata={"schema": 2})
    append(rw_store, "ledger-1", ("Deposited", {"amount": "0.05"}), metadata={"schema": 3})
    result = Replayer(rw_store, Ledger, upcasters=upcasters).replay("ledger-1")
    assert result.state.balance == Decimal("3.55")
    stored = [e.data for e in rw_store.read_stream("ledger-1")]
    assert stored == [{"cents": 250}, {"amount": "1.00"}, {"amount": "0.05"}]
    upcast = [upcasters.event(e) for e in rw_store.read_stream("ledger-1")]
    assert [e.metadata.get("schema") for e in upcast] == [3, 3, 3]
    assert upcast[0].data == {"amount": "2.5", "note": "from schema 2"}


def test_upcasters_change_the_fingerprint(rw_store):
    plain = Replayer(rw_store, Ledger).fingerprint
    with_upcaster = Replayer(rw_store, Ledger, upcasters=Upcasters([cents_to_amount])).fingerprint
    assert plain != with_upcaster


def test_a_failing_upcaster_names_the_event(rw_store):
    append(rw_store, "ledger-1", ("Deposited", {"amount": "1"}))
    with pytest.raises(
        ModelError, match=r"ledger-1 v1: upcaster cents_to_amount \(Deposited schema 1\) raised KeyError"
    ):
        Replayer(rw_store, Ledger, upcasters=Upcasters([cents_to_amount])).replay("ledger-1")


def test_two_upcasters_for_one_schema_are_refused():
    with pytest.raises(ModelError, match="two upcasters for 'Deposited' from schema 1"):
        Upcasters([cents_to_amount, upcaster("Deposited")(lambda d: d)])


def test_steps_report_each_event_and_its_changes(rw_store):
    append(
        rw_store, "ledger-1", ("Deposited", {"amount": "2"}), ("Audited", {}), ("Withdrawn", {"amount": "1"})
    )
    steps = list(Replayer(rw_store, Ledger).steps("ledger-1"))
    assert [s.to_dict()["changes"] for s in steps] == [
        [
            {
                "path": "balance",
                "pointer": "/balance",
                "op": "change",
                "old": Decimal("0"),
                "new": Decimal("2"),
            },
            {"path": "history.0", "pointer": "/history/0", "op": "add", "new": "+2"},
        ],
        [],
        [
            {
                "path": "balance",
                "pointer": "/balance",
                "op": "change",
                "old": Decimal("2"),
                "new": Decimal("1"),
            },
            {"path": "history.1", "pointer": "/history/1", "op": "add", "new": "-1"},
        ],
    ]
    assert [s.skipped for s in steps] == [False, True, False]


def test_changes_between_versions_either_way(rw_store):
    append(rw_store, "ledger-1", ("Deposited", {"amount": "2"}), ("Withdrawn", {"amount": "1"}))
    replayer = Replayer(rw_store, Ledger)
    forward = replayer.changes_between("ledger-1", 0, 2)
    backward = replayer.changes_between("ledger-1", 2, 0)
    assert {"path": "history.1", "pointer": "/history/1", "op": "add", "new": "-1"} in forward
    assert {"path": "history.1", "pointer": "/history/1", "op": "remove", "old": "-1"} in backward
    assert replayer.changes_between("ledger-1", 1, 1) == []


def test_the_narrow_and_the_whole_row_paths_agree(rw_store):
    class Narrow(Aggregate):
        category = "ledger"
        initial = Account
        deposited = Ledger.deposited
        withdrawn = Ledger.withdrawn

    class Whole(Narrow):  # one handler that wants the envelope sends every event the long way
        @evolve("Never")
        def never(state, data, event):
            return state

    append(
        rw_store, "ledger-1", ("Deposited", {"amount": "3"}), ("Audited", {}), ("Withdrawn", {"amount": "1"})
    )
    append(rw_store, "other-1", ("Deposited", {"amount": "1"}))
    narrow, whole = Replayer(rw_store, Narrow), Replayer(rw_store, Whole)
    assert narrow.folder.narrow
    assert not whole.folder.narrow
    for target in (None, 1, 2):
        a, b = narrow.replay("ledger-1", target), whole.replay("ledger-1", target)
        assert (a.state, a.version, a.position, a.recorded_at) == (
            b.state,
            b.version,
            b.position,
            b.recorded_at,
        )
        assert narrow.skipped == whole.skipped
    assert narrow.replay("ledger-1").position == 3
    assert narrow.replay("ledger-1").recorded_at is not None


def test_two_codes_keep_their_own_snapshots_until_one_goes_quiet(rw_store):
    """Two deployments (different code) against one store must not delete each
    other's snapshots; code that has written none for STALE_AFTER is pruned."""
    from esctl.store.sqlite.snapshots import STALE_AFTER

    append(rw_store, "ledger-1", *[("Deposited", {"amount": "1"})] * 3)

    class Ledger2(Ledger):
        @evolve("Withdrawn")
        def withdrawn_twice(state, data):
            state.balance -= 2 * Decimal(data["amount"])
            return state

    old, new = Replayer(rw_store, Ledger), Replayer(rw_store, Ledger2)
    old.snapshot("ledger-1", 2)
    new.snapshot("ledger-1", 3)
    old.snapshot("ledger-1", 3)
    assert old.replay("ledger-1").from_snapshot == 3
    assert new.replay("ledger-1").from_snapshot == 3
    listed = {(s.fingerprint, s.version) for s in old.snapshots.list("ledger-1")}
    assert listed == {(old.fingerprint, 2), (old.fingerprint, 3), (new.fingerprint, 3)}

    # The old code goes quiet: its newest snapshot is older than STALE_AFTER.
    long_ago = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() - STALE_AFTER - 60))
    rw_store.conn.execute(
        f"UPDATE {TABLE} SET created_at = ? WHERE fingerprint = ?", (long_ago, old.fingerprint)
    )
    assert len(old.snapshots.list("ledger-1")) == 3  # reading deletes nothing
    new.snapshot("ledger-1", 2)
    assert {(s.fingerprint, s.version) for s in old.snapshots.list("ledger-1")} == {
        (new.fingerprint, 2),
        (new.fingerprint, 3),
    }
