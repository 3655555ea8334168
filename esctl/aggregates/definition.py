"""Defining an aggregate: a class that binds a stream category to an initial state,
one `evolve` handler per event type and optional `command` handlers.

    class Order(Aggregate):
        category = "order"              # streams order-1, order-42, ...
        initial = OrderState            # a value (copied per replay) or a callable

        @evolve("OrderConfirmed")
        def confirmed(state, data):     # pure: the new state from state and event data
            return replace(state, status="confirmed")

        @command("confirm")
        def confirm(state, args):       # validate, then return the new events
            if state.status != "created":
                raise CommandRejected("only a created order can be confirmed")
            return [("OrderConfirmed", {})]

Handlers are plain functions (no `self`): `Order.confirmed(state, {})` works in a
test with no database. An evolve handler may take a third parameter, the
RecordedEvent (for its metadata or recorded_at); a command handler may take a
third, the CommandContext. `@evolve("*")` catches every type without a handler.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from esctl.errors import EsctlError, InvalidInput, ModelError
from esctl.events import RecordedEvent, check_object, check_type
from esctl.usercode import defined_at, shown_path, where

WILDCARD = "*"
_RESERVED = ("initial_state", "fold", "decide")


class Emitted(NamedTuple):
    """An event a command handler decided on (not yet stored)."""

    type: str
    data: dict[str, Any]
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class CommandContext:
    """What a three-parameter command handler is told about the command."""

    stream: str
    version: int  # the version the state reflects; 0 for a new stream
    command: str
    command_id: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class Handler:
    fn: Callable[..., Any]
    name: str  # for messages: "Order.confirmed"
    takes_extra: bool  # the third parameter (event or context)

    def defined_at(self) -> str:
        return defined_at(self.fn)


@dataclass(slots=True)
class AggregateSpec:
    """What esctl reads off an Aggregate subclass once, when the class is created."""

    name: str
    category: str
    initial: Any
    snapshot_every: int | None
    evolvers: dict[str, Handler] = field(default_factory=dict)
    fallback: Handler | None = None
    commands: dict[str, Handler] = field(default_factory=dict)

    def initial_state(self) -> Any:
        initial = self.initial
        return initial() if callable(initial) else copy.deepcopy(initial)

    def handler_for(self, event_type: str) -> Handler | None:
        return self.evolvers.get(event_type, self.fallback)


def evolve(*event_types: str) -> Callable[[Callable[..., Any]], Any]:
    """Mark `fn(state, data[, event]) -> new state` as the handler of these event types."""
    if not event_types or not all(isinstance(t, str) for t in event_types):
        raise ModelError('@evolve needs the event types it handles, e.g. @evolve("OrderCreated")')
    for event_type in event_types:
        if event_type != WILDCARD:
            check_type(event_type, "@evolve: ")

    def mark(fn: Callable[..., Any]) -> Any:
        fn = _unwrap(fn)
        fn.__esctl_evolves__ = event_types  # type: ignore[attr-defined]
        return staticmethod(fn)

    return mark


def command(name: str | Callable[..., Any] | None = None) -> Any:
    """Mark `fn(state, args[, context]) -> events` as the handler of a command (named
    after the function unless a name is given). It returns the new events as
    (type, data) pairs, Emitted, or dicts with "type" and "data"; or raises
    CommandRejected with a message for the user."""
    if callable(name) or isinstance(name, staticmethod):
        return command(None)(name)

    def mark(fn: Callable[..., Any]) -> Any:
        fn = _unwrap(fn)
        fn.__esctl_command__ = name or fn.__name__  # type: ignore[attr-defined]
        return staticmethod(fn)

    return mark


class Aggregate:
    """Base class of aggregates; see the module docstring."""

    category: ClassVar[str] = ""
    initial: ClassVar[Any] = dict
    snapshot_every: ClassVar[int | None] = None
    __esctl_spec__: ClassVar[AggregateSpec]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__esctl_spec__ = _build_spec(cls)

    @classmethod
    def initial_state(cls) -> Any:
        return cls.__esctl_spec__.initial_state()

    @classmethod
    def fold(cls, events: Iterable[Any], state: Any = ...) -> Any:
        """The state after `events` ((type, data) pairs, Emitted, dicts or
        RecordedEvents), from the initial state or from `state`. Unknown types raise."""
        spec = cls.__esctl_spec__
        if state is ...:
            state = spec.initial_state()
        for index, item in enumerate(events, 1):
            event = _as_event(item, index)
            handler = spec.handler_for(event.type)
            at = event_at(event.stream, event.version, event.type) if event.stream else f" at event {index}"
            if handler is None:
                raise ModelError(f"{spec.name} has no handler for event type {event.type!r}{at}")
            state = apply(handler, state, event.data, event, at)
        return state

    @classmethod
    def decide(
        cls,
        state: Any,
        command: str,
        args: dict[str, Any] | None = None,
        context: CommandContext | None = None,
    ) -> list[Emitted]:
        """Run a command handler: the events it decides on, or CommandRejected."""
        spec = cls.__esctl_spec__
        handler = spec.commands.get(command)
        if handler is None:
            known = ", ".join(sorted(spec.commands)) or "none"
            raise ModelError(f"{spec.name} has no command {command!r} (commands: {known})")
        args = {} if args is None else args
        if handler.takes_extra:
            context = context or CommandContext(stream="", version=0, command=command)
            result = _call(handler, state, args, context)
        else:
            result = _call(handler, state, args)
        return emitted_events(result, handler)


def spec_of(aggregate: type[Aggregate]) -> AggregateSpec:
    return aggregate.__esctl_spec__


def apply(handler: Handler, state: Any, data: dict[str, Any], event: Any, at: str = "") -> Any:
    """One evolve step, with the checks the fast replay loops make in bulk."""
    try:
        new = handler.fn(state, data, event) if handler.takes_extra else handler.fn(state, data)
    except EsctlError:  # already explained (CommandRejected, a nested fold's ModelError)
        raise
    except Exception as exc:
        raise handler_failed(handler, exc, at) from exc
    if new is None:
        raise returned_none(handler, at)
    return new


# --- the one way every fold path and command reports a handler's mistake -------------


def class_defined_at(cls: type) -> str:
    """'FILE, line N: ' of a class statement, or ''. Reads the source: for errors only."""
    try:
        path = inspect.getsourcefile(cls)
        line = inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return ""
    return f"{shown_path(path)}, line {line}: " if path else ""


def event_at(stream: str, version: int, event_type: str) -> str:
    return f" at {stream} v{version} ({event_type})"


def handler_failed(handler: Handler, exc: BaseException, at: str = "") -> ModelError:
    """A handler raised: name the user's line that raised (else the handler's
    definition), the handler, the error and the event (`at`)."""
    return ModelError(
        f"{handler.name} raised {type(exc).__name__}: {exc}{at}", where(exc) or handler.defined_at()
    )


def returned_none(handler: Handler, at: str = "") -> ModelError:
    return ModelError(
        f"{handler.name} returned None{at}: an evolve handler returns the new state", handler.defined_at()
    )


def emitted_events(result: Any, handler: Handler) -> list[Emitted]:
    """Normalise what a command handler returned into a list of Emitted."""
    if result is None:
        return []
    if isinstance(result, (tuple, dict)) and _is_one(result):  # one event, not a list of them
        result = [result]
    elif isinstance(result, (str, bytes, dict)) or not isinstance(result, Iterable):
        raise ModelError(
            f"{handler.name} returned {result!r:.60}; expected events: a list of (type, data) pairs,"
            " Emitted or dicts with 'type' and 'data' (or None for no events)",
            handler.defined_at(),
        )
    try:
        items = list(result)  # a generator handler runs here
    except EsctlError:
        raise
    except Exception as exc:
        raise handler_failed(handler, exc) from exc
    events = []
    for item in items:
        try:
            events.append(_emitted(item))
        except (ValueError, TypeError, InvalidInput) as exc:
            raise ModelError(
                f"{handler.name} returned an event esctl cannot use: {exc}", handler.defined_at()
            ) from None
    return events


def _emitted(item: Any) -> Emitted:
    if isinstance(item, dict):
        if "type" not in item or item.keys() - {"type", "data", "metadata"}:
            raise ValueError("a dict event has 'type' and optionally 'data' and 'metadata'")
        item = (item["type"], item.get("data", {}), item.get("metadata"))
    elif not isinstance(item, tuple) and hasattr(item, "type") and hasattr(item, "data"):
        item = (item.type, item.data, getattr(item, "metadata", None))
    if not isinstance(item, tuple) or len(item) not in (2, 3):
        raise ValueError(f"expected (type, data), got {item!r:.60}")
    event_type, data, metadata = item if len(item) == 3 else (*item, None)
    check_type(event_type, "event type: ")
    check_object(data, "data")
    if metadata is not None:
        check_object(metadata, "metadata")
    return Emitted(event_type, data, metadata)


def _is_one(result: tuple | dict) -> bool:
    """(type, data) or {"type": ...} is one event; a tuple of events is several."""
    if isinstance(result, dict):
        return True
    return bool(result) and isinstance(result[0], str)


def _call(handler: Handler, *args: Any) -> Any:
    try:
        return handler.fn(*args)
    except EsctlError:  # CommandRejected, or already explained
        raise
    except Exception as exc:
        raise handler_failed(handler, exc) from exc


def _as_event(item: Any, index: int) -> RecordedEvent:
    if isinstance(item, RecordedEvent):
        return item
    if isinstance(item, dict):
        event_type, data, metadata = item["type"], item.get("data", {}), item.get("metadata") or {}
    else:
        event_type, data, *rest = item
        metadata = (rest[0] if rest else None) or {}
    return RecordedEvent("", index, index, event_type, data, metadata, "", "")


def _unwrap(fn: Any) -> Callable[..., Any]:
    return fn.__func__ if isinstance(fn, (staticmethod, classmethod)) else fn


def _takes_extra(fn: Callable[..., Any], name: str, kind: str, extra: str) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) not in (2, 3):
        raise ModelError(
            f"{kind} handler {name} must take (state, {'data' if kind == 'evolve' else 'args'}) or"
            f" (state, ..., {extra}), got {len(positional)} parameters",
            defined_at(fn),
        )
    return len(positional) == 3


def _build_spec(cls: type[Aggregate]) -> AggregateSpec:
    category = cls.category
    if not isinstance(category, str) or "-" in category or any(c.isspace() for c in category):
        raise ModelError(
            f"{cls.__qualname__}.category must be a name without '-' or spaces, got {category!r}"
        )
    every = cls.snapshot_every
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise ModelError(f"{cls.__qualname__}.snapshot_every must be a positive integer or None")
    for name in _RESERVED:
        if name in vars(cls):
            raise ModelError(f"{cls.__qualname__}.{name} is reserved by esctl; name the handler differently")
    spec = AggregateSpec(
        name=cls.__qualname__,
        category=category,
        initial=_unwrap(cls.initial),
        snapshot_every=every,
    )
    # Base classes first, so a subclass's handler replaces an inherited one.
    for klass in reversed(cls.__mro__):
        seen: set[str] = set()
        for attr, value in vars(klass).items():
            fn = _unwrap(value)
            name = f"{cls.__qualname__}.{attr}"
            for event_type in getattr(fn, "__esctl_evolves__", ()):
                if event_type in seen:
                    raise ModelError(
                        f"{klass.__qualname__} has two evolve handlers for {event_type!r}", defined_at(fn)
                    )
                seen.add(event_type)
                handler = Handler(fn, name, _takes_extra(fn, name, "evolve", "event"))
                if event_type == WILDCARD:
                    spec.fallback = handler
                else:
                    spec.evolvers[event_type] = handler
            command_name = getattr(fn, "__esctl_command__", None)
            if command_name is not None:
                spec.commands[command_name] = Handler(fn, name, _takes_extra(fn, name, "command", "context"))
    return spec
