"""Generated event ids: UUIDv7, unique and in order within a process."""

from __future__ import annotations

import uuid

from esctl import ids


def test_batches_and_single_ids_continue_one_increasing_sequence():
    made = ids.uuid7s(5000) + [ids.uuid7() for _ in range(10)] + ids.uuid7s(3)
    assert made == sorted(made) and len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, text)


def test_a_millisecond_with_more_than_4096_ids_borrows_the_next(monkeypatch):
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_700_000_000_000 * 1_000_000)
    monkeypatch.setattr(ids, "_last_ms", 0)
    made = ids.uuid7s(4096) + ids.uuid7s(2)
    assert made == sorted(made) and len(set(made)) == 4098
    clocks = {int(text.replace("-", "")[:12], 16) for text in made}
    assert clocks == {1_700_000_000_000, 1_700_000_000_001}
    assert made[4096].split("-")[2] == "7000"  # the counter starts again
