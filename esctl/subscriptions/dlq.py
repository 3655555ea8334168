"""Re-driving and giving up parked events (`esctl dlq retry / skip`), each step in
the event's history, in the same transaction as the consumer's own moves take."""

from __future__ import annotations

from esctl.errors import InvalidInput, NotFound
from esctl.store.consumers import Consumer, ConsumerStore, Parked, history_entry
from esctl.store.readmodels import ReadModels


def retry(db: ReadModels, state: ConsumerStore, consumer: Consumer, position: int | None) -> list[int]:
    """Put the parked event at `position` (None: every parked and held one) back
    in line; in `stream` mode the events held behind it go with it. Returns the
    positions, in the order they will be delivered."""
    with db.transaction(f"consumer:{consumer.name}"):
        waiting = state.parked(consumer.name, states=("parked", "held"))
        if position is None:
            chosen = waiting
        else:
            first = _waiting(state, consumer, position, ("parked", "held"))
            chosen = [first, *_behind(consumer, waiting, first)]
        for parked in chosen:
            parked.state = "retry"
            parked.history.append(history_entry("retry requested"))
            state.update(parked)
    return [p.position for p in chosen]


def skip(db: ReadModels, state: ConsumerStore, consumer: Consumer, position: int) -> list[int]:
    """Give up the event at `position`; in `stream` mode the events held behind
    it go back in line. Returns those positions."""
    with db.transaction(f"consumer:{consumer.name}"):
        parked = _waiting(state, consumer, position, ("parked", "held", "retry"))
        parked.state = "skipped"
        parked.history.append(history_entry("skipped"))
        state.update(parked)
        released = _behind(consumer, state.parked(consumer.name, states=("held",)), parked)
        for held in released:
            held.state = "retry"
            held.history.append(history_entry("released", skipped=position))
            state.update(held)
    return [p.position for p in released]


def _waiting(state: ConsumerStore, consumer: Consumer, position: int, states: tuple[str, ...]) -> Parked:
    parked = state.one(consumer.name, position)
    if parked is None:
        raise NotFound(f"consumer {consumer.name!r} has parked no event at position {position}")
    if parked.state not in states:
        raise InvalidInput(
            f"the event at position {position} of consumer {consumer.name!r} is {parked.state}, not {' or '.join(states)}"
        )
    return parked


def _behind(consumer: Consumer, rows: list[Parked], first: Parked) -> list[Parked]:
    """The held events of `first`'s stream after it, in `stream` mode."""
    if consumer.park_mode != "stream":
        return []
    return [p for p in rows if p.stream == first.stream and p.position > first.position and p.state == "held"]
