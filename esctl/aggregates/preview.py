"""`esctl upcast --dry-run`: stored events before and after the model's upcasters."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from esctl.aggregates.changes import diff
from esctl.aggregates.plain import to_plain
from esctl.errors import ModelError
from esctl.events import RecordedEvent
from esctl.upcasting import SCHEMA_KEY, Upcasters


@dataclass
class Preview:
    """Stored events before and after their upcasters (`esctl upcast --dry-run`):
    iterate for one row per event that upcasts; an event an upcaster fails on goes
    to `on_failure` and the preview goes on. `seen` and `failures` count as it goes."""

    upcasters: Upcasters
    events: Iterable[RecordedEvent]
    on_failure: Callable[[ModelError], None] | None = None
    seen: int = 0
    failures: list[ModelError] = field(default_factory=list)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for e in self.events:
            self.seen += 1
            before = to_plain(e.data)
            try:
                data, metadata = self.upcasters.upcast(
                    e.type, e.data, e.metadata, f"{e.stream} v{e.version}: "
                )
            except ModelError as exc:
                self.failures.append(exc)
                if self.on_failure is not None:
                    self.on_failure(exc)
                continue
            after = to_plain(data)
            yield {
                "stream": e.stream,
                "version": e.version,
                "position": e.position,
                "type": e.type,
                "from_schema": e.metadata.get(SCHEMA_KEY, 1),
                "to_schema": metadata.get(SCHEMA_KEY, 1),
                "before": before,
                "after": after,
                "changes": diff(before, after),
            }
