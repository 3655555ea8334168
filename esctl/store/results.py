"""What the store's methods return, the same on every backend."""

from __future__ import annotations

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
