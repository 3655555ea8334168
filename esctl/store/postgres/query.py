"""Read-only SQL over a PostgreSQL store, as `esctl query` runs it on SQLite.

What keeps it read-only:
- only a statement that reads is sent: SELECT, WITH, VALUES, TABLE, SHOW or
  EXPLAIN, by its first keyword (COPY, ANALYZE, DO, CALL, SET... are refused
  here: some of them write outside any transaction, to files or statistics);
- one statement only: the extended protocol takes no more (psycopg would send a
  query without parameters by the simple one, where `COMMIT; DELETE ...` runs);
- it runs in a READ ONLY transaction that is rolled back, on a connection whose
  every transaction is read-only (default_transaction_read_only).
What PostgreSQL lets a reading statement do beyond that is the role's privileges:
a superuser's SELECT can read and wait on server files (pg_read_file) or end
other sessions (pg_terminate_backend), and no timeout interrupts a wait on a
FIFO. Query with a role that has neither superuser nor pg_*_server_* roles.

`statement_timeout` bounds each step of the query, and a deadline checked between
batches of rows bounds the whole of it. Rows stream through a server-side cursor:
`| head` and large results cost what is read.

`:name` placeholders are SQLite's; they become psycopg's `%(name)s` outside
strings, quoted names, comments and `::` casts.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg
from psycopg import errors

from esctl.errors import InvalidInput, QueryTimeout

_BATCH = 1_000
_FIRST_WORD = re.compile(r"(?:\s|--[^\n]*|/\*.*?\*/)*([A-Za-z]+)", re.S)
_STREAMED = frozenset({"SELECT", "WITH", "VALUES", "TABLE"})
_READING = _STREAMED | {"SHOW", "EXPLAIN"}
_MAX_TIMEOUT_MS = 2**31 - 1  # statement_timeout's largest value (24.8 days)
_TOKENS = re.compile(
    r"""(?<!\w)[Ee]'(?:[^'\\]|\\.|'')*'  # a string with backslash escapes
      | '(?:[^']|'')*'              # a string
      | "(?:[^"]|"")*"              # a quoted name
      | (?<![\w$])\$((?:[A-Za-z_]\w*)?)\$.*?\$\1\$  # a dollar-quoted string
      | --[^\n]*                    # comments
      | /\*.*?\*/
      | ::                          # a cast, not a placeholder
      | :([A-Za-z_][A-Za-z0-9_]*)   # a placeholder
      | (\?)                        # a positional placeholder
    """,
    re.S | re.X,
)


@functools.lru_cache(maxsize=1024)
def psycopg_style(sql: str) -> str:
    """SQL written with SQLite's placeholders (`?` and `:name`, as read-model
    handlers write it) in psycopg's (`%s`, `%(name)s`, `%` doubled)."""

    def replace(match: re.Match[str]) -> str:
        if match.group(3):
            return "%s"
        name = match.group(2)
        return match.group() if name is None else f"%({name})s"

    return _TOKENS.sub(replace, sql.replace("%", "%%"))


def bind(sql: str, params: Mapping[str, Any]) -> str:
    """`sql` in psycopg's placeholder style: `%` doubled, `:name` as `%(name)s`;
    InvalidInput for a placeholder with no value."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name is None:
            return match.group()
        if name not in params:
            raise InvalidInput(f"query: no value for :{name} (give --param {name}=VALUE)")
        return f"%({name})s"

    return _TOKENS.sub(replace, sql.replace("%", "%%"))


def run(
    conn: psycopg.Connection, sql: str, params: Mapping[str, Any], timeout: float, search_path: str = ""
) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    """Start the query on `conn` (its own connection, closed when the rows are
    read or the query fails): its column names, and its rows as they are read.
    A `search_path` is the query's (the read models' schemas after the store's)."""
    deadline = time.monotonic() + timeout if timeout else math.inf
    first = _FIRST_WORD.match(sql)
    word = first.group(1).upper() if first else ""
    if word not in _READING:
        conn.close()
        words = " ".join(sql.split()[:2]).upper()
        raise InvalidInput(
            f"query is read-only: {words} refused (a query starts with {', '.join(sorted(_READING))})"
        )
    try:
        conn.execute("SET default_transaction_read_only = on")  # for any transaction after this one too
        conn.execute("BEGIN READ ONLY")
        if search_path:
            conn.execute("SELECT set_config('search_path', %s, true)", (search_path,))
        _limit(conn, deadline)
        # A server-side cursor takes only a query that returns rows; SHOW and
        # EXPLAIN run as they are.
        streamed = word in _STREAMED
        cursor = conn.cursor(name="esctl_query") if streamed else conn.cursor()
        # prepare: the extended protocol, whatever the parameters (psycopg sends a
        # query without them by the simple one, which runs `COMMIT; DELETE ...`).
        # A server-side cursor's DECLARE takes one query.
        options = {} if streamed else {"prepare": True}
        cursor.execute(bind(sql, params), dict(params), **options)
        columns = [d.name for d in cursor.description or ()]
        rows = cursor.fetchmany(_BATCH) if columns else []
    except BaseException as exc:
        conn.close()
        raise _failure(exc, sql, timeout) from None
    return columns, _rows(conn, cursor, rows, deadline, sql, timeout)


def _rows(
    conn: psycopg.Connection,
    cursor: Any,
    first: list[tuple[Any, ...]],
    deadline: float,
    sql: str,
    timeout: float,
) -> Iterator[tuple[Any, ...]]:
    try:
        rows = first
        while rows:
            yield from (tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows)
            _limit(conn, deadline)
            rows = cursor.fetchmany(_BATCH)
    except psycopg.Error as exc:
        raise _failure(exc, sql, timeout) from None
    finally:
        conn.close()  # the transaction goes with it, rolled back


def _limit(conn: psycopg.Connection, deadline: float) -> None:
    """What is left of the deadline, as the statement timeout of the next step."""
    if deadline == math.inf:
        return
    left = deadline - time.monotonic()
    if left <= 0:
        raise errors.QueryCanceled("canceling statement due to statement timeout")
    conn.execute(f"SET LOCAL statement_timeout = {min(_MAX_TIMEOUT_MS, max(1, int(left * 1000)))}")


def _failure(exc: BaseException, sql: str, timeout: float) -> BaseException:
    if isinstance(exc, errors.QueryCanceled):
        return QueryTimeout(f"query stopped after {timeout:g} s (--timeout; 0 for no limit)")
    if isinstance(exc, errors.ReadOnlySqlTransaction):
        words = " ".join(sql.split()[:2]).upper()
        return InvalidInput(f"query is read-only: {words} refused")
    if isinstance(exc, psycopg.OperationalError) and getattr(exc, "sqlstate", None) is None:
        return exc  # the connection itself: the store's error translation explains it
    if isinstance(exc, psycopg.Error):
        return InvalidInput(f"query: {(str(exc).strip().splitlines() or ['failed'])[0]}")
    return exc
