"""The stored form of an event, as every backend returns it to raw readers."""

from __future__ import annotations

from typing import NamedTuple


class StoredRow(NamedTuple):
    """An event as stored: data and metadata still JSON text, as written. What
    `read_stream(raw=True)` and `read_all(raw=True)` yield, for readers that embed
    or decode the JSON themselves (export, replay's fast fold)."""

    stream: str
    version: int
    position: int
    type: str
    data: str
    metadata: str
    id: str
    recorded_at: str
