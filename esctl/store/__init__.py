"""Event store backends. SQLite is the one backend; its contract lives in tests/store_contract.py."""

from esctl.store.sqlite import AppendResult, EventStore, ImportSummary, StreamSummary

__all__ = ["AppendResult", "EventStore", "ImportSummary", "StreamSummary"]
