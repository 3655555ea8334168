"""Upcasting: reading an older schema of an event type as the current one, for
every reader (replay and exec, projections, consumers and subscribers).

An event's schema version lives in its metadata under "schema" (default 1). An
upcaster turns one schema of one type into the next:

    @upcaster("OrderCreated", from_schema=1)
    def order_created_v2(data):             # or (data, metadata)
        return {"customer_id": data["customer"], "lines": ...}

On read, upcasters run in a chain until no upcaster matches; the event handed on
carries the new data and `metadata["schema"]` set to the version reached. Stored
events are never rewritten. Events a command emits are stamped with the current
schema of their type (one past the newest upcaster), so they are not upcast again.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

from esctl.errors import ModelError
from esctl.events import RecordedEvent, check_type
from esctl.usercode import defined_at
from esctl.usercode import where as user_line

SCHEMA_KEY = "schema"


def upcaster(event_type: str, *, from_schema: int = 1) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark `fn(data[, metadata]) -> data` as upcasting `event_type` from `from_schema`
    to `from_schema + 1`."""
    check_type(event_type, "@upcaster: ")
    if isinstance(from_schema, bool) or not isinstance(from_schema, int) or from_schema < 1:
        raise ModelError(f"@upcaster({event_type!r}): from_schema must be a positive integer")

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__esctl_upcaster__ = (event_type, from_schema)  # type: ignore[attr-defined]
        return fn

    return mark


@dataclass(frozen=True, slots=True)
class _Step:
    fn: Callable[..., Any]
    takes_metadata: bool


class Upcasters:
    """The upcasters of a model, by event type and schema version."""

    def __init__(self, functions: Iterable[Callable[..., Any]] = ()) -> None:
        self._steps: dict[str, dict[int, _Step]] = {}
        for fn in functions:
            self.add(fn)

    @classmethod
    def from_module(cls, module: ModuleType | None) -> Upcasters:
        if module is None:
            return cls()
        from esctl.model import definitions

        return cls(definitions(module, lambda v: callable(v) and hasattr(v, "__esctl_upcaster__")))

    def add(self, fn: Callable[..., Any]) -> None:
        event_type, from_schema = fn.__esctl_upcaster__  # type: ignore[attr-defined]
        steps = self._steps.setdefault(event_type, {})
        if from_schema in steps:
            first, second = steps[from_schema].fn, fn
            raise ModelError(
                f"two upcasters for {event_type!r} from schema {from_schema}:"
                f" {_name(first)} ({defined_at(first).removesuffix(': ')}) and {_name(second)}",
                defined_at(second),
            )
        try:
            count = len(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            count = 1
        steps[from_schema] = _Step(fn, count >= 2)

    def __bool__(self) -> bool:
        return bool(self._steps)

    @property
    def types(self) -> frozenset[str]:
        return frozenset(self._steps)

    def functions(self, types: Iterable[str] | None = None) -> list[Callable[..., Any]]:
        """The upcaster functions (for these types), for fingerprints."""
        wanted = self._steps.keys() if types is None else set(types) & self._steps.keys()
        return [self._steps[t][s].fn for t in sorted(wanted) for s in sorted(self._steps[t])]

    def current_schema(self, event_type: str) -> int:
        """The schema that events of this type are written in today."""
        steps = self._steps.get(event_type)
        return max(steps) + 1 if steps else 1

    def upcast(
        self, event_type: str, data: dict[str, Any], metadata: dict[str, Any], where: str = ""
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(data, metadata) in the newest schema reachable; the inputs are not changed."""
        steps = self._steps.get(event_type)
        if not steps:
            return data, metadata
        schema = metadata.get(SCHEMA_KEY, 1)
        if isinstance(schema, bool) or not isinstance(schema, int):
            raise ModelError(f"{where}metadata.schema must be an integer, got {schema!r}")
        current = max(steps) + 1
        if schema > current:
            # Written by newer code: this model would read data it does not know.
            raise ModelError(
                f"{where}{event_type} is stored in schema {schema}, newer than this model reads"
                f" ({current}, after its newest upcaster {_name(steps[current - 1].fn)}):"
                " replay it with the code that wrote it, or add the model's upcasters"
            )
        start = schema
        while (step := steps.get(schema)) is not None:
            if schema != start:  # each upcaster sees the schema it upcasts from
                metadata = {**metadata, SCHEMA_KEY: schema}
            try:
                new = step.fn(data, metadata) if step.takes_metadata else step.fn(data)
            except Exception as exc:
                raise ModelError(
                    f"{where}upcaster {_name(step.fn)} ({event_type} schema {schema})"
                    f" raised {type(exc).__name__}: {exc}",
                    user_line(exc) or defined_at(step.fn),
                ) from exc
            if not isinstance(new, dict):
                raise ModelError(
                    f"{where}upcaster {_name(step.fn)} returned {type(new).__name__}, not a dict",
                    defined_at(step.fn),
                )
            data = new
            schema += 1
        if schema != start:
            metadata = {**metadata, SCHEMA_KEY: schema}
        return data, metadata

    def event(self, event: RecordedEvent) -> RecordedEvent:
        """The event as the current code reads it."""
        if event.type not in self._steps:
            return event
        where = f"{event.stream} v{event.version}: "
        data, metadata = self.upcast(event.type, event.data, event.metadata, where)
        if data is event.data and metadata is event.metadata:
            return event
        return replace(event, data=data, metadata=metadata)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", "upcaster")
