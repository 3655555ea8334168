"""The SQLite backend: one file, WAL, its guarantees in its schema."""

from esctl.store.results import AppendResult, ImportSummary, StreamSummary
from esctl.store.sqlite.store import EventStore

__all__ = ["AppendResult", "EventStore", "ImportSummary", "StreamSummary"]
