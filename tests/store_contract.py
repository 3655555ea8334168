"""The event-store contract: behaviour every backend must show.

A backend's test module subclasses `StoreContract` and provides a `store` fixture
(see test_sqlite_store.py). Nothing here knows about SQLite.
"""

from __future__ import annotations

import pytest

from esctl import (
    ANY,
    EXISTS,
    NO_STREAM,
    DuplicateEventId,
    InvalidInput,
    NewEvent,
    NotFound,
    WrongExpectedVersion,
)


def ev(stream: str, type_: str = "Happened", data: dict | None = None, **kw) -> NewEvent:
    return NewEvent(stream, type_, data if data is not None else {}, **kw)


class StoreContract:
    # --- append and read -----------------------------------------------------------

    def test_append_assigns_versions_and_positions(self, store):
        a = store.append("order-1", [ev("order-1", "Created", {"n": 1}), ev("order-1", "Paid")])
        b = store.append("order-2", [ev("order-2", "Created")])
        c = store.append("order-1", [ev("order-1", "Shipped")])
        assert [(e.stream, e.version, e.position) for e in a.events + b.events + c.events] == [
            ("order-1", 1, 1),
            ("order-1", 2, 2),
            ("order-2", 1, 3),
            ("order-1", 3, 4),
        ]
        assert store.stream_version("order-1") == 3
        assert store.head_position() == 4

    def test_read_stream_returns_what_was_appended(self, store):
        store.append(
            "cart-9",
            [
                ev(
                    "cart-9",
                    "Added",
                    {"sku": "x", "qty": 2, "nested": {"a": [1, 2]}},
                    metadata={"correlation_id": "c1"},
                )
            ],
        )
        (event,) = list(store.read_stream("cart-9"))
        assert event.type == "Added"
        assert event.data == {"sku": "x", "qty": 2, "nested": {"a": [1, 2]}}
        assert event.metadata == {"correlation_id": "c1"}
        assert event.category == "cart"
        assert len(event.id) == 36 and event.id[14] == "7"  # a generated UUIDv7
        assert event.recorded_at.endswith("Z") and len(event.recorded_at) == 27

    def test_read_stream_ranges_backwards_and_limit(self, store):
        store.append("s-1", [ev("s-1", f"E{i}") for i in range(1, 6)])
        types = lambda events: [e.type for e in events]  # noqa: E731
        assert types(store.read_stream("s-1", from_version=2, to_version=4)) == ["E2", "E3", "E4"]
        assert types(store.read_stream("s-1", backwards=True, limit=2)) == ["E5", "E4"]

    def test_long_reads_return_every_event_once_in_order(self, store):
        # Long enough to cross a backend's read pages (keyset paging on PostgreSQL).
        store.import_events([("", ev(f"s-{i % 3}", "Even" if i % 2 == 0 else "Odd")) for i in range(1500)])
        assert [e.version for e in store.read_stream("s-1")] == list(range(1, 501))
        assert [e.version for e in store.read_stream("s-1", backwards=True, limit=450)] == list(
            range(500, 50, -1)
        )
        assert [e.version for e in store.read_stream("s-2", from_version=99, to_version=420)] == list(
            range(99, 421)
        )
        assert [e.position for e in store.read_all()] == list(range(1, 1501))
        assert [e.position for e in store.read_all(types=["Odd"], from_position=7, limit=600)] == list(
            range(8, 1501, 2)
        )[:600]
        assert [r[0] for r in store.read_stream_data("s-0")] == list(range(1, 501))

    def test_reading_a_missing_stream_is_not_found(self, store):
        with pytest.raises(NotFound, match="nope-1"):
            list(store.read_stream("nope-1"))

    def test_read_all_in_position_order_with_filters(self, store):
        store.append("order-1", [ev("order-1", "Created")])
        store.append("user-1", [ev("user-1", "Registered")])
        store.append("order-2", [ev("order-2", "Created"), ev("order-2", "Paid")])
        assert [e.position for e in store.read_all()] == [1, 2, 3, 4]
        assert [e.stream for e in store.read_all(category="order")] == ["order-1", "order-2", "order-2"]
        assert [e.position for e in store.read_all(types=["Paid", "Registered"])] == [2, 4]
        assert [e.position for e in store.read_all(from_position=3, limit=1)] == [3]

    def test_category_is_the_part_before_the_first_dash(self, store):
        store.append("order-42-x", [ev("order-42-x")])
        store.append("standalone", [ev("standalone")])
        assert [s.category for s in store.streams()] == ["order", "standalone"]

    # --- expected versions ---------------------------------------------------------

    @pytest.mark.parametrize(
        ("expected", "before", "accepted"),
        [
            (ANY, 0, True),
            (ANY, 2, True),
            (NO_STREAM, 0, True),
            (NO_STREAM, 1, False),
            (EXISTS, 0, False),
            (EXISTS, 1, True),
            (0, 0, True),
            (0, 1, False),
            (2, 2, True),
            (1, 2, False),
            (3, 2, False),
        ],
    )
    def test_expected_version_rules(self, store, expected, before, accepted):
        if before:
            store.append("s-1", [ev("s-1") for _ in range(before)])
        head = store.head_position()
        if accepted:
            store.append("s-1", [ev("s-1")], expected)
            assert store.stream_version("s-1") == before + 1
        else:
            with pytest.raises(WrongExpectedVersion) as info:
                store.append("s-1", [ev("s-1")], expected)
            assert (info.value.stream, info.value.actual) == ("s-1", before)
            assert str(expected) in str(info.value)
            assert store.head_position() == head

    def test_a_failed_batch_writes_nothing(self, store):
        store.append("s-1", [ev("s-1")])
        with pytest.raises(InvalidInput):
            store.append("s-1", [ev("s-1", "Ok"), ev("s-1", "bad type")])
        assert store.stream_version("s-1") == 1
        assert store.head_position() == 1

    # --- idempotency ---------------------------------------------------------------

    def test_same_id_same_event_is_an_idempotent_no_op(self, store):
        event_id = "0190a2b4-0000-7000-8000-000000000001"
        first = store.append("s-1", [ev("s-1", "Paid", {"amount": 5}, id=event_id)])
        again = store.append("s-1", [ev("s-1", "Paid", {"amount": 5}, id=event_id)], NO_STREAM)
        assert again.duplicates == 1
        assert again.events == first.events
        assert store.head_position() == 1

    @pytest.mark.parametrize(
        "changed",
        [
            {"stream": "s-2"},
            {"type_": "Refunded"},
            {"data": {"amount": 6}},
            {"metadata": {"by": "someone"}},
        ],
    )
    def test_same_id_different_event_is_a_conflict(self, store, changed):
        event_id = "0190a2b4-0000-7000-8000-000000000002"
        store.append("s-1", [ev("s-1", "Paid", {"amount": 5}, id=event_id)])
        args = {"stream": "s-1", "type_": "Paid", "data": {"amount": 5}, **changed}
        metadata = args.pop("metadata", {})
        with pytest.raises(DuplicateEventId, match=event_id):
            store.append(args["stream"], [ev(**args, id=event_id, metadata=metadata)])
        assert store.head_position() == 1

    def test_ids_are_stored_in_canonical_form(self, store):
        from esctl.ids import canonical_id

        given = "0190A2B4-0000-7000-8000-00000000000A"
        store.append("s-1", [ev("s-1", id=canonical_id(given))])
        assert next(store.read_stream("s-1")).id == given.lower()

    # --- import --------------------------------------------------------------------

    def test_import_is_atomic(self, store):
        store.append("s-1", [ev("s-1")])
        lines = [("line 1: ", ev("s-2")), ("line 2: ", ev("s-1", expected_version=5))]
        with pytest.raises(WrongExpectedVersion):
            store.import_events(lines)
        assert store.head_position() == 1
        assert store.stream_version("s-2") == 0

    def test_import_skips_duplicates_and_reports(self, store):
        ids = [f"0190a2b4-0000-7000-8000-00000000000{i}" for i in range(4)]
        events = [("", ev(f"s-{i % 2}", id=ids[i])) for i in range(4)]
        first = store.import_events(events)
        assert (first.imported, first.duplicates, first.streams) == (4, 0, 2)
        assert (first.first_position, first.last_position) == (1, 4)
        again = store.import_events([*events, ("", ev("s-9"))], batch_size=2)
        assert (again.imported, again.duplicates, again.streams) == (1, 4, 1)
        assert (again.first_position, again.last_position) == (5, 5)

    def test_a_stored_id_after_new_events_in_one_chunk_leaves_no_gap(self, store):
        stored = "0190a2b4-0000-7000-8000-0000000000aa"
        store.append("s-1", [ev("s-1", "A", id=stored)])
        given = [f"0190a2b4-0000-7000-8000-0000000001{i:02d}" for i in range(3)]
        summary = store.import_events(
            [
                ("", ev("s-2", "B", id=given[0])),
                ("", ev("s-1", "C", id=given[1])),
                ("", ev("s-1", "A", id=stored)),  # the insert fails here
                ("", ev("s-2", "D", id=given[2])),
            ]
        )
        assert (summary.imported, summary.duplicates) == (3, 1)
        assert [(e.position, e.stream, e.version, e.type) for e in store.read_all()] == [
            (1, "s-1", 1, "A"),
            (2, "s-2", 1, "B"),
            (3, "s-1", 2, "C"),
            (4, "s-2", 2, "D"),
        ]

    def test_a_stored_duplicate_does_not_move_the_version_a_later_line_expects(self, store):
        stored = "0190a2b4-0000-7000-8000-0000000000bb"
        store.append("s-1", [ev("s-1", "A", id=stored)])
        summary = store.import_events(
            [("line 1: ", ev("s-1", "A", id=stored)), ("line 2: ", ev("s-1", "U", expected_version=1))]
        )
        assert (summary.imported, summary.duplicates) == (1, 1)
        assert [e.type for e in store.read_stream("s-1")] == ["A", "U"]

    def test_import_batches_commit_as_they_go(self, store):
        events = [
            ("line 1: ", ev("s-1")),
            ("line 2: ", ev("s-1")),
            ("line 3: ", ev("s-1", expected_version=0)),
        ]
        with pytest.raises(
            WrongExpectedVersion, match=r"the batches up to line 2 were committed \(2 events imported"
        ):
            store.import_events(events, batch_size=2)
        assert store.stream_version("s-1") == 2

    def test_exact_versions_from_an_export_are_enforced(self, store):
        store.import_events([("", ev("s-1", expected_version=0)), ("", ev("s-1", expected_version=1))])
        with pytest.raises(WrongExpectedVersion):
            store.import_events([("", ev("s-1", expected_version=1))])

    def test_imported_recorded_at_is_preserved(self, store):
        stamp = "2020-01-02T03:04:05.000006Z"
        store.import_events([("", ev("s-1", recorded_at=stamp))])
        assert next(store.read_stream("s-1")).recorded_at == stamp

    def test_the_stream_version_cache_is_only_trimmed_between_chunks(self, store, monkeypatch):
        # With a tiny cache bound, chunks of 7 events over 5 streams (each chunk
        # touches two of them twice; the cache outgrows the bound at every chunk)
        # must still number every stream's events 1 to 8.
        from esctl.store import base, writing

        monkeypatch.setattr(writing, "_MAX_CACHED_STREAMS", 3)
        monkeypatch.setattr(base, "CHUNK", 7)  # several chunks: the cache is trimmed between them
        monkeypatch.setattr(type(store._writer()), "chunk", 0)  # the backend's own size too
        events = [("", NewEvent(f"s-{i % 5}", "T")) for i in range(40)]
        summary = store.import_events(events)
        assert summary.imported == 40
        assert [[e.version for e in store.read_stream(f"s-{i}")] for i in range(5)] == [list(range(1, 9))] * 5

    @pytest.mark.parametrize("set_limit", [100_000, 2])
    def test_streams_touched_are_counted_the_same_past_the_in_memory_limit(
        self, store, monkeypatch, set_limit
    ):
        from esctl.store import base

        monkeypatch.setattr(base, "_MAX_STREAM_SET", set_limit)
        store.append("x-1", [NewEvent("x-1", "T")])  # before the import: not counted
        events = [("", NewEvent(f"s-{i % 5}", "T")) for i in range(23)]
        summary = store.import_events(events, batch_size=4)
        assert (summary.imported, summary.streams) == (23, 5)

    # --- listing -------------------------------------------------------------------

    def test_streams_sort_numbers_in_names_as_numbers_and_take_a_limit(self, store):
        for name in ("account-10", "account-2", "account-1", "b", "account-02", "a-9-x"):
            store.append(name, [ev(name)])
        order = ["a-9-x", "account-1", "account-02", "account-2", "account-10", "b"]
        assert [s.stream for s in store.streams()] == order
        assert [s.stream for s in store.streams(limit=3)] == order[:3]
        assert [s.stream for s in store.streams(limit=0)] == []
        assert [s.stream for s in store.streams(category="account", limit=2)] == ["account-1", "account-02"]

    def test_streams_and_info(self, store):
        store.append("order-1", [ev("order-1", "Created"), ev("order-1", "Paid")])
        store.append("user-1", [ev("user-1", "Registered")])
        rows = [s.to_dict() for s in store.streams()]
        assert [(r["stream"], r["category"], r["version"], r["last_position"]) for r in rows] == [
            ("order-1", "order", 2, 2),
            ("user-1", "user", 1, 3),
        ]
        assert [s.stream for s in store.streams(category="user")] == ["user-1"]
        info = store.info()
        assert (info["events"], info["streams"], info["last_position"]) == (3, 2, 3)
        assert info["categories"] == {"order": 2, "user": 1}
        assert info["types"] == {"Created": 1, "Paid": 1, "Registered": 1}
        one = store.stream_info("order-1")
        assert (one["version"], one["types"], one["first"]["type"], one["last"]["type"]) == (
            2,
            {"Created": 1, "Paid": 1},
            "Created",
            "Paid",
        )

    def test_data_that_json_cannot_hold_is_invalid_input(self, store):
        with pytest.raises(InvalidInput, match="cannot be stored as JSON"):
            store.append("s-1", [ev("s-1", data={"n": 2**70})])
        assert store.head_position() == 0

    def test_decimals_are_stored_exactly_or_as_text(self, store):
        from decimal import Decimal

        store.append("s-1", [ev("s-1", data={"price": Decimal("79.97"), "huge": Decimal("1E+999")})])
        assert next(store.read_stream("s-1")).data == {"price": 79.97, "huge": "1E+999"}

    def test_library_appends_are_checked_like_cli_input(self, store):
        with pytest.raises(InvalidInput, match='"id" must be a UUID'):
            store.append("s-1", [ev("s-1", id="not-a-uuid")])
        with pytest.raises(InvalidInput, match='"recorded_at" must be a UTC timestamp'):
            store.append("s-1", [ev("s-1", recorded_at="yesterday")])
        with pytest.raises(InvalidInput, match="expected version must be"):
            store.append("s-1", [ev("s-1")], True)
        assert store.head_position() == 0
        upper = "01234567-89AB-7DEF-8123-456789ABCDEF"
        store.append("s-1", [ev("s-1", id=upper)], "no-stream")  # rules may be given as text
        again = store.append("s-1", [ev("s-1", id=upper.lower())])
        assert again.duplicates == 1 and store.head_position() == 1

    def test_names_that_are_not_strings_are_invalid_input(self, store):
        with pytest.raises(InvalidInput, match='"stream" must be 1-255 characters'):
            store.import_events([("", NewEvent(["s-1"], "T"))])  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match='"type" must be 1-255 characters'):
            store.import_events([("", NewEvent("s-1", {"t": 1}))])  # type: ignore[arg-type]
        assert store.head_position() == 0

    def test_each_events_own_expected_version_is_checked(self, store):
        with pytest.raises(WrongExpectedVersion):
            store.append("s-1", [ev("s-1"), ev("s-1", expected_version=5)])
        result = store.append("s-1", [ev("s-1"), ev("s-1", expected_version=1)], NO_STREAM)
        assert [e.version for e in result.events] == [1, 2]


class StoreInterfaceContract:
    """The rest of the backend interface (esctl.store.protocol): snapshots, the
    change feed, the look-ups that time travel and completion use."""

    def test_the_backend_satisfies_the_protocol(self, store):
        from esctl.store.protocol import EventStoreBackend, SnapshotStore

        assert isinstance(store, EventStoreBackend)
        assert isinstance(store.snapshots, SnapshotStore)

    def test_snapshots_are_kept_per_fingerprint_and_found_at_or_below_a_version(self, store):
        store.append("s-1", [ev("s-1", f"E{i}") for i in range(5)])
        snapshots = store.snapshots
        assert snapshots.latest("s-1", "f1", 5) is None
        snapshots.save("s-1", 2, "Agg", "f1", '{"n": 2}')
        snapshots.save("s-1", 4, "Agg", "f1", '{"n": 4}')
        snapshots.save("s-1", 3, "Agg", "f2", '{"n": 3}', wait_seconds=0.2)
        assert snapshots.latest("s-1", "f1", 5).version == 4
        assert snapshots.latest("s-1", "f1", 3).version == 2
        assert snapshots.latest("s-1", "f2", 2) is None
        assert [(s.version, s.fingerprint) for s in snapshots.list("s-1")] == [
            (2, "f1"),
            (3, "f2"),
            (4, "f1"),
        ]

    def test_first_version_of_a_type_or_after_an_instant(self, store):
        store.import_events(
            [
                ("", ev("s-1", "A", recorded_at="2026-01-01T00:00:00.000000Z")),
                ("", ev("s-1", "B", recorded_at="2026-01-02T00:00:00.000000Z")),
                ("", ev("s-1", "B", recorded_at="2026-01-03T00:00:00.000000Z")),
            ]
        )
        assert store.first_version_of_type("s-1", "B") == 2
        assert store.first_version_of_type("s-1", "C") is None
        assert store.first_version_after("s-1", "2026-01-02T00:00:00.000000Z") == 3
        assert store.first_version_after("s-1", "2026-01-03T00:00:00.000000Z") is None

    def test_stream_names_by_prefix_in_order(self, store):
        for name in ("order-2", "order-10", "user-1", "order-1"):
            store.append(name, [ev(name)])
        assert store.stream_names("order-") == ["order-1", "order-10", "order-2"]
        assert store.stream_names("order-", 2) == ["order-1", "order-10"]
        assert store.stream_names("nothing") == []

    def test_the_change_token_moves_when_another_connection_commits(self, store):
        from esctl import store as backends

        before = store.change_token()
        assert store.change_token() == before  # nothing committed meanwhile
        with backends.open(store.path) as other:
            other.append("s-1", [ev("s-1")])
        assert store.change_token() != before

    def test_raw_reads_yield_stored_rows_with_named_fields(self, store):
        from esctl.store.rows import StoredRow

        store.append("s-1", [ev("s-1", "A", {"n": 1}), ev("s-1", "B")])
        rows = list(store.read_stream("s-1", raw=True)) + list(store.read_all(types=["A", "B"], raw=True))
        assert all(type(row) is StoredRow for row in rows)
        assert [(r.stream, r.version, r.position, r.type, r.data) for r in rows[:2]] == [
            ("s-1", 1, 1, "A", '{"n":1}'),
            ("s-1", 2, 2, "B", "{}"),
        ]
        assert [r.position for r in rows[2:]] == [1, 2]

    def test_waiting_for_a_change_returns_at_the_timeout_or_on_another_connections_commit(
        self, store, monkeypatch
    ):
        import threading
        import time

        from esctl import store as backends
        from tests.helpers import HANG

        token = store.change_token()
        assert store.wait_for_change(token, 0.01) == token  # nothing committed: the timeout
        waiting = threading.Event()
        read_token = store.change_token

        def change_token() -> int:  # the wait's first reading: from here on it waits
            current = read_token()
            waiting.set()
            return current

        monkeypatch.setattr(store, "change_token", change_token)

        def commit_elsewhere() -> None:
            with backends.open(store.path) as other:
                waiting.wait(HANG)
                other.append("s-1", [ev("s-1")])

        writer = threading.Thread(target=commit_elsewhere)
        writer.start()
        started = time.monotonic()
        try:
            assert store.wait_for_change(token, 10 * HANG) != token
        finally:
            writer.join()
        # Woken by the commit (NOTIFY, or data_version's polling), not by the timeout:
        # a bound ten times the wait's own timeout away, whatever the machine's load.
        assert time.monotonic() - started < HANG

    def test_stored_rows_are_written_as_they_are_and_must_continue_the_log(self, store):
        from esctl import StoreError
        from esctl.store.rows import StoredRow

        rows = [
            StoredRow(
                "s-1",
                1,
                1,
                "A",
                '{"b": 1,  "a": 2.50}',
                "{}",
                "0190a2b4-0000-7000-8000-0000000000d1",
                "2020-01-01T00:00:00.000000Z",
            ),
            StoredRow(
                "s-2",
                1,
                2,
                "B",
                "{}",
                '{"k":"v"}',
                "0190a2b4-0000-7000-8000-0000000000d2",
                "2020-01-02T00:00:00.000000Z",
            ),
        ]
        store.import_stored(rows)
        assert list(store.read_all(raw=True)) == rows  # the JSON text byte for byte
        for bad in (
            rows[0]._replace(position=4, id="x-1"),
            rows[0]._replace(position=3, version=3, id="x-2"),
        ):
            with pytest.raises(StoreError, match="does not continue the destination"):
                store.import_stored([bad])
        assert store.head_position() == 2

    def test_migrating_a_current_store_changes_nothing_and_says_so(self, store):
        store.append("s-1", [ev("s-1"), ev("s-1")])
        before = list(store.read_all(raw=True))
        doc = store.migrate()
        assert (doc["from_schema"], doc["to_schema"], doc["steps"]) == (store.schema_version,) * 2 + ([],)
        assert (doc["events"], doc["streams"], doc["backup"]) == (2, 1, None)
        assert list(store.read_all(raw=True)) == before
