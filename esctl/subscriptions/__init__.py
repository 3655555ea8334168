"""Subscriptions: reading the log as it grows, for anything that reacts to events.

`EventFilter` says which events a reader wants; `follow` yields them as they are
committed, woken by the store's change feed; a `Subscriber` in the model handles
them in Python with retries, a breaker and parking (esctl.subscriptions.consumer).
Importing this package loads no CLI library.
"""

from esctl.subscriptions.definition import Attempt, Subscriber, subscribers_in
from esctl.subscriptions.filter import EventFilter
from esctl.subscriptions.follow import follow
from esctl.subscriptions.published import Published, check_contract
from esctl.subscriptions.resilience import ManualClock

__all__ = [
    "Attempt",
    "EventFilter",
    "ManualClock",
    "Published",
    "Subscriber",
    "check_contract",
    "follow",
    "subscribers_in",
]
