"""PostgresStore: the event store in a PostgreSQL database (esctl.store.postgres)."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.types.string import TextLoader

from esctl.errors import NotFound, StoreError, StoreOutdated, StoreReadOnly
from esctl.events import check_stream
from esctl.store.base import Store
from esctl.store.postgres import migrations
from esctl.store.postgres.failures import translate, translated
from esctl.store.postgres.snapshots import Snapshots
from esctl.store.postgres.writer import SELECT_EVENT, Writer
from esctl.store.results import COUNTS, StreamSummary, info_document
from esctl.store.rows import StoredRow
from esctl.store.writing import decode

if TYPE_CHECKING:
    from esctl.store.postgres.readmodels import PostgresReadModels

T = TypeVar("T")

SCHEMA_VERSION = migrations.LATEST
# What the schema's guarantees rest on, for `check` to find missing or disabled.
TRIGGERS = (
    "events_adding",
    "events_added",
    "events_append_only",
    "esctl_head_guard",
    "streams_guard",
    "esctl_counts_guard",
)
LOCK_TIMEOUT = "60s"  # as SQLite's busy timeout: then StoreBusy
CONNECT_TIMEOUT = 10  # seconds
_CREATE_LOCK = 0x45534354  # "ESCT": an advisory lock held while creating the schema
_FIRST_PAGE, _LAST_PAGE = 100, 10_000  # rows per page of a read: small first, for `| head`
_SUMMARY = "SELECT s.stream, s.category, s.version, f.recorded_at, l.recorded_at, s.last_position"
_SUMMARY_FROM = """
    FROM streams AS s
    JOIN events AS f ON f.position = s.first_position
    JOIN events AS l ON l.position = s.last_position
"""


def _reading(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def read(self: PostgresStore, *args: Any, **kwargs: Any) -> T:
        with translated(self.location):
            return method(self, *args, **kwargs)

    return read


def display_url(url: str) -> str:
    """The URL without its password, as messages and `info` show it."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


def connect(url: str) -> psycopg.Connection:
    """A connection in autocommit mode (the store opens its transactions itself),
    json read back as the text stored, waits for locks bounded by LOCK_TIMEOUT."""
    # A server that does not answer is given 10 s (libpq waits forever), unless the URL says.
    timeout = {} if "connect_timeout" in url else {"connect_timeout": CONNECT_TIMEOUT}
    try:
        conn = psycopg.connect(url, autocommit=True, **timeout)
    except psycopg.Error as exc:
        detail = (str(exc).strip().splitlines() or ["no reason given"])[-1]
        raise StoreError(f"cannot connect to {display_url(url)}: {detail}") from None
    conn.adapters.register_loader("json", TextLoader)
    conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    return conn


class PostgresStore(Store):
    """An event store in a PostgreSQL database: `PostgresStore.open(url)`."""

    def __init__(self, url: str, conn: psycopg.Connection, *, created: bool, schema_version: int) -> None:
        self.path = url  # as given: what opens it again
        self.location = display_url(url)
        self.conn = conn
        self.created = created
        self.schema_version = schema_version
        self.read_only = _why_read_only(conn)
        self.snapshots = Snapshots(conn)
        self._listener: psycopg.Connection | None = None

    @classmethod
    def open(cls, url: str, *, create: bool = False) -> PostgresStore:
        conn = connect(url)
        try:
            with translated(display_url(url)):
                version = _schema_version(conn)
                created = False
                if version is None:
                    if not create:
                        raise NotFound(f"no event store in {display_url(url)} (esctl init creates one)")
                    version, created = _create(conn)
        except BaseException:
            conn.close()
            raise
        return cls(url, conn, created=created, schema_version=version)

    @property
    def outdated(self) -> bool:
        return self.schema_version < SCHEMA_VERSION

    def _writer(self) -> Writer:
        if self.read_only is not None:
            raise StoreReadOnly(f"{self.read_only}: cannot write {self.location}")
        if self.outdated:
            raise StoreOutdated(f"{self.location} has schema {self.schema_version}: run 'esctl migrate'")
        return Writer(self.conn)

    def _translate(self, exc: BaseException) -> BaseException:
        return translate(exc, self.location)

    @contextlib.contextmanager
    def _one_read(self) -> Iterator[None]:
        with translated(self.location):
            self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")  # one snapshot
        try:
            yield
        finally:
            with contextlib.suppress(psycopg.Error):
                self.conn.execute("ROLLBACK")

    def _backend_findings(self) -> list[str]:
        """The head row where the log ends, and the schema's triggers all there and
        firing (enabled for ordinary sessions: not disabled, not replica-only)."""
        findings = []
        heads = self._fetch(
            "SELECT position, (SELECT coalesce(max(position), 0) FROM events) FROM esctl_head", ()
        )
        if len(heads) != 1:
            findings.append(f"esctl_head: {len(heads)} rows, not one")
        elif heads[0][0] != heads[0][1]:
            findings.append(f"esctl_head: at position {heads[0][0]}, the log ends at {heads[0][1]}")
        enabled = dict(
            self._fetch(
                "SELECT tgname, tgenabled FROM pg_trigger"
                " WHERE tgrelid IN ('events'::regclass, 'streams'::regclass, 'esctl_counts'::regclass,"
                " 'esctl_head'::regclass) AND NOT tgisinternal",
                (),
            )
        )
        for name in TRIGGERS:
            if name not in enabled:
                findings.append(f"trigger {name}: missing")
            elif enabled[name] not in ("O", "A"):
                findings.append(f"trigger {name}: disabled")
        return findings

    @_reading
    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        return self.conn.execute(sql.replace("?", "%s"), params).fetchall()  # the SQL holds no other ?

    def read_models(self, *, create: bool) -> PostgresReadModels:
        from esctl.store.postgres.readmodels import PostgresReadModels

        return PostgresReadModels.open(self, create=create)

    def close(self, *, discard_if_new_and_empty: bool = False) -> None:
        """Close the connections. A database's tables are never dropped: an empty
        store in a shared database is left for `esctl init` to find."""
        for conn in (self.conn, self._listener):
            if conn is not None:
                conn.close()

    @_reading
    def _streams_in(self, ranges: list[list[int]]) -> int:
        if not ranges:
            return 0
        sql = (
            "SELECT count(DISTINCT e.stream) FROM unnest(%s::bigint[], %s::bigint[]) AS r(lo, hi)"
            " JOIN events AS e ON e.position BETWEEN r.lo AND r.hi"
        )
        return self.conn.execute(sql, ([lo for lo, _ in ranges], [hi for _, hi in ranges])).fetchone()[0]

    def migrate(self, *, backup: bool = True) -> dict[str, Any]:
        """Run the schema steps this store has not had, in one transaction. There
        is no file to copy: back a server up with its own tools (pg_dump)."""
        started = time.monotonic()
        doc: dict[str, Any] = {"path": self.location, "from_schema": self.schema_version}
        steps: list[migrations.Step] = []
        if self.schema_version < SCHEMA_VERSION:
            with translated(self.location), self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
                version = _schema_version(self.conn) or 0
                steps = migrations.upgrade(self.conn, version)
            doc["from_schema"] = version
            self.schema_version = SCHEMA_VERSION
        info = self.info()
        return doc | {
            "to_schema": SCHEMA_VERSION,
            "steps": [step.to_dict() for step in steps],
            "backup": None,
            "events": info["events"],
            "streams": info["streams"],
            "seconds": round(time.monotonic() - started, 3),
        }

    # --- reading --------------------------------------------------------------------

    @_reading
    def head_position(self) -> int:
        return self.conn.execute("SELECT position FROM esctl_head").fetchone()[0]

    @_reading
    def stream_version(self, stream: str) -> int:
        row = self.conn.execute("SELECT version FROM streams WHERE stream = %s", (stream,)).fetchone()
        return row[0] if row else 0

    @_reading
    def read_stream(
        self,
        stream: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        raw: bool = False,
    ) -> Iterator[Any]:
        check_stream(stream, allow_reserved=True)
        version = self.stream_version(stream)
        if version == 0:
            raise NotFound(f"stream {stream!r} not found")
        # Bounded by the version as of now: one consistent view, as one SQLite
        # statement reads, though the pages are separate statements.
        high = version if to_version is None else min(to_version, version)
        rows = self._pages(
            [("stream = %s", [stream])], "version", from_version, high, backwards, limit, dense=True
        )
        return _decoded(rows, raw)

    @_reading
    def read_stream_data(
        self, stream: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Iterator[tuple[int, str, str]]:
        high = self.stream_version(stream)
        if to_version is not None:
            high = min(high, to_version)
        rows = self._pages(
            [("stream = %s", [stream])], "version", from_version, high, False, None, dense=True
        )
        return ((row[1], row[3], row[4]) for row in rows)

    @_reading
    def read_all(
        self,
        *,
        from_position: int = 1,
        to_position: int | None = None,
        category: str | None = None,
        types: Iterable[str] = (),
        limit: int | None = None,
        raw: bool = False,
    ) -> Iterator[Any]:
        """Every event in position order, optionally filtered. The head as of the
        call bounds the read: the pages after the first see what it saw."""
        where, params = ["true"], []
        if category is not None:
            where.append("category = %s")
            params.append(category)
        types = sorted({types} if isinstance(types, str) else set(types))
        high = self.head_position()
        if to_position is not None:
            high = min(high, to_position)
        # One branch per type: each reads the (type, position) index in order, and the
        # page merges them. `type = ANY(...)` would fetch every later event of those
        # types to sort them, for every page.
        branches = [(" AND ".join([*where, "type = %s"]), [*params, t]) for t in types]
        rows = self._pages(
            branches or [(" AND ".join(where), params)],
            "position",
            from_position,
            high,
            False,
            limit,
            dense=not types and category is None,
        )
        return _decoded(rows, raw)

    def _pages(
        self,
        branches: list[tuple[str, list[Any]]],
        key: str,
        low: int,
        high: int,
        backwards: bool,
        limit: int | None,
        *,
        dense: bool = False,
    ) -> Iterator[tuple]:
        """Rows with `key` from `low` to `high`, in pages read by key (keyset
        paging): each page is one short statement, so a reader that stops early
        (`| head`) or goes slowly holds no transaction or cursor open. `dense`:
        no key in the range is missing (a stream's versions, unfiltered positions).
        `branches` are (where, params) alternatives, none matching a row another
        matches: each is read in key order, and each page merges them."""
        remaining = None if limit is None or limit < 0 else limit
        size = _FIRST_PAGE
        index = 1 if key == "version" else 2
        order = "DESC" if backwards else ""
        parts = [
            f"{SELECT_EVENT} WHERE {where} AND {key} BETWEEN %s AND %s ORDER BY {key} {order} LIMIT %s"
            for where, _ in branches
        ]
        sql = (
            parts[0]
            if len(parts) == 1
            else (
                "SELECT * FROM ("
                + " UNION ALL ".join(f"({part})" for part in parts)
                + f") AS page ORDER BY {key} {order} LIMIT %s"
            )
        )
        if dense:  # every key from low to high is there: one page when it is small
            size = max(size, min(high - low + 1, _LAST_PAGE))
        while remaining is None or remaining > 0:
            take = size if remaining is None else min(size, remaining)
            with translated(self.location):
                values = [v for _, params in branches for v in (*params, low, high, take)]
                rows = self.conn.execute(sql, values if len(parts) == 1 else [*values, take]).fetchall()
            yield from rows
            if len(rows) < take or rows[-1][index] == (low if backwards else high):
                return
            if remaining is not None:
                remaining -= len(rows)
            if backwards:
                high = rows[-1][index] - 1
            else:
                low = rows[-1][index] + 1
            size = min(size * 4, _LAST_PAGE)

    def streams(self, *, category: str | None = None, limit: int | None = None) -> Iterator[StreamSummary]:
        """One summary per stream in natural order of the names (the sort key the
        trigger keeps under an index), paged by that key."""
        where = "s.category = %s" if category is not None else "true"
        params: list[Any] = [category] if category is not None else []
        remaining = None if limit is None or limit < 0 else limit
        after = b""
        size = _FIRST_PAGE
        while remaining is None or remaining > 0:
            take = size if remaining is None else min(size, remaining)
            with translated(self.location):
                rows = self.conn.execute(
                    f"{_SUMMARY}, s.sort_key {_SUMMARY_FROM} WHERE {where} AND s.sort_key > %s"
                    " ORDER BY s.sort_key LIMIT %s",
                    [*params, after, take],
                ).fetchall()
            yield from (StreamSummary(*row[:-1]) for row in rows)
            if len(rows) < take:
                return
            if remaining is not None:
                remaining -= len(rows)
            after = rows[-1][-1]
            size = min(size * 4, _LAST_PAGE)

    @_reading
    def info(self) -> dict[str, Any]:
        return info_document(
            self.location,
            self.conn.execute("SELECT pg_database_size(current_database())").fetchone()[0],
            self.schema_version,
            self.conn.execute(COUNTS).fetchall(),
            self.head_position(),
        )

    # --- read-only SQL ------------------------------------------------------------------

    def query(
        self, sql: str, params: Mapping[str, Any], timeout: float
    ) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
        """Run one read-only statement on a connection of its own (see
        esctl.store.postgres.query): its column names, and its rows as read."""
        from esctl.store.postgres import query
        from esctl.store.postgres.readmodels import search_path

        with translated(self.location):
            columns, rows = query.run(connect(self.path), sql, params, timeout, search_path(self.conn))
        return columns, self._translating(rows)

    def _translating(self, rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        with translated(self.location):
            yield from rows

    # --- the change feed --------------------------------------------------------------

    @_reading
    def change_token(self) -> int:
        """The head position: it moves with every commit that adds events."""
        return self.head_position()

    def wait_for_change(self, token: int, timeout: float) -> int:
        """Block until the head moves past `token` or `timeout` seconds pass, woken
        by the trigger's NOTIFY (a listening connection of its own); the head is
        read again after every wake-up and at the timeout, so a lost notification
        costs at most one timeout."""
        with translated(self.location):
            if self._listener is None:
                self._listener = connect(self.path)
                self._listener.execute("LISTEN esctl_events")
            current = self.change_token()
            deadline = time.monotonic() + timeout
            while current == token:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                for _ in self._listener.notifies(timeout=left, stop_after=1):
                    pass
                current = self.change_token()
            return current


def _decoded(rows: Iterator[tuple], raw: bool) -> Iterator[Any]:
    return map(StoredRow._make, rows) if raw else map(decode, rows)


def _schema_version(conn: psycopg.Connection) -> int | None:
    """The store's schema version; None when the database holds no esctl store.
    A database with an `events` table that esctl did not make is refused."""
    meta, events = conn.execute("SELECT to_regclass('esctl_meta'), to_regclass('events')").fetchone()
    if meta is None:
        if events is not None:
            raise StoreError("the database has an events table that is not an esctl store's")
        return None
    row = conn.execute("SELECT value FROM esctl_meta WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the store has schema {version}, newer than this esctl's ({SCHEMA_VERSION}): upgrade esctl"
        )
    return version


def _create(conn: psycopg.Connection) -> tuple[int, bool]:
    """Create the schema in the connection's schema (search_path), unless another
    client did meanwhile: the advisory lock makes two first appends take turns."""
    from esctl import __version__
    from esctl.events import utc_now

    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
        version = _schema_version(conn)
        if version is not None:
            return version, False
        migrations.upgrade(conn, 0)
        conn.execute(
            "INSERT INTO esctl_meta (key, value) VALUES ('created_at', %s), ('created_by', %s)",
            (utc_now(), f"esctl {__version__}"),
        )
    return SCHEMA_VERSION, True


def _why_read_only(conn: psycopg.Connection) -> str | None:
    read_only, standby, may_insert = conn.execute(
        "SELECT current_setting('default_transaction_read_only') = 'on', pg_is_in_recovery(),"
        " has_table_privilege('events', 'INSERT')"
    ).fetchone()
    if standby:
        return "a standby server"
    if read_only:
        return "default_transaction_read_only is on"
    if not may_insert:
        return f"role {conn.info.user} may not insert into events"
    return None
