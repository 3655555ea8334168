"""Event store backends, one package each (`store/sqlite/`); the contract every
backend keeps lives in tests/store_contract.py. `open(url)` picks the backend."""

from __future__ import annotations

import os

from esctl.store.sqlite import AppendResult, EventStore, ImportSummary, StreamSummary


def open(url: str | os.PathLike[str], *, create: bool = False) -> EventStore:
    """The store named by `url`, as `--db` and ESCTL_DB give it: a path, or
    `sqlite:///path` (`sqlite:////abs/path` for an absolute one), for SQLite.
    Other schemes are refused with InvalidInput until their backend exists."""
    from esctl.errors import InvalidInput

    text = os.fspath(url)
    scheme, sep, rest = text.partition("://")
    if not sep or os.path.sep in scheme or "/" in scheme:  # a plain path
        return EventStore.open(text, create=create)
    if scheme == "sqlite":
        if not rest.startswith("/"):
            raise InvalidInput(f"a sqlite URL is sqlite:///PATH, got {text!r}")
        return EventStore.open(rest[1:] or ".", create=create)
    raise InvalidInput(f"no esctl backend for {scheme}:// URLs (a path or sqlite:///PATH opens SQLite)")


__all__ = ["AppendResult", "EventStore", "ImportSummary", "StreamSummary", "open"]
