"""Resetting a projection: drop its tables (and any shadow tables) and its checkpoint."""

from __future__ import annotations

from esctl.errors import ConcurrencyError
from esctl.store.readmodels import ReadModels


def reset(db: ReadModels, name: str) -> list[str] | None:
    """Drop the projection's tables and catalog row in one transaction; returns the
    tables dropped, or None when the read models know no projection of that name.
    ConcurrencyError while a rebuild of it runs: its shadow tables are not ours to drop."""
    _refuse_while_rebuilt(db, name)  # at once, not after the rebuild's lock
    with db.transaction(name):
        _refuse_while_rebuilt(db, name)
        rec = db.record(name, lock=True)
        if rec is None:
            return None
        present = db.present(name)
        dropped = [t for t in rec.tables if t.lower() in present]
        db.drop_tables(name, rec.tables)
        db.drop_tables(name, rec.tables, shadow=True)
        db.forget(name)
    return dropped


def _refuse_while_rebuilt(db: ReadModels, name: str) -> None:
    holder = db.rebuilder(name)
    if holder is not None:
        raise ConcurrencyError(
            f"cannot reset projection {name!r}: it is being rebuilt by {holder}: wait for it to finish"
        )
