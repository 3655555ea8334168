"""Where read models live: the interface every read-model backend offers the
projection engine (esctl.projections), and `open_read_models` that picks one.

A read-model database holds each projection's tables and a catalog,
`esctl_projections`: one row per projection with its checkpoint (the last
position applied), the fingerprint of the code that built it, the tables it
owns, its build generation and the event it failed on, if any. A projection's
table writes and its checkpoint change in one transaction of that database.

- SQLite (`store/sqlite/readmodels.py`): the store's own file, or another file
  (`--read-db`); the tables sit beside the events under their own names.
- PostgreSQL (`store/postgres/readmodels.py`): the store's database, one schema
  per projection (`<store schema>_<projection>`), the catalog beside the events.

SQL handed to a backend (by the table facade, or a handler's `where` fragments
and queries) is written in SQLite's placeholder style, `?` and `:name`: the one
a projection's author writes whatever the backend.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from esctl import codec

if TYPE_CHECKING:
    from esctl.store.protocol import EventStoreBackend

CATALOG = "esctl_projections"


@dataclass
class Record:
    """A projection's row in the catalog."""

    name: str
    checkpoint: int
    fingerprint: str
    tables: list[str]
    generation: int = 1
    failure: dict[str, Any] | None = None
    built_at: str = ""
    updated_at: str = ""

    COLUMNS: ClassVar[str] = (
        "name, checkpoint, fingerprint, tables, generation, failure, built_at, updated_at"
    )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Record:
        """A record from the catalog's columns (COLUMNS); tables and failure are JSON."""
        name, checkpoint, fingerprint, tables, generation, failure, built_at, updated_at = row
        failed = codec.loads(failure) if failure else None
        return cls(
            name, checkpoint, fingerprint, codec.loads(tables), generation, failed, built_at, updated_at
        )

    def to_row(self, now: str) -> tuple[Any, ...]:
        """The record as the catalog's columns, `now` its update time."""
        return (
            self.name,
            self.checkpoint,
            self.fingerprint,
            codec.dumps_text(self.tables),
            self.generation,
            codec.dumps_text(self.failure) if self.failure else None,
            self.built_at or now,
            now,
        )


class TableShape(Protocol):
    """What a backend needs to create a projection's table (projections.Table)."""

    name: str
    columns: Mapping[str, Any]
    not_null: tuple[str, ...]
    defaults: Mapping[str, Any]

    @property
    def key(self) -> tuple[str, ...]: ...

    def index_columns(self) -> list[tuple[str, ...]]: ...


class Cursor(Protocol):
    description: Any
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Target(Protocol):
    """One projection's tables as its handlers write them: the live tables, or the
    shadows a rebuild fills. While armed, handlers' statements may touch only these
    tables, and name them plainly (the shadows too)."""

    references: dict[str, str]  # declared name -> its SQL reference now
    refused: str | None  # what the guard refused, while armed

    def arm(self) -> None: ...

    def disarm(self) -> None: ...

    def paused(self) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...


class Savepoint(Protocol):
    def rollback(self) -> None:
        """Undo everything since the savepoint began; it stays open."""


class ReadModels(Protocol):
    conn: Any  # the backend's connection (sqlite3 or psycopg): handlers see it as db.conn
    location: str  # for messages: a path, or a URL without its password
    dialect: str  # "sqlite" or "postgresql": which SQL a handler's own statements need

    # --- SQL and transactions ------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Cursor: ...

    def insert_sql(
        self, verb: str, reference: str, columns: Sequence[str], key: Sequence[str], every: Sequence[str]
    ) -> str:
        """INSERT (verb "INSERT", "INSERT OR REPLACE" or "INSERT OR IGNORE", with
        SQLite's meaning) of `columns` into a table of `every` column and this
        primary `key`, with `?` placeholders."""

    def transaction(self, name: str | None = None) -> AbstractContextManager[None]:
        """A write transaction, committed on success, rolled back on any exception.
        `name` is the projection it is for: writers of one projection take turns."""

    def savepoint(self) -> AbstractContextManager[Savepoint]: ...

    def rollback(self) -> None: ...

    def translate(self, exc: BaseException) -> BaseException | None:
        """The esctl error for an environment failure (a full disk, a read-only
        database, a lost connection), or None when `exc` is not one."""

    def close(self) -> None: ...

    # --- the catalog ---------------------------------------------------------------
    def records(self) -> dict[str, Record]: ...

    def record(self, name: str, *, lock: bool = False) -> Record | None:
        """The projection's row; `lock` (in a transaction) holds it until the end."""

    def ensure_catalog(self) -> None: ...

    def save(self, record: Record) -> None: ...

    def move_checkpoint(self, name: str, checkpoint: int, fingerprint: str | None = None) -> None:
        """Move it (clearing a failure); a `fingerprint` is the code now adopted."""

    def record_failure(self, name: str, checkpoint: int, failure: dict[str, Any]) -> None:
        """Note the failing event in a transaction of its own, unless the projection
        moved on meanwhile."""

    def forget(self, name: str) -> None: ...

    # --- tables --------------------------------------------------------------------
    def present(self, name: str, *, shadow: bool = False) -> set[str]:
        """The (lower-cased) names of the tables the projection has now, live or
        the rebuild's shadows."""

    def check_ownership(self, name: str, tables: Sequence[str]) -> None:
        """InvalidInput for a table another projection owns, or that exists and is
        not this projection's: esctl never takes a table over."""

    def create_table(
        self, name: str, table: TableShape, generation: int, *, shadow: bool = False
    ) -> None: ...

    def drop_tables(self, name: str, tables: Sequence[str], *, shadow: bool = False) -> None: ...

    def target(self, name: str, tables: Sequence[str], *, shadow: bool = False) -> Target: ...

    def swap_in_shadows(self, name: str, old: Sequence[str], new: Sequence[str]) -> None:
        """Replace the live tables by the shadows (in the caller's transaction)."""

    def has_table(self, table: str) -> bool:
        """Whether one of esctl's own tables (beside the catalog) exists."""

    # --- leases: one runner of a subscription at a time ------------------------------
    def acquire_lease(self, name: str, seconds: float) -> str | None:
        """Take the lease on `name` if it is free (or its holder's time ran out):
        None when it is ours now, else who holds it, in words. The backend keeps
        it while it is held: SQLite renews it every third of `seconds` from a
        thread of its own, PostgreSQL ties it to the connection. A holder killed
        with -9 loses it within `seconds` (PostgreSQL: at once)."""

    def release_lease(self, name: str) -> None: ...

    def holds_lease(self, name: str) -> bool:
        """Inside a write transaction: whether this still holds the lease (a
        step that moves a checkpoint checks it there, so a runner that lost its
        lease cannot move one)."""

    def lease_holder(self, name: str) -> str | None:
        """Who holds the lease on `name` now, in words, or None."""

    # --- rebuild claims ------------------------------------------------------------
    def claim_rebuild(self, name: str) -> None:
        """Claim the rebuild of the projection until release_rebuild (or this
        process ends); ConcurrencyError when another holds it."""

    def release_rebuild(self, name: str) -> None: ...

    def holds_rebuild(self, name: str) -> bool:
        """Inside a write transaction: whether this still holds the claim."""

    def rebuilder(self, name: str) -> str | None:
        """Who is rebuilding the projection, in words, or None."""

    # --- verifying -----------------------------------------------------------------
    def scratch(self, count: int) -> AbstractContextManager[list[ReadModels]]:
        """`count` empty read-model databases to rebuild into, gone afterwards."""

    def compare(self, name: str, rebuilds: Sequence[ReadModels]) -> AbstractContextManager[Comparison]:
        """The live tables and two rebuilds (from `scratch`) in one consistent read."""


class Comparison(Protocol):
    """A projection's live tables ("live") and two rebuilds ("rebuilt", "again")."""

    def record(self) -> Record | None:
        """The live catalog row, as of this comparison's read."""

    def columns(self, table: str, side: str) -> list[str]:
        """The table's columns on that side (empty when it does not exist)."""

    def count(self, table: str) -> int:
        """Live rows of the table."""

    def differences(
        self, table: str, key: Sequence[str], columns: Sequence[str], side: str
    ) -> Iterator[tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any] | None, list[str]]]:
        """The rebuilt table against `side`'s, rows matched on `key` (keyless
        tables as a multiset of rows where the backend has no row order):
        (kind, key, side's row, rebuilt row, changed columns), kind "missing"
        (not on `side`), "extra" (on `side` only) or "different"."""


def open_read_models(store: EventStoreBackend, read_db: str | None, *, create: bool) -> ReadModels | None:
    """The store's read models: in `read_db` (a SQLite file) when given, else
    where the store lives. None when they do not exist yet and `create` is false."""
    if read_db is None:
        return store.read_models(create=create)
    from esctl.errors import NotFound
    from esctl.store.sqlite.readmodels import SQLiteReadModels

    try:
        return SQLiteReadModels.open(read_db, create=create)
    except NotFound:
        return None
