"""Defining a projection in a user's model module: a name, the tables it owns and one
handler per event type.

    from esctl.projections import Projection, Table

    balances = Projection(
        "balances",
        Table("balances", {"account": str, "balance": int, "version": int}, pk="account"),
    )

    @balances.on("Deposited")
    def deposited(event, db):
        row = db["balances"].get(event.stream)
        db["balances"].update(event.stream, {"balance": row["balance"] + event.data["amount"]})

A handler receives the event envelope (esctl.RecordedEvent) and a `Tables` facade
over the projection's own tables (see esctl.projections.tables). Handlers are plain
functions: call them with any object that has the same methods to test them, or use
`Projection.run_in_memory(events)` for a given/when/then test on an in-memory SQLite.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from esctl.errors import InvalidInput
from esctl.fingerprint import fingerprint
from esctl.subscriptions.resilience import Retry

if TYPE_CHECKING:
    from esctl.events import RecordedEvent
    from esctl.projections.tables import Tables

Handler = Callable[["RecordedEvent", "Tables"], Any]

# Plain SQL identifiers only, so a name never needs more than quoting.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_PROJECTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
# The store's own tables and SQLite's; shadow tables of a rebuild are esctl_shadow_*.
RESERVED_TABLES = frozenset({"events"})
RESERVED_PREFIXES = ("esctl_", "sqlite_")


# Column types a Table may declare (SQL names in upper case).
COLUMN_TYPES = frozenset(
    {str, int, float, bool, bytes, dict, list, "TEXT", "INTEGER", "REAL", "FLOAT", "BLOB"}
)


def check_table_name(name: object) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"table name {name!r} must be a letter or _ then letters, digits or _ (at most 63)")
    if name.lower() in RESERVED_TABLES or name.lower().startswith(RESERVED_PREFIXES):
        raise ValueError(f"table name {name!r} is reserved for the event store (events, esctl_*, sqlite_*)")
    return name


def check_column_name(name: object, table: str) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"table {table}: column name {name!r} must be a plain identifier")
    return name


def quote(identifier: str) -> str:
    """An identifier quoted for SQL (names are validated too; this is belt and braces)."""
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class Table:
    """A read-model table a projection owns.

    `columns` maps column names to a Python type (str, int, float, bool, bytes, dict,
    list) or an SQL type name ("TEXT", "INTEGER", "REAL", "FLOAT", "BLOB"): the types
    every read-model backend stores alike.
    `pk` (a column or a tuple of columns) is needed for upsert, update, delete and get.
    `indexes` lists columns (or tuples of columns) to index.
    """

    name: str
    columns: Mapping[str, Any]
    pk: str | tuple[str, ...] | None = None
    indexes: tuple[str | tuple[str, ...], ...] = ()
    not_null: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_table_name(self.name)
        if not self.columns:
            raise ValueError(f"table {self.name}: give at least one column")
        object.__setattr__(self, "columns", dict(self.columns))
        object.__setattr__(self, "defaults", dict(self.defaults))
        object.__setattr__(self, "indexes", tuple(self.indexes))
        object.__setattr__(self, "not_null", tuple(self.not_null))
        for column, kind in self.columns.items():
            check_column_name(column, self.name)
            if kind not in COLUMN_TYPES and not (isinstance(kind, str) and kind.upper() in COLUMN_TYPES):
                raise ValueError(
                    f"table {self.name}: column {column!r} has type {kind!r}; give one of"
                    " str, int, float, bool, bytes, dict, list, TEXT, INTEGER, REAL, FLOAT, BLOB"
                )
        for column in (*self.key, *self.not_null, *self.defaults):
            self._known(column)
        for index in self.indexes:
            for column in (index,) if isinstance(index, str) else index:
                self._known(column)

    def _known(self, column: str) -> None:
        if column not in self.columns:
            raise ValueError(f"table {self.name}: {column!r} is not one of its columns")

    @property
    def key(self) -> tuple[str, ...]:
        """The primary-key columns (empty for a table without one)."""
        if self.pk is None:
            return ()
        return (self.pk,) if isinstance(self.pk, str) else tuple(self.pk)

    def index_columns(self) -> list[tuple[str, ...]]:
        return [(index,) if isinstance(index, str) else tuple(index) for index in self.indexes]

    def describe(self) -> str:
        """A stable text form for the fingerprint."""
        columns = ",".join(f"{name}:{_type_name(kind)}" for name, kind in self.columns.items())
        return (
            f"table {self.name}({columns}) pk={self.key} indexes={self.index_columns()}"
            f" not_null={sorted(self.not_null)} defaults={sorted(self.defaults.items(), key=repr)}"
        )


def _type_name(kind: Any) -> str:
    return kind if isinstance(kind, str) else getattr(kind, "__name__", repr(kind))


class Projection:
    """A named read model: the tables it owns and a handler per event type.

    `categories` limits it to streams of those categories (None: every stream).
    Bump `version` to force a rebuild when something outside the handlers' source
    changed what they compute (data files, another module).

    A handler that fails is retried `retries` times (default none: a handler that
    reads only its event fails the same way every time) with backoff and a
    breaker (esctl.subscriptions.resilience), then the projection stops on that
    event as `failed`. It never parks an event and moves on: a read model that
    skipped one would be silently wrong.
    """

    def __init__(
        self,
        name: str,
        *tables: Table,
        categories: Iterable[str] | None = None,
        version: int | str = 1,
        description: str = "",
        retries: int = 0,
        backoff: tuple[float, float] = (1.0, 60.0),
        break_after: int = 5,
        cool_down: float = 30.0,
    ) -> None:
        if not isinstance(name, str) or not _PROJECTION_NAME.fullmatch(name):
            raise ValueError(f"projection name {name!r} must be a letter or _ then letters, digits, _ . or -")
        if not tables:
            raise ValueError(f"projection {name}: give at least one Table it owns")
        names = [t.name.lower() for t in tables]
        if len(set(names)) != len(names):
            raise ValueError(f"projection {name}: a table is listed twice")
        try:
            self.retry = Retry(retries, backoff[0], backoff[1], break_after, cool_down)
        except InvalidInput as exc:
            raise ValueError(f"projection {name}: {exc}") from None
        self.name = name
        self.tables: dict[str, Table] = {t.name: t for t in tables}
        self.categories = tuple(categories) if categories is not None else None
        self.version = version
        self.description = description
        self.handlers: dict[str, Handler] = {}
        # Set by `using`: how stored events are read (upcasting) and the code that does it.
        self.upcast: Callable[[RecordedEvent], RecordedEvent] | None = None
        self.reader_code: tuple[Callable[..., Any], ...] = ()
        self._fingerprint: str | None = None

    def using(
        self,
        upcast: Callable[[RecordedEvent], RecordedEvent] | None,
        code: Iterable[Callable[..., Any]] = (),
    ) -> Projection:
        """This projection reading events through `upcast` (the model's upcasters);
        `code` (the upcaster functions for its types) joins the fingerprint, so a
        changed upcaster makes the read model stale too."""
        bound = copy.copy(self)
        bound.upcast = upcast
        bound.reader_code = tuple(code)
        bound._fingerprint = None
        return bound

    def __repr__(self) -> str:
        return f"Projection({self.name!r}, tables={list(self.tables)}, handles={list(self.handlers)})"

    def on(self, *event_types: str) -> Callable[[Handler], Handler]:
        """Decorator: the function handles events of these types."""
        if not event_types:
            raise ValueError(f"projection {self.name}: on() needs at least one event type")

        def register(handler: Handler) -> Handler:
            for event_type in event_types:
                if event_type in self.handlers:
                    raise ValueError(f"projection {self.name}: {event_type!r} already has a handler")
                self.handlers[event_type] = handler
            self._fingerprint = None
            return handler

        return register

    @property
    def event_types(self) -> list[str]:
        return list(self.handlers)

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = self._compute_fingerprint()
        return self._fingerprint

    def _compute_fingerprint(self) -> str:
        parts = [f"projection {self.name} v{self.version} categories={self.categories}"]
        parts += [table.describe() for table in self.tables.values()]
        parts += [f"on {event_type} -> {h.__qualname__}" for event_type, h in sorted(self.handlers.items())]
        return fingerprint([*(self.handlers[t] for t in sorted(self.handlers)), *self.reader_code], parts)

    def run_in_memory(self, events: Iterable[RecordedEvent]) -> dict[str, list[dict[str, Any]]]:
        """Apply events to fresh tables in an in-memory SQLite and return every table's
        rows (ordered by primary key, else by insertion): for tests of handlers."""
        from esctl.projections.memory import run_in_memory

        return run_in_memory(self, events)


def projections_in(module: Any, *, upcasting: bool = True) -> list[Projection]:
    """The projections a model module defines, checked for clashing names and tables.
    With `upcasting`, each reads events through the module's upcasters (as replay
    does), and those upcasters join its fingerprint."""
    from esctl.model import definitions

    found: list[Projection] = definitions(module, lambda value: isinstance(value, Projection))
    by_name: dict[str, Projection] = {}
    owner: dict[str, str] = {}
    for projection in found:
        if projection.name in by_name:
            raise InvalidInput(f"two projections are named {projection.name!r}")
        by_name[projection.name] = projection
        for table in projection.tables:
            other = owner.get(table.lower())
            if other is not None:
                raise InvalidInput(
                    f"table {table!r} is owned by projection {other!r}; projection"
                    f" {projection.name!r} cannot own it too"
                )
            owner[table.lower()] = projection.name
    if upcasting and found:
        from esctl.upcasting import Upcasters

        upcasters = Upcasters.from_module(module)
        if upcasters:
            found = [p.using(upcasters.event, upcasters.functions(p.event_types)) for p in found]
    return found


def pick(projections: list[Projection], names: Iterable[str]) -> list[Projection]:
    """The named projections, in the order given; NotFound for an unknown name."""
    from esctl.errors import NotFound

    by_name = {p.name: p for p in projections}
    chosen = []
    for name in names:
        if name not in by_name:
            known = ", ".join(by_name) or "none"
            raise NotFound(f"no projection named {name!r} in the model (defined: {known})")
        if by_name[name] not in chosen:
            chosen.append(by_name[name])
    return chosen
