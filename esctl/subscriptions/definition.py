"""A consumer defined in the model: Python handlers, run by `esctl consume NAME`
with the same retries, backoff, breaker and parking as a command (`--exec`), its
settings given once, in the model.

    from esctl.subscriptions import Subscriber

    mailer = Subscriber("mailer", categories=["order"], retries=5, backoff=(1, 60), park="stream")

    @mailer.on("OrderShipped")
    def shipped(event, attempt):
        send_mail(event.data["email"], key=attempt.idempotency_key)   # raise to fail

A handler gets the envelope (read through the model's upcasters) and the attempt
(`number`, `idempotency_key`); it fails by raising. Handlers are plain functions:
call them to test them; `Subscriber.run_in_memory(events)` runs the whole
schedule (retries, breaker, parking) on a throwaway store, with a clock that
only moves when slept through.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from esctl.errors import InvalidInput
from esctl.store.consumers import Parked
from esctl.store.writing import decode
from esctl.subscriptions.consumer import Delivery, Outcome, Summary
from esctl.subscriptions.filter import EventFilter
from esctl.subscriptions.resilience import Clock, Settings

if TYPE_CHECKING:
    from esctl.events import NewEvent, RecordedEvent

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Attempt:
    number: int
    idempotency_key: str


Handler = Callable[["RecordedEvent", Attempt], Any]


class Subscriber:
    """A named consumer group with a handler per event type."""

    def __init__(
        self,
        name: str,
        *,
        streams: Iterable[str] = (),
        categories: Iterable[str] = (),
        retries: int = 3,
        backoff: tuple[float, float] = (1.0, 60.0),
        break_after: int = 5,
        cool_down: float = 30.0,
        park: str = "stream",
    ) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"subscriber name {name!r} must be a letter or _ then letters, digits, _ . or -")
        self.name = name
        self.streams, self.categories = tuple(streams), tuple(categories)
        try:
            self.settings = Settings(retries, backoff[0], backoff[1], break_after, cool_down, park)
        except InvalidInput as exc:
            raise ValueError(f"subscriber {name}: {exc}") from None
        self.handlers: dict[str, Handler] = {}
        self.upcast: Callable[[RecordedEvent], RecordedEvent] | None = None

    def __repr__(self) -> str:
        return f"Subscriber({self.name!r}, handles={list(self.handlers)})"

    def on(self, *event_types: str) -> Callable[[Handler], Handler]:
        """Decorator: the function handles events of these types."""
        if not event_types:
            raise ValueError(f"subscriber {self.name}: on() needs at least one event type")

        def register(handler: Handler) -> Handler:
            for event_type in event_types:
                if event_type in self.handlers:
                    raise ValueError(f"subscriber {self.name}: {event_type!r} already has a handler")
                self.handlers[event_type] = handler
            return handler

        return register

    @property
    def wanted(self) -> EventFilter:
        return EventFilter.of(self.streams, self.categories, sorted(self.handlers))

    def __call__(self, delivery: Delivery) -> Outcome:
        """Handle one delivery: the ConsumerRunner's handler."""
        event = decode(delivery.row)
        if self.upcast is not None:
            event = self.upcast(event)
        handler = self.handlers.get(event.type)
        if handler is not None:
            handler(event, Attempt(delivery.attempt, delivery.idempotency_key))
        return Outcome(True, 0)

    def run_in_memory(
        self, events: Iterable[NewEvent], *, clock: Clock | None = None
    ) -> tuple[Summary, list[Parked]]:
        """Deliver `events` as `esctl consume NAME --once` would, from a throwaway
        store, on `clock` (default: a ManualClock, so retries and the breaker's
        cool-down pass without waiting). Returns the run's Summary and what it
        parked."""
        import tempfile

        from esctl.store import EventStore
        from esctl.store.consumers import ConsumerStore
        from esctl.subscriptions.consumer import ConsumerRunner
        from esctl.subscriptions.resilience import ManualClock

        if self.upcast is None:
            self.upcast = _upcasters_of(self)

        with (
            tempfile.TemporaryDirectory(prefix="esctl-subscriber-") as directory,
            EventStore.open(f"{directory}/events.db", create=True) as store,
        ):
            for event in events:
                store.append(event.stream, [event])
            db = store.read_models(create=True)
            assert db is not None
            try:
                runner = ConsumerRunner(
                    store, db, self.name, self.wanted, self, self.settings, clock=clock or ManualClock()
                )
                summary = runner.run(once=True)
                return summary, ConsumerStore(db).parked(self.name, states=())
            finally:
                db.close()


def _upcasters_of(subscriber: Subscriber) -> Callable[[RecordedEvent], RecordedEvent] | None:
    """The upcasters of the module its handlers are defined in, as esctl consume
    would read events with --model pointing at it."""
    import sys

    from esctl.upcasting import Upcasters

    modules = {getattr(h, "__module__", None) for h in subscriber.handlers.values()}
    for name in modules:
        module = sys.modules.get(name) if name else None
        upcasters = Upcasters.from_module(module) if module is not None else None
        if upcasters:
            return upcasters.event
    return None


def subscribers_in(module: Any) -> list[Subscriber]:
    """The model's subscribers, each reading events through the model's upcasters."""
    from esctl.model import definitions

    found: list[Subscriber] = definitions(module, lambda value: isinstance(value, Subscriber))
    names = [s.name for s in found]
    for name in names:
        if names.count(name) > 1:
            raise InvalidInput(f"two subscribers are named {name!r}")
    if found:
        from esctl.upcasting import Upcasters

        upcasters = Upcasters.from_module(module)
        if upcasters:
            for subscriber in found:
                subscriber.upcast = upcasters.event
    return found
