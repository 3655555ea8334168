"""What a handler writes through: `db["table"].upsert(row)` and friends.

The methods mirror sqlite-utils' Table (insert, upsert, update, delete, get,
rows_where, delete_where), on SQLite and PostgreSQL read models alike, but rows are
not written one statement at a time: writes go into an ordered queue, and runs of
the same statement are sent with one `executemany`. Anything that reads (get,
rows_where, count, query, the sqlite-utils Table itself) flushes the queue first, so
a handler always sees its own writes. The runner flushes at the end of each batch,
inside the transaction that also moves the checkpoint.

A failure inside a deferred `executemany` cannot name its event, so the runner then
replays the batch with `immediate=True` (each write executed at once) to find it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from esctl import codec
from esctl.projections.definition import Table, quote

if TYPE_CHECKING:
    from esctl.store.readmodels import ReadModels, Target

_PLAIN = frozenset({str, int, float, type(None), bytes})


class ProjectionWriteError(Exception):
    """A write a handler asked for is impossible (unknown column, missing row, no key)."""


class TableWriter:
    """One owned table, as a handler sees it."""

    def __init__(self, tables: Tables, table: Table, reference: str) -> None:
        self._tables = tables
        self.definition = table
        self.declared_name = table.name
        self.quoted = reference  # the table in SQL right now (a shadow during rebuild)
        self._key = table.key
        self._sql: dict[tuple[Any, ...], str] = {}
        self._upserts: dict[tuple[str, ...], str] = {}

    def __repr__(self) -> str:
        return f"<table {self.declared_name}>"

    # --- writes (queued) -------------------------------------------------------------

    def insert(self, row: Mapping[str, Any], *, replace: bool = False, ignore: bool = False) -> None:
        """Insert a row; a clash on the primary key fails unless `replace` or `ignore`."""
        keys = tuple(row)
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE" if ignore else "INSERT"
        sql = self._sql.get((verb, keys)) or self._build_insert(verb, keys)
        self._tables._write(sql, _values(row.values()))

    def upsert(self, row: Mapping[str, Any]) -> None:
        """Insert the row, or update the given columns of the row with the same key."""
        keys = tuple(row)
        sql = self._upserts.get(keys) or self._build_upsert(keys)
        tables = self._tables
        if sql is tables._sql and not tables.immediate:  # the common case: a run of upserts
            tables._rows.append(_values(row.values()))
        else:
            tables._write(sql, _values(row.values()))

    def update(self, pk: Any, updates: Mapping[str, Any]) -> None:
        """Change some columns of the row with this key; the row must exist."""
        if not updates:
            return
        keys = tuple(updates)
        sql = self._sql.get(("update", keys)) or self._build_update(keys)
        self._tables._write(sql, (*_values(updates.values()), *self._key_values(pk)), (self, pk))

    def delete(self, pk: Any) -> None:
        """Delete the row with this key (nothing happens if there is none)."""
        sql = self._sql.get(("delete",)) or self._build_delete()
        self._tables._write(sql, self._key_values(pk))

    def delete_where(self, where: str | None = None, params: Any = ()) -> None:
        self._tables.flush()
        sql = f"DELETE FROM {self.quoted}" + (f" WHERE {where}" if where else "")
        self._tables.db.execute(sql, params)

    # --- reads (flush first) ---------------------------------------------------------

    def get(self, pk: Any, default: Any = None) -> dict[str, Any] | Any:
        """The row with this key as a dict, or `default`."""
        self._tables.flush()
        sql = self._sql.get(("get",)) or self._build_get()
        cursor = self._tables.db.execute(sql, self._key_values(pk))
        row = cursor.fetchone()
        if row is None:
            return default
        return dict(zip([d[0] for d in cursor.description], row, strict=True))

    def rows_where(
        self, where: str | None = None, params: Any = (), *, order_by: str | None = None
    ) -> Iterator[dict[str, Any]]:
        self._tables.flush()
        sql = f"SELECT * FROM {self.quoted}" + (f" WHERE {where}" if where else "")
        if order_by:
            sql += f" ORDER BY {order_by}"
        return self._tables._dicts(sql, params)

    def count_where(self, where: str | None = None, params: Any = ()) -> int:
        self._tables.flush()
        sql = f"SELECT count(*) FROM {self.quoted}" + (f" WHERE {where}" if where else "")
        return self._tables.db.execute(sql, params).fetchone()[0]

    @property
    def count(self) -> int:
        return self.count_where()

    @property
    def table(self) -> Any:
        """The sqlite-utils Table over this table, for anything the facade lacks
        (SQLite read models only)."""
        database = self._tables.sqlite
        return database[self._tables.target.names[self.declared_name]]  # type: ignore[attr-defined]

    # --- SQL, built once per shape ---------------------------------------------------

    def _check_columns(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            if key not in self.definition.columns:
                raise ProjectionWriteError(
                    f"table {self.declared_name} has no column {key!r}"
                    f" (columns: {', '.join(self.definition.columns)})"
                )

    def _need_key(self, what: str) -> tuple[str, ...]:
        if not self._key:
            raise ProjectionWriteError(f"table {self.declared_name} has no pk: {what} needs one")
        return self._key

    def _key_values(self, pk: Any) -> tuple[Any, ...]:
        key = self._need_key("a lookup by key")
        values = tuple(pk) if isinstance(pk, (tuple, list)) else (pk,)
        if len(values) != len(key):
            raise ProjectionWriteError(
                f"table {self.declared_name}: its key is ({', '.join(key)}), got {pk!r}"
            )
        return _values(values)

    def _build_insert(self, verb: str, keys: tuple[str, ...]) -> str:
        self._check_columns(keys)
        sql = self._tables.db.insert_sql(verb, self.quoted, keys, self._key, tuple(self.definition.columns))
        self._sql[(verb, keys)] = sql
        return sql

    def _build_upsert(self, keys: tuple[str, ...]) -> str:
        self._check_columns(keys)
        key = self._need_key("upsert")
        missing = [k for k in key if k not in keys]
        if missing:
            raise ProjectionWriteError(f"upsert into {self.declared_name}: the row lacks key {missing[0]!r}")
        columns = ", ".join(quote(k) for k in keys)
        changes = ", ".join(f"{quote(k)} = excluded.{quote(k)}" for k in keys if k not in key)
        sql = (
            f"INSERT INTO {self.quoted} ({columns}) VALUES ({', '.join('?' * len(keys))})"
            f" ON CONFLICT ({', '.join(quote(k) for k in key)}) DO "
            + (f"UPDATE SET {changes}" if changes else "NOTHING")
        )
        self._upserts[keys] = sql
        return sql

    def _build_update(self, keys: tuple[str, ...]) -> str:
        self._check_columns(keys)
        sql = (
            f"UPDATE {self.quoted} SET {', '.join(f'{quote(k)} = ?' for k in keys)} WHERE {self._where_key()}"
        )
        self._sql[("update", keys)] = sql
        return sql

    def _build_delete(self) -> str:
        sql = f"DELETE FROM {self.quoted} WHERE {self._where_key()}"
        self._sql[("delete",)] = sql
        return sql

    def _build_get(self) -> str:
        sql = f"SELECT * FROM {self.quoted} WHERE {self._where_key()}"
        self._sql[("get",)] = sql
        return sql

    def _where_key(self) -> str:
        return " AND ".join(f"{quote(k)} = ?" for k in self._need_key("this"))


class Tables:
    """The `db` a handler receives: `db["name"]` is one of the projection's tables."""

    def __init__(self, db: ReadModels, tables: Mapping[str, Table], target: Target) -> None:
        self.db = db
        self.conn = db.conn  # the backend's own connection, for what the facade lacks
        self.target = target
        self.immediate = False
        self._writers = {
            name: TableWriter(self, table, target.references[name]) for name, table in tables.items()
        }
        self._sql: str | None = None
        self._rows: list[tuple[Any, ...]] = []
        self._check: tuple[TableWriter, Any] | None = None
        self._sqlite: Any = None

    def __getitem__(self, name: str) -> TableWriter:
        try:
            return self._writers[name]
        except KeyError:
            raise ProjectionWriteError(
                f"this projection does not own a table {name!r} (it owns: {', '.join(self._writers)})"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._writers

    def __iter__(self) -> Iterator[str]:
        return iter(self._writers)

    def query(self, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
        """Rows of a read-only query as dicts. Name the tables plainly: during a
        rebuild the names show the tables being rebuilt."""
        self.flush()
        return self._dicts(sql, params)

    @property
    def sqlite(self) -> Any:
        """A sqlite-utils Database on the same connection and transaction (SQLite
        read models only)."""
        if self.db.dialect != "sqlite":
            raise ProjectionWriteError(
                f"db.sqlite is for SQLite read models; these are in {self.db.dialect}:"
                " use the table methods, db.query, or db.conn"
            )
        self.flush()
        if self._sqlite is None:
            self._sqlite = self._database()
        return self._sqlite

    def _database(self) -> Any:
        import sqlite_utils

        # Opening it sets a pragma, and its first upsert probes SQLite with a scratch
        # table: both are esctl's doing, so they run before the handler's guard sees
        # them (inside the batch's transaction, which rolls back with the batch).
        with self.target.paused():
            db = sqlite_utils.Database(self.conn)
            db.supports_on_conflict  # noqa: B018 - computed and cached now, unguarded
            db.supports_strict  # noqa: B018
        return db

    def _dicts(self, sql: str, params: Any) -> Iterator[dict[str, Any]]:
        cursor = self.db.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return (dict(zip(names, row, strict=True)) for row in cursor.fetchall())

    # --- the write queue -----------------------------------------------------------

    def _write(self, sql: str, values: tuple[Any, ...], check: tuple[TableWriter, Any] | None = None) -> None:
        """Queue one write; `check` (for update) names the row that must exist."""
        if self.immediate:
            cursor = self.db.execute(sql, values)
            if check is not None and cursor.rowcount == 0:
                raise _missing(*check)
            return
        if sql is not self._sql:
            if self._rows:
                self.flush()
            self._sql = sql
            self._check = check
        self._rows.append(values)

    def flush(self) -> None:
        """Send queued writes, in order: one executemany per run of the same statement."""
        if not self._rows:
            return
        sql, rows, check = self._sql, self._rows, self._check
        self._sql, self._rows, self._check = None, [], None
        assert sql is not None
        cursor = self.db.execute(sql, rows[0]) if len(rows) == 1 else self.db.executemany(sql, rows)
        if check is not None and cursor.rowcount != len(rows):
            # Some update found no row; if several were queued, the runner's
            # immediate replay finds which.
            raise _missing(*check) if len(rows) == 1 else ProjectionWriteError("an update found no row")

    def discard(self) -> None:
        self._sql, self._rows, self._check = None, [], None


def _missing(writer: TableWriter, pk: Any) -> ProjectionWriteError:
    return ProjectionWriteError(f"update of {writer.declared_name}: no row with key {pk!r}")


def _values(values: Any) -> tuple[Any, ...]:
    """Python values as SQLite values: JSON for dicts and lists, exact text for Decimal."""
    out = tuple(values)
    if _PLAIN.issuperset(map(type, out)):
        return out
    return tuple(_convert(v) for v in out)


def _convert(value: Any) -> Any:
    if type(value) in _PLAIN or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, (dict, list, tuple)):
        return codec.dumps_text(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    return str(value)
