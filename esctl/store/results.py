"""What the store's methods return, the same on every backend."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from esctl.events import RecordedEvent
from esctl.store.writing import decode


@dataclass(slots=True)
class ImportSummary:
    imported: int = 0
    duplicates: int = 0
    streams: int = 0
    first_position: int | None = None
    last_position: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "duplicates": self.duplicates,
            "streams": self.streams,
            "first_position": self.first_position,
            "last_position": self.last_position,
        }


@dataclass(slots=True)
class StreamSummary:
    stream: str
    category: str
    version: int
    first_recorded_at: str
    last_recorded_at: str
    last_position: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "category": self.category,
            "version": self.version,
            "first_recorded_at": self.first_recorded_at,
            "last_recorded_at": self.last_recorded_at,
            "last_position": self.last_position,
        }


@dataclass(slots=True)
class AppendResult:
    """What `append` did: the events stored (or already stored, for duplicates),
    in the order given, decoded when first asked for."""

    outcomes: list[Any] = field(default_factory=list)  # rows written, or RecordedEvents
    duplicates: int = 0
    _events: list[RecordedEvent] | None = None

    @property
    def events(self) -> list[RecordedEvent]:
        if self._events is None:
            self._events = [o if isinstance(o, RecordedEvent) else decode(o) for o in self.outcomes]
        return self._events


# The counters as `info` lists them: SQL that every backend runs as it is.
COUNTS = "SELECT kind, name, count FROM esctl_counts WHERE count > 0 ORDER BY kind, count DESC, name"


def info_document(
    path: str, size: int, schema_version: int, counts: Iterable[tuple[str, str, int]], head: int
) -> dict[str, Any]:
    """What `info` says of a store, from its counters (rows of COUNTS)."""
    by_kind: dict[str, dict[str, int]] = {"category": {}, "type": {}, "streams": {}}
    for kind, name, count in counts:
        by_kind[kind][name] = count
    return {
        "path": path,
        "file_size": size,
        "schema_version": schema_version,
        "events": sum(by_kind["category"].values()),
        "streams": by_kind["streams"].get("", 0),
        "last_position": head,
        "categories": by_kind["category"],
        "types": by_kind["type"],
    }


def stream_document(first: RecordedEvent, last: RecordedEvent, types: dict[str, int]) -> dict[str, Any]:
    """What `info STREAM` says of a stream: its first and last events and its types."""
    return {
        "stream": first.stream,
        "category": first.category,
        "version": last.version,
        "types": types,
        "first": first.to_dict(),
        "last": last.to_dict(),
    }
