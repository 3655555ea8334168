"""The SQLite backend: one file, WAL, its guarantees in its schema."""

from esctl.store.sqlite.store import AppendResult, EventStore, ImportSummary, StreamSummary

__all__ = ["AppendResult", "EventStore", "ImportSummary", "StreamSummary"]
