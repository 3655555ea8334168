"""The stored form of an event, as every backend returns it to raw readers."""

from __future__ import annotations

from typing import NamedTuple

import orjson

from esctl.errors import StoreDamaged, shown


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


def check_stored_json(where: str, **texts: object) -> None:
    """Raise StoreDamaged when a stored column (data, metadata) is not JSON: a row
    written around esctl. Called once something failed to decode."""
    for column, text in texts.items():
        try:
            orjson.loads(text)  # type: ignore[arg-type]
        except (orjson.JSONDecodeError, TypeError):
            raise StoreDamaged(
                f"the store is damaged: {where} has {column} that is not JSON: {shown(text, 40)}"
            ) from None
