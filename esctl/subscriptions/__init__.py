"""Subscriptions: reading the log as it grows, for anything that reacts to events.

`EventFilter` says which events a reader wants; `follow` yields them as they are
committed, woken by the store's change feed. Importing this package loads no CLI
library.
"""

from esctl.subscriptions.filter import EventFilter
from esctl.subscriptions.follow import follow

__all__ = ["EventFilter", "follow"]
