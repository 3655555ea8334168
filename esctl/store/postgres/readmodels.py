"""Read models in the store's PostgreSQL database, one schema per projection.

- **Where:** projection P of a store in schema S keeps its tables in schema
  `S_P` (so `psql` reads `"public_balances".balances`, and `esctl query` finds
  them by plain name); the catalog `esctl_projections` sits beside the events in S.
  A connection of its own, so a batch's transaction never holds the store's.
- **One writer per projection:** each write transaction for P first takes a
  transaction-level advisory lock on P's name, so two runners of P take turns
  (the second sees the checkpoint moved and goes on from there), while runners of
  other projections go on in parallel.
- **Rebuild:** the shadows are the same tables in schema `S_P__rebuild`; the swap
  drops each old table and moves its shadow into `S_P` (without CASCADE: a view
  a user built on a read model makes the swap fail rather than vanish). The claim
  is a session-level advisory lock: it ends with the rebuilding connection, so a
  rebuild killed with -9 blocks nobody.
- **The handler guard** is the search path, set to the projection's own schema
  for the batch: a plain name finds only its own tables (never `events`), and
  while a handler runs only statements that read or write rows pass (no COMMIT,
  SET, DDL). It guards against mistakes: a schema-qualified name, a function
  with side effects in a SELECT, or `db.conn` get past it (a role without rights
  on other schemas is the guard against that). Exactly-once does not rest on it:
  each batch locks its catalog row (FOR UPDATE) until it commits.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import errors
from psycopg import sql as pgsql

from esctl import codec
from esctl.errors import ConcurrencyError, InvalidInput, StoreError
from esctl.events import utc_now
from esctl.store.postgres.failures import classify, translated
from esctl.store.postgres.query import psycopg_style
from esctl.store.postgres.store import PostgresStore, connect
from esctl.store.readmodels import CATALOG, Record, TableShape

SHADOW_SUFFIX = "__rebuild"
_MAX_NAME = 63  # bytes in a PostgreSQL identifier
_COLUMNS = Record.COLUMNS
_CATALOG_DDL = """
CREATE TABLE {catalog} (
    name        text    COLLATE "C" PRIMARY KEY,
    checkpoint  bigint  NOT NULL DEFAULT 0,
    fingerprint text    NOT NULL,
    tables      text    NOT NULL,
    generation  integer NOT NULL DEFAULT 1,
    failure     text,
    built_at    text    NOT NULL,
    updated_at  text    NOT NULL
)
"""
# Python types (and SQLite's type names) as PostgreSQL column types. Dicts and lists
# are stored as their JSON text, as on SQLite.
_TYPES: dict[Any, str] = {
    str: "text",
    int: "bigint",
    float: "double precision",
    bool: "boolean",
    bytes: "bytea",
    dict: "text",
    list: "text",
    "TEXT": "text",
    "INTEGER": "bigint",
    "REAL": "double precision",
    "FLOAT": "double precision",
    "BLOB": "bytea",
}
# What a handler's own statements may be while it runs: reading and row writes.
_HANDLER_VERBS = frozenset({"SELECT", "WITH", "VALUES", "TABLE", "INSERT", "UPDATE", "DELETE"})
_FIRST_WORD = re.compile(r"(?:\s|--[^\n]*|/\*.*?\*/)*([A-Za-z]+)", re.S)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _lock_key(*parts: str) -> pgsql.Composable:
    # Each part with its length first: no two lists of names give the same text.
    text = "esctl:" + "".join(f"{len(part)}:{part}" for part in parts)
    return pgsql.SQL("hashtextextended({}, 0)").format(pgsql.Literal(text))


class PostgresReadModels:
    dialect = "postgresql"

    def __init__(
        self, conn: psycopg.Connection, location: str, namespace: str, *, only_schema: str | None = None
    ) -> None:
        self.conn = conn
        self.location = location
        self.namespace = namespace  # the schema of the catalog; projections' schemas start with it
        self._only_schema = only_schema  # scratch read models: one projection, in this schema
        self._search_path = conn.execute("SHOW search_path").fetchone()[0]  # restored after a handler
        self.catalog = f"{_quote(namespace)}.{CATALOG}"
        self._has_catalog = False
        self._armed: _Target | None = None
        self._claims: set[str] = set()
        self._leases: set[str] = set()

    @classmethod
    def open(cls, store: PostgresStore, *, create: bool) -> PostgresReadModels:
        conn = connect(store.path)
        try:
            with translated(store.location):
                conn.execute(
                    "SELECT set_config('application_name', %s, false)",
                    (f"esctl (pid {os.getpid()} on {socket.gethostname()})"[:_MAX_NAME],),
                )
                namespace = conn.execute("SELECT current_schema()").fetchone()[0]
                if namespace is None:
                    raise StoreError(
                        f"{store.location}: no schema to keep read models in (check the search_path)"
                    )
                db = cls(conn, store.location, namespace)
                if create:
                    db.ensure_catalog()
        except BaseException:
            conn.close()
            raise
        return db

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> PostgresReadModels:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def schema(self, name: str, *, shadow: bool = False) -> str:
        schema = (self._only_schema or f"{self.namespace}_{name}") + (SHADOW_SUFFIX if shadow else "")
        if len(schema.encode()) > _MAX_NAME:
            raise InvalidInput(
                f"projection {name!r}: its schema name {schema!r} is longer than PostgreSQL's"
                f" {_MAX_NAME} bytes; give it a shorter name"
            )
        return schema

    # --- SQL and transactions --------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> psycopg.Cursor:
        if self._armed is not None:
            self._armed.check(sql)
        # Without parameters psycopg would use the simple protocol, which runs
        # several statements; prepared, a statement is one statement.
        if not params:  # psycopg reads no placeholders (and undoubles no %) without parameters
            return self.conn.execute(sql, None, prepare=True)
        return self.conn.execute(psycopg_style(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> psycopg.Cursor:
        if self._armed is not None:
            self._armed.check(sql)
        cursor = self.conn.cursor()
        cursor.executemany(psycopg_style(sql), rows)
        return cursor

    def insert_sql(
        self, verb: str, reference: str, columns: Sequence[str], key: Sequence[str], every: Sequence[str]
    ) -> str:
        """SQLite's INSERT OR IGNORE as ON CONFLICT DO NOTHING; INSERT OR REPLACE
        as an upsert that sets the columns given and resets the others (`every`)
        to their defaults, as SQLite's REPLACE of the whole row does."""
        names = ", ".join(_quote(c) for c in columns)
        sql = f"INSERT INTO {reference} ({names}) VALUES ({', '.join('?' * len(columns))})"
        if verb == "INSERT OR IGNORE":
            return sql + " ON CONFLICT DO NOTHING"
        if verb == "INSERT OR REPLACE" and key:
            sets = [
                f"{_quote(c)} = excluded.{_quote(c)}" if c in columns else f"{_quote(c)} = DEFAULT"
                for c in every
                if c not in key
            ]
            keys = ", ".join(_quote(k) for k in key)
            return (
                sql + f" ON CONFLICT ({keys}) DO " + (f"UPDATE SET {', '.join(sets)}" if sets else "NOTHING")
            )
        return sql

    @contextlib.contextmanager
    def transaction(self, name: str | None = None) -> Iterator[None]:
        # The projection's lock is taken before BEGIN, not inside the transaction:
        # a transaction that starts once the lock is ours sees the tables the
        # previous holder made (one that began before would look names up in a
        # cache made before they existed).
        with self._locked(*(() if name is None else (name,))):
            with translated(self.location):
                self.conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
            try:
                yield
                self.conn.execute("COMMIT")
            except BaseException:
                self.rollback()
                raise

    @contextlib.contextmanager
    def _locked(self, *names: str) -> Iterator[None]:
        """A session-level advisory lock on the namespace, or on a projection in it,
        held until the block ends (or the connection does); no names: no lock."""
        if not names:
            yield
            return
        key = _lock_key(self.namespace, *names)
        with translated(self.location):
            self.conn.execute(pgsql.SQL("SELECT pg_advisory_lock({})").format(key))
        try:
            yield
        finally:
            if not self.conn.closed and not self.conn.broken:
                with contextlib.suppress(psycopg.Error):
                    self.conn.execute(pgsql.SQL("SELECT pg_advisory_unlock({})").format(key))

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[_Savepoint]:
        self.conn.execute("SAVEPOINT esctl_apply")
        savepoint = _Savepoint(self.conn)
        try:
            yield savepoint
        except BaseException:
            if self.in_transaction:  # an error leaves the transaction unusable until this
                with contextlib.suppress(psycopg.Error):
                    savepoint.rollback()
            raise
        self.conn.execute("RELEASE esctl_apply")

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def rollback(self) -> None:
        if not self.conn.closed and self.in_transaction:
            with contextlib.suppress(psycopg.Error):
                self.conn.execute("ROLLBACK")

    def translate(self, exc: BaseException) -> BaseException | None:
        if isinstance(exc, psycopg.Error):
            return classify(exc, self.location)
        return None

    # --- the catalog -----------------------------------------------------------------

    def _catalog_exists(self) -> bool:
        if not self._has_catalog:
            found = self.conn.execute("SELECT to_regclass(%s)", (self.catalog,)).fetchone()[0]
            self._has_catalog = found is not None
        return self._has_catalog

    def ensure_catalog(self) -> None:
        """The catalog, made now if need be: by `open(create=True)` outside any
        transaction, where concurrent makers take turns (see `transaction`)."""
        if self._catalog_exists():
            return
        if self.in_transaction:  # scratch read models, or opened without `create`
            self.conn.execute(_CATALOG_DDL.format(catalog=self.catalog))
            return  # made only if the transaction commits: asked again next time
        else:
            with self._locked("catalog"):
                self.conn.execute(
                    _CATALOG_DDL.format(catalog=self.catalog).replace(
                        "CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1
                    )
                )
        self._has_catalog = True

    def records(self) -> dict[str, Record]:
        if not self._catalog_exists():
            return {}
        rows = self.conn.execute(f"SELECT {_COLUMNS} FROM {self.catalog}").fetchall()
        return {row[0]: Record.from_row(row) for row in rows}

    def record(self, name: str, *, lock: bool = False) -> Record | None:
        if not self._catalog_exists():
            return None
        sql = f"SELECT {_COLUMNS} FROM {self.catalog} WHERE name = %s" + (" FOR UPDATE" if lock else "")
        row = self.conn.execute(sql, (name,)).fetchone()
        return Record.from_row(row) if row else None

    def save(self, rec: Record) -> None:
        columns = _COLUMNS.split(", ")
        self.conn.execute(
            f"INSERT INTO {self.catalog} ({_COLUMNS}) VALUES ({', '.join(['%s'] * len(columns))})"
            " ON CONFLICT (name) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in columns[1:]),
            rec.to_row(utc_now()),
        )

    def move_checkpoint(self, name: str, checkpoint: int, fingerprint: str | None = None) -> None:
        self.conn.execute(
            f"UPDATE {self.catalog} SET checkpoint = %s, failure = NULL, updated_at = %s,"
            " fingerprint = coalesce(%s, fingerprint) WHERE name = %s",
            (checkpoint, utc_now(), fingerprint, name),
        )

    def record_failure(self, name: str, checkpoint: int, failure: dict[str, Any]) -> None:
        with self.transaction(name):
            self.conn.execute(
                f"UPDATE {self.catalog} SET failure = %s WHERE name = %s AND checkpoint = %s",
                (codec.dumps_text(failure), name, checkpoint),
            )

    def forget(self, name: str) -> None:
        self.conn.execute(f"DELETE FROM {self.catalog} WHERE name = %s", (name,))

    # --- tables ----------------------------------------------------------------------

    def present(self, name: str, *, shadow: bool = False) -> set[str]:
        sql = "SELECT lower(tablename) FROM pg_tables WHERE schemaname = %s"
        return {row[0] for row in self.conn.execute(sql, (self.schema(name, shadow=shadow),))}

    def check_ownership(self, name: str, tables: Sequence[str]) -> None:
        schema = self.schema(name)
        self.schema(name, shadow=True)  # too long a name is refused before anything is made
        exists = self.conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if exists and self.record(name) is None:
            raise InvalidInput(
                f"projection {name!r} cannot keep its tables in schema {schema!r}: a schema of that name"
                " exists and is not one of esctl's read models (esctl will not take it over)"
            )

    def create_table(self, name: str, table: TableShape, generation: int, *, shadow: bool = False) -> None:
        schema = _quote(self.schema(name, shadow=shadow))
        self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        reference = f"{schema}.{_quote(table.name)}"
        columns = [
            pgsql.SQL("{} {}{}{}").format(
                pgsql.Identifier(column),
                pgsql.SQL(_column_type(kind)),
                pgsql.SQL(" NOT NULL" if column in table.not_null else ""),
                pgsql.SQL(" DEFAULT {}").format(pgsql.Literal(table.defaults[column]))
                if column in table.defaults
                else pgsql.SQL(""),
            )
            for column, kind in table.columns.items()
        ]
        if table.key:
            columns.append(
                pgsql.SQL("PRIMARY KEY ({})").format(pgsql.SQL(", ").join(map(pgsql.Identifier, table.key)))
            )
        statements = [
            pgsql.SQL("CREATE TABLE {} ({})").format(pgsql.SQL(reference), pgsql.SQL(", ").join(columns))
        ]
        for index in table.index_columns():
            statements.append(
                pgsql.SQL("CREATE INDEX {} ON {} ({})").format(
                    pgsql.Identifier(_index_name(table.name, index, generation)),
                    pgsql.SQL(reference),
                    pgsql.SQL(", ").join(map(pgsql.Identifier, index)),
                )
            )
        for statement in statements:
            try:
                self.conn.execute(statement)
            except psycopg.Error as exc:
                if classify(exc, self.location) is not None:
                    raise
                detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise InvalidInput(f"cannot create read model {reference}: {detail}") from None

    def drop_tables(self, name: str, tables: Sequence[str], *, shadow: bool = False) -> None:
        schema = self.schema(name, shadow=shadow)
        for table in tables:
            self._drop_table(schema, table)
        self._drop_schema_if_empty(schema)

    def _drop_table(self, schema: str, table: str) -> None:
        try:
            self.conn.execute(f"DROP TABLE IF EXISTS {_quote(schema)}.{_quote(table)}")
        except errors.DependentObjectsStillExist as exc:
            detail = (exc.diag.message_detail or "").replace("\n", "; ")
            raise InvalidInput(
                f"cannot drop read model {schema}.{table}: {detail or 'other objects depend on it'}"
                " (drop them first: esctl does not drop what it did not make)"
            ) from None

    def _drop_schema_if_empty(self, schema: str) -> None:
        left = self.conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s",
            (schema,),
        ).fetchone()[0]
        if not left:
            self.conn.execute(f"DROP SCHEMA IF EXISTS {_quote(schema)}")

    def target(self, name: str, tables: Sequence[str], *, shadow: bool = False) -> _Target:
        return _Target(self, self.schema(name, shadow=shadow), tables)

    def swap_in_shadows(self, name: str, old: Sequence[str], new: Sequence[str]) -> None:
        live, shadow = self.schema(name), self.schema(name, shadow=True)
        self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(live)}")
        for table in sorted({*old, *new}):
            self._drop_table(live, table)
        for table in new:
            self.conn.execute(f"ALTER TABLE {_quote(shadow)}.{_quote(table)} SET SCHEMA {_quote(live)}")
        self._drop_schema_if_empty(shadow)

    def has_table(self, table: str) -> bool:
        found = self.conn.execute("SELECT to_regclass(%s)", (f"{_quote(self.namespace)}.{table}",)).fetchone()
        return found[0] is not None

    # --- leases ----------------------------------------------------------------------
    # A session-level advisory lock: it ends with the connection, so a runner killed
    # with -9 loses it as soon as the server sees the connection close.

    def acquire_lease(self, name: str, seconds: float) -> str | None:
        if name in self._leases:
            return None
        key = _lock_key(self.namespace, name, "lease")
        with translated(self.location):
            if self.conn.execute(pgsql.SQL("SELECT pg_try_advisory_lock({})").format(key)).fetchone()[0]:
                self._leases.add(name)
                return None
        return self._holder(key) or "another session"

    def release_lease(self, name: str) -> None:
        if name in self._leases and not self.conn.closed and not self.conn.broken:
            key = _lock_key(self.namespace, name, "lease")
            self.conn.execute(pgsql.SQL("SELECT pg_advisory_unlock({})").format(key))
        self._leases.discard(name)

    def holds_lease(self, name: str) -> bool:
        return name in self._leases  # a session lock: held while this transaction's connection lives

    def lease_holder(self, name: str) -> str | None:
        if name in self._leases:
            return f"this session (server process {self.conn.info.backend_pid})"
        return self._holder(_lock_key(self.namespace, name, "lease"))

    # --- rebuild claims --------------------------------------------------------------

    def claim_rebuild(self, name: str) -> None:
        key = _lock_key(self.namespace, name, "rebuild")
        if name in self._claims:
            return
        if not self.conn.execute(pgsql.SQL("SELECT pg_try_advisory_lock({})").format(key)).fetchone()[0]:
            holder = self.rebuilder(name) or "another session"
            raise ConcurrencyError(f"projection {name!r} is being rebuilt by {holder}: wait for it to finish")
        self._claims.add(name)

    def release_rebuild(self, name: str) -> None:
        # Session-level: it outlives the transaction it was taken in, rolled back or not.
        if name in self._claims and not self.conn.closed:
            key = _lock_key(self.namespace, name, "rebuild")
            self.conn.execute(pgsql.SQL("SELECT pg_advisory_unlock({})").format(key))
            self._claims.discard(name)

    def holds_rebuild(self, name: str) -> bool:
        return name in self._claims  # a session lock: held while the connection lives

    def rebuilder(self, name: str) -> str | None:
        return self._holder(_lock_key(self.namespace, name, "rebuild"))

    def _holder(self, key: pgsql.Composable) -> str | None:
        """Another session holding the advisory lock `key`, in words."""
        row = self.conn.execute(
            pgsql.SQL(
                "SELECT a.pid, a.application_name, coalesce(host(a.client_addr), 'a local socket'),"
                " to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid, (SELECT {} AS k) key"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
                " AND l.classid = ((key.k >> 32) & 4294967295)::oid AND l.objid = (key.k & 4294967295)::oid"
                " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND l.pid <> pg_backend_pid()"
            ).format(key)
        ).fetchone()
        if row is None:
            return None
        pid, application, client, since = row
        return f"server process {pid} ({application or 'no application name'}, from {client}) since {since}"

    # --- verifying -------------------------------------------------------------------

    @contextlib.contextmanager
    def scratch(self, count: int) -> Iterator[list[PostgresReadModels]]:
        """Read models in schemas of their own (`esctl_verify_<server pid>_<n>`, the
        projection's tables in `<that>_p`), dropped afterwards."""
        made: list[PostgresReadModels] = []
        try:
            for i in range(1, count + 1):
                # The server's process id: unique among live sessions of any host.
                namespace = f"esctl_verify_{self.conn.info.backend_pid}_{i}"
                self._drop_namespace(namespace)  # left by a verify whose session ended
                self.conn.execute(f"CREATE SCHEMA {_quote(namespace)}")
                only = f"{namespace}_p"
                made.append(PostgresReadModels(self.conn, self.location, namespace, only_schema=only))
            yield made
        finally:
            self.rollback()
            for db in made:
                self._drop_namespace(db.namespace)

    def _drop_namespace(self, namespace: str) -> None:
        schemas = [
            row[0]
            for row in self.conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = %s OR starts_with(nspname, %s)",
                (namespace, namespace + "_"),
            )
        ]
        for schema in schemas:
            self.conn.execute(f"DROP SCHEMA IF EXISTS {_quote(schema)} CASCADE")

    @contextlib.contextmanager
    def compare(self, name: str, rebuilds: Sequence[PostgresReadModels]) -> Iterator[_Comparison]:
        first, again = rebuilds
        sides = {"live": self.schema(name), "rebuilt": first.schema(name), "again": again.schema(name)}
        self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")  # one snapshot
        try:
            yield _Comparison(self, name, sides)
        finally:
            self.rollback()


class _Savepoint:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK TO esctl_apply")


class _Target:
    """A projection's tables in one schema; armed, the search path is that schema
    (for the transaction) and only reading and row-writing statements pass."""

    def __init__(self, db: PostgresReadModels, schema: str, tables: Sequence[str]) -> None:
        self.db = db
        self.schema = schema
        self.references = {t: f"{_quote(schema)}.{_quote(t)}" for t in tables}
        self.refused: str | None = None

    def arm(self) -> None:
        self.refused = None
        self.db.conn.execute("SELECT set_config('search_path', %s, true)", (_quote(self.schema),))
        self.db._armed = self

    def disarm(self) -> None:
        self.db._armed = None
        if (
            self.db.in_transaction
            and self.db.conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR
        ):
            self.db.conn.execute("SELECT set_config('search_path', %s, true)", (self.db._search_path,))

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        armed, self.db._armed = self.db._armed, None
        try:
            yield
        finally:
            self.db._armed = armed

    def close(self) -> None:
        self.db._armed = None

    def check(self, sql: str) -> None:
        first = _FIRST_WORD.match(sql)
        word = first.group(1).upper() if first else ""
        if word not in _HANDLER_VERBS:
            self.refused = f"a {word or 'blank'} statement"
            raise psycopg.ProgrammingError(f"esctl refused {self.refused} in a projection handler")


class _Comparison:
    """Rows of each side's table, schema-qualified, in one read-only snapshot. Typed
    columns compare with IS NOT DISTINCT FROM; a keyless table compares as a
    multiset (EXCEPT ALL), its rows having no order to match them by."""

    def __init__(self, db: PostgresReadModels, name: str, sides: dict[str, str]) -> None:
        self.db = db
        self.name = name
        self.sides = sides

    def _ref(self, side: str, table: str) -> str:
        return f"{_quote(self.sides[side])}.{_quote(table)}"

    def record(self) -> Record | None:
        return self.db.record(self.name)

    def columns(self, table: str, side: str) -> list[str]:
        rows = self.db.conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
            " ORDER BY ordinal_position",
            (self.sides[side], table),
        )
        return [row[0] for row in rows]

    def count(self, table: str) -> int:
        return self.db.conn.execute(f"SELECT count(*) FROM {self._ref('live', table)}").fetchone()[0]

    def differences(
        self, table: str, key: Sequence[str], columns: Sequence[str], side: str
    ) -> Iterator[tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any] | None, list[str]]]:
        conn = self.db.conn
        mine, theirs = self._ref("rebuilt", table), self._ref(side, table)
        names = [*key, *(c for c in columns if c not in key)] if key else list(columns)
        select = ", ".join(_quote(c) for c in names)

        def as_dict(row: Sequence[Any]) -> dict[str, Any]:
            return dict(zip(names, row, strict=True))

        if not key:
            for kind, one, other in (("missing", mine, theirs), ("extra", theirs, mine)):
                for row in conn.execute(
                    f"SELECT {select} FROM {one} EXCEPT ALL SELECT {select} FROM {other}"
                ):
                    d = as_dict(row)
                    yield kind, d, (d if kind == "extra" else None), (d if kind == "missing" else None), []
            return
        keys = list(key)
        values = [c for c in names if c not in keys]
        match = " AND ".join(f"o.{_quote(k)} = m.{_quote(k)}" for k in keys)

        def aliased(alias: str) -> str:
            return ", ".join(f"{alias}.{_quote(c)}" for c in names)

        def key_of(d: dict[str, Any]) -> dict[str, Any]:
            return {k: d[k] for k in keys}

        absent = "WHERE NOT EXISTS (SELECT 1 FROM {} AS {} WHERE {})"
        for row in conn.execute(
            f"SELECT {aliased('m')} FROM {mine} AS m {absent.format(theirs, 'o', match)}"
        ):
            d = as_dict(row)
            yield "missing", key_of(d), None, d, []
        for row in conn.execute(
            f"SELECT {aliased('o')} FROM {theirs} AS o {absent.format(mine, 'm', match)}"
        ):
            d = as_dict(row)
            yield "extra", key_of(d), d, None, []
        if not values:
            return
        same = " AND ".join(f"o.{_quote(c)} IS NOT DISTINCT FROM m.{_quote(c)}" for c in values)
        width = len(names)
        for row in conn.execute(
            f"SELECT {aliased('m')}, {aliased('o')} FROM {mine} AS m JOIN {theirs} AS o ON {match}"
            f" WHERE NOT ({same})"
        ):
            rebuilt, other = as_dict(row[:width]), as_dict(row[width:])
            yield "different", key_of(rebuilt), other, rebuilt, [c for c in values if rebuilt[c] != other[c]]


def _index_name(table: str, columns: Sequence[str], generation: int) -> str:
    """idx_<table>_<columns>_g<generation>; too long for PostgreSQL, its start and a hash."""
    import hashlib

    name = f"idx_{table}_{'_'.join(columns)}_g{generation}"
    if len(name.encode()) <= _MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return f"{name[:40]}_{digest}_g{generation}"


def search_path(conn: psycopg.Connection) -> str:
    """The store's schema, then every projection's: where `esctl query` finds a
    read model's table by its plain name (the first projection, by name, owning
    one of that name)."""
    db = PostgresReadModels(conn, "", conn.execute("SELECT current_schema()").fetchone()[0] or "public")
    schemas = [db.namespace, *(db.schema(name) for name in sorted(db.records()))]
    return ", ".join(_quote(s) for s in schemas)


def _column_type(kind: Any) -> str:
    try:
        return _TYPES[kind.upper() if isinstance(kind, str) else kind]
    except KeyError:
        raise InvalidInput(f"no PostgreSQL column type for {kind!r}") from None
