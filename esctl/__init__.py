"""esctl: an append-only event store in one SQLite file.

The library face imports neither the CLI nor Rich, Typer or sqlite-utils::

    from esctl import EventStore, NewEvent
    with EventStore.open("events.db", create=True) as store:
        store.append("order-1", [NewEvent("order-1", "OrderCreated", {"total": 10})])
"""

from esctl.errors import (
    CommandRejected,
    ConcurrencyError,
    DuplicateEventId,
    EsctlError,
    InvalidInput,
    NotFound,
    StoreError,
    VerificationFailed,
    WrongExpectedVersion,
)
from esctl.events import ANY, EXISTS, NO_STREAM, NewEvent, RecordedEvent, category_of
from esctl.store import AppendResult, EventStore, ImportSummary, StreamSummary

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "EXISTS",
    "NO_STREAM",
    "AppendResult",
    "CommandRejected",
    "ConcurrencyError",
    "DuplicateEventId",
    "EsctlError",
    "EventStore",
    "ImportSummary",
    "InvalidInput",
    "NewEvent",
    "NotFound",
    "RecordedEvent",
    "StoreError",
    "StreamSummary",
    "VerificationFailed",
    "WrongExpectedVersion",
    "__version__",
    "category_of",
]
