"""Which events a subscription wants: all, or those of some streams, categories or
types (each given list narrows; within one, any matches)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from esctl.events import category_of
from esctl.store.protocol import EventStoreBackend
from esctl.store.rows import StoredRow


@dataclass(frozen=True)
class EventFilter:
    streams: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    types: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, streams: Iterable[str] = (), categories: Iterable[str] = (), types: Iterable[str] = ()
    ) -> EventFilter:
        return cls(tuple(streams), tuple(categories), tuple(types))

    def matches(self, stream: str, event_type: str) -> bool:
        return (
            (not self.streams or stream in self.streams)
            and (not self.categories or category_of(stream) in self.categories)
            and (not self.types or event_type in self.types)
        )

    def read(
        self, store: EventStoreBackend, after: int, upto: int, limit: int
    ) -> tuple[list[StoredRow], int]:
        """Stored rows of the wanted events after position `after` up to `upto`, at
        most `limit` rows read, and the position reached: `upto` when fewer were
        read, else the last row read (those past it are the next call's). One
        category is filtered by the store; more, or streams, here."""
        categories = set(self.categories) | {category_of(s) for s in self.streams}
        rows = list(
            store.read_all(
                from_position=after + 1,
                to_position=upto,
                category=next(iter(categories)) if len(categories) == 1 else None,
                types=self.types,
                limit=limit,
                raw=True,
            )
        )
        reached = rows[-1].position if len(rows) >= limit else upto
        if self.streams or len(categories) > 1:
            rows = [r for r in rows if self.matches(r.stream, r.type)]
        return rows, reached

    def to_dict(self) -> dict[str, Any]:
        return {"streams": list(self.streams), "categories": list(self.categories), "types": list(self.types)}

    def describe(self) -> str:
        """In words, for a status line: 'order-1', 'category order, types A, B', 'all events'."""
        parts: list[str] = []
        for label, values in (("stream", self.streams), ("category", self.categories), ("type", self.types)):
            if values:
                parts.append(f"{label}{'s' if len(values) > 1 else ''} {', '.join(values)}")
        return "; ".join(parts) or "all events"
