"""Event store backends, one package each (`store/sqlite/`, `store/postgres/`); the
contract every backend keeps lives in tests/store_contract.py. `open(url)` picks
the backend."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from esctl.store.results import AppendResult, ImportSummary, StreamSummary
from esctl.store.sqlite import EventStore

if TYPE_CHECKING:
    from esctl.store.protocol import EventStoreBackend

POSTGRES_SCHEMES = ("postgresql", "postgres")


def open(url: str | os.PathLike[str], *, create: bool = False) -> EventStoreBackend:
    """The store named by `url`, as `--db` and ESCTL_DB give it: a path, or
    `sqlite:///path` (`sqlite:////abs/path` for an absolute one), for SQLite;
    `postgresql://...` (a libpq URL: password from PGPASSWORD or ~/.pgpass as
    libpq finds it) for PostgreSQL, whose driver is imported only then."""
    from esctl.errors import InvalidInput

    text = os.fspath(url)
    scheme, sep, rest = text.partition("://")
    if not sep or os.path.sep in scheme or "/" in scheme:  # a plain path
        return EventStore.open(text, create=create)
    if scheme == "sqlite":
        if not rest.startswith("/"):
            raise InvalidInput(f"a sqlite URL is sqlite:///PATH, got {text!r}")
        return EventStore.open(rest[1:] or ".", create=create)
    if scheme in POSTGRES_SCHEMES:
        try:
            from esctl.store.postgres import PostgresStore
        except ImportError as exc:
            from esctl.errors import StoreError

            raise StoreError(
                f"{scheme}:// stores need psycopg ({exc.name} is not installed): pip install 'esctl[postgres]'"
            ) from None
        return PostgresStore.open(text, create=create)
    raise InvalidInput(
        f"no esctl backend for {scheme}:// URLs (a path or sqlite:///PATH opens SQLite,"
        " postgresql://... PostgreSQL)"
    )


__all__ = ["AppendResult", "EventStore", "ImportSummary", "StreamSummary", "open"]
