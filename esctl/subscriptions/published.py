"""Integration events: the published, versioned shape of a domain event.

A domain event is the model's own and free to change; an integration event is a
contract other services read. The model declares which domain events it
publishes, under which public name and version, how the published data is made,
and what that data holds:

    from esctl.subscriptions import Published

    shipped = Published(
        "OrderShipped", name="orders.shipped", version=1,
        fields={"order_id": str, "tracking": str},
        shape=lambda e: {"order_id": e.stream.split("-", 1)[1], "tracking": e.data["tracking_number"]},
    )

`esctl consume GROUP --published --exec CMD` hands consumers the published form;
`esctl contracts --check` (or `check_contract` in a test) runs every stored event
of a published type through its shape and refuses one whose result is not the
declared fields: a domain event that changed shape without a new published
version cannot break the contract silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from esctl.errors import InvalidInput

if TYPE_CHECKING:
    from esctl.events import RecordedEvent

_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}


@dataclass(frozen=True)
class Published:
    domain_type: str
    name: str
    version: int
    fields: Mapping[str, type]
    shape: Callable[[RecordedEvent], Mapping[str, Any]] = field(compare=False)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(
                f"published name {self.name!r}: lower-case words joined by dots (orders.shipped)"
            )
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 1:
            raise ValueError(f"{self.name}: the version is a whole number from 1")
        for key, kind in self.fields.items():
            if kind not in _TYPES:
                raise ValueError(
                    f"{self.name} v{self.version}: field {key!r} has type {kind!r}; give one of {list(_TYPES)}"
                )
        object.__setattr__(self, "fields", dict(self.fields))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "domain_type": self.domain_type,
            "fields": {k: _TYPES[v] for k, v in self.fields.items()},
        }

    def problems(self, event: RecordedEvent) -> list[str]:
        """How this event's published form breaks the contract (empty: it keeps it)."""
        return self._shaped(event)[1]

    def _shaped(self, event: RecordedEvent) -> tuple[Any, list[str]]:
        """The shape's result, made once, and how it breaks the contract."""
        try:
            data = self.shape(event)
        except Exception as exc:
            return None, [f"its shape fails: {type(exc).__name__}: {' '.join(str(exc).split())}"]
        return data, self._check(data)

    def _check(self, data: Any) -> list[str]:
        if not isinstance(data, Mapping):
            return [f"its shape gives {type(data).__name__}, not an object"]
        found = []
        for key, kind in self.fields.items():
            if key not in data:
                found.append(f"field {key!r} is missing")
            elif not _fits(data[key], kind):
                found.append(
                    f"field {key!r} is {_TYPES.get(type(data[key]), type(data[key]).__name__)}, not {_TYPES[kind]}"
                )
        found += [f"field {key!r} is not in the contract" for key in data if key not in self.fields]
        return found

    def publish(self, event: RecordedEvent) -> dict[str, Any]:
        """The integration event: InvalidInput when the event breaks the contract."""
        data, problems = self._shaped(event)
        if problems:
            raise InvalidInput(
                f"event {event.position} ({event.stream} v{event.version}) breaks {self.name} v{self.version}:"
                f" {'; '.join(problems)}"
            )
        metadata = event.metadata or {}
        return {
            "name": self.name,
            "version": self.version,
            "id": event.id,
            "occurred_at": event.recorded_at,
            "correlation_id": metadata.get("correlation_id", event.id),
            "data": dict(data),
        }


def _fits(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def published_in(module: Any) -> dict[str, Published]:
    """The model's published contracts by domain type (one per type: a new
    version of a contract is a new public name or a new model)."""
    from esctl.model import definitions

    found: list[Published] = definitions(module, lambda value: isinstance(value, Published))
    by_type: dict[str, Published] = {}
    for contract in found:
        if contract.domain_type in by_type:
            raise InvalidInput(
                f"{contract.domain_type} is published twice ({by_type[contract.domain_type].name}, {contract.name})"
            )
        by_type[contract.domain_type] = contract
    return by_type


def check_contract(
    contracts: Mapping[str, Published] | Iterable[Published],
    events: Iterable[RecordedEvent],
    upcast: Callable[[RecordedEvent], RecordedEvent] | None = None,
) -> list[str]:
    """For a test: every way the events' published forms break their contracts,
    one line each, naming the event (an empty list: they keep them). `upcast`
    (the model's `Upcasters.from_module(model).event`) reads stored events as the
    current code does, as `esctl contracts --check` does."""
    chosen = list(contracts.values()) if isinstance(contracts, Mapping) else list(contracts)
    if not chosen:
        raise ValueError("check_contract: give at least one Published contract")
    by_type = {c.domain_type: c for c in chosen}
    found = []
    for event in events:
        if upcast is not None:
            event = upcast(event)
        contract = by_type.get(event.type)
        if contract is not None:
            for problem in contract.problems(event):
                found.append(
                    f"position {event.position} ({event.stream} v{event.version}, {event.type}):"
                    f" {contract.name} v{contract.version}: {problem}"
                )
    return found
