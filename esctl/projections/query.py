"""Read-only SQL over the read models (on PostgreSQL, over the store's database:
esctl.store.postgres.query).

Three locks, any one of which refuses a write: the file is opened read-only
(`mode=ro`), `PRAGMA query_only` is on, and an authorizer allows only reading
(SELECT, reads of tables, functions, recursive CTEs and read-only pragmas), so
ATTACH, writes through a function or a trigger, and schema changes are refused too.
The authorizer also refuses the functions that reach native code (fts3_tokenizer()).

A query cannot hang: a progress handler stops it at its deadline and on Ctrl-C, even
in the middle of one SQLite step that never ends.
"""

from __future__ import annotations

import base64
import math
import os
import pathlib
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

from esctl.errors import EsctlError, InvalidInput, NotFound, QueryTimeout, check_utf8
from esctl.store.sqlite import authorizer

_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")


@dataclass
class QueryResult:
    columns: list[str]
    rows: Iterator[dict[str, Any]]


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`k=v` pairs for `:k` placeholders. Numbers written plainly (42, -1.5) are bound as
    numbers, everything else as text (`--param id=007` stays '007')."""
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().lstrip(":")
        if not sep or not name:
            raise InvalidInput(f"--param must look like NAME=VALUE, got {pair!r}")
        params[name] = _value(value)
    return params


def _value(text: str) -> Any:
    if _NUMBER.fullmatch(text):
        return float(text) if any(c in text for c in ".eE") else int(text)
    return text


def read_only_uri(path: str) -> str:
    """An SQLite URI that opens the file read-only."""
    return pathlib.Path(path).absolute().as_uri() + "?mode=ro"


def run_query(
    path: str, sql: str, params: Mapping[str, Any] | None = None, *, timeout: float = 0
) -> QueryResult:
    """Run one read-only statement; its rows are read as `rows` is iterated.

    `timeout` seconds (0: no limit) bound the whole query, reading its rows included:
    past them it stops with QueryTimeout. Ctrl-C stops it as KeyboardInterrupt."""
    params = _checked(sql, params, timeout)
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        raise NotFound(f"no read-model database at {path}")
    conn = sqlite3.connect(read_only_uri(path), uri=True)
    run = _Run(conn, sql, timeout)
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.set_authorizer(run.authorize)
        conn.set_progress_handler(run.tick, STEPS_PER_CHECK)
        cursor = run.call(conn.execute, sql, params)
    except BaseException:
        conn.close()
        raise
    if cursor.description is None:  # a statement that returns nothing (and wrote nothing)
        conn.close()
        return QueryResult([], iter(()))
    columns = _unique([d[0] for d in cursor.description])
    return QueryResult(columns, _rows(run, cursor, columns))


def run_store_query(
    store: Any, sql: str, params: Mapping[str, Any] | None = None, *, timeout: float = 0
) -> QueryResult:
    """The same, on a store whose backend runs SQL itself (PostgreSQL: the store's
    own database, read-only), its rows as `run_query` gives them."""
    params = _checked(sql, params, timeout)
    names, rows = store.query(sql, params, timeout)
    columns = _unique(names)
    return QueryResult(columns, ({c: _json(v) for c, v in zip(columns, row, strict=True)} for row in rows))


def _checked(sql: str, params: Mapping[str, Any] | None, timeout: float) -> dict[str, Any]:
    """The checks every query passes first; its parameters as a dict."""
    if not timeout >= 0:  # NaN too
        raise InvalidInput(f"query: the timeout must be 0 (no limit) or more seconds, got {timeout}")
    if _NOTHING.fullmatch(sql):
        raise InvalidInput("query: no SQL statement given")
    params = dict(params or {})
    _query_utf8(sql, "the SQL")
    for name, value in params.items():
        _query_utf8(name, "a parameter name")
        if isinstance(value, str):
            _query_utf8(value, f"parameter :{name}")
    return params


def _query_utf8(text: str, what: str) -> None:
    check_utf8(text, f"query: {what}")


# The progress handler runs every STEPS_PER_CHECK SQLite VM steps, about every 0.3 ms
# of work: Ctrl-C and the deadline are noticed at once, and one check (~0.5 us) costs
# ~0.2% of a count over a million rows (bench/bench_query.py); every 1,000 steps ~2%.
STEPS_PER_CHECK = 10_000
# Test-only: a file to create once the query is running, so that a test can send
# Ctrl-C while SQLite is in the middle of a statement.
_RUNNING_MARKER = "ESCTL_TEST_QUERY_RUNNING"


class _Run:
    """One query's connection, what its authorizer refused, and what stopped it."""

    def __init__(self, conn: sqlite3.Connection, sql: str, timeout: float) -> None:
        self.conn, self.sql, self.timeout = conn, sql, timeout
        self.deadline = time.monotonic() + timeout if timeout else math.inf
        self.refused: list[str] = []  # writes, in words
        self.forbidden: list[str] = []  # functions never allowed
        self.expired = False
        self.sigint: tuple[int, FrameType | None] | None = None  # Ctrl-C while SQLite ran
        self.marker = os.environ.get(_RUNNING_MARKER)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(*args), a call into SQLite. Meanwhile Ctrl-C only sets a flag that the
        progress handler reads (CPython's sqlite3 would swallow a KeyboardInterrupt
        raised in the handler); it is raised as KeyboardInterrupt when SQLite returns."""
        previous = self._catch_sigint()
        error: Exception | None = None
        try:
            result = fn(*args)
        except (sqlite3.Error, sqlite3.Warning) as exc:  # Warning: more than one statement
            error = exc
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        if self.sigint is not None:
            sigint, self.sigint = self.sigint, None
            previous(*sigint)  # Python's default handler raises KeyboardInterrupt
            if error is not None:
                raise KeyboardInterrupt  # the statement was stopped: it cannot go on
        if error is not None:
            raise self._failure(error) from None
        return result

    def _catch_sigint(self) -> Any:
        """The SIGINT handler replaced, or None when it stays: SIGINT ignored or left to
        the OS, or not the main thread (only the main thread handles signals)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        if callable(previous):
            return previous
        # None: a handler not set from Python, which cannot be put back; the OS default is closest.
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
        return None

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.sigint = (signum, frame)

    def tick(self) -> bool:
        """The progress handler: True stops the statement (SQLITE_INTERRUPT)."""
        if self.marker is not None:
            pathlib.Path(self.marker).touch()
            self.marker = None
        if self.sigint is not None:
            return True
        if time.monotonic() > self.deadline:
            self.expired = True
            return True
        return False

    def _failure(self, exc: Exception) -> EsctlError:
        if self.expired:
            return QueryTimeout(f"query stopped after {self.timeout:g} s (--timeout; 0 for no limit)")
        if self.forbidden:
            return InvalidInput(f"query refused: {self.forbidden[0]} is not allowed")
        text = str(exc)
        if self.refused or "readonly" in text or "read-only" in text:
            return InvalidInput(f"query is read-only: {_refusal(self.sql, self.refused)} refused")
        return InvalidInput(f"query: {text}")

    def authorize(self, action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: Any) -> int:
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in authorizer.FORBIDDEN_FUNCTIONS:
            self.forbidden.append(authorizer.describe(action, arg1, arg2))
            return sqlite3.SQLITE_DENY
        if action in authorizer.READING or action == sqlite3.SQLITE_READ:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and authorizer.pragma_only_reads(arg1, arg2):
            return sqlite3.SQLITE_OK
        table = authorizer.table_of(action, arg1, arg2)
        if action == sqlite3.SQLITE_UPDATE and (table or "").lower() in authorizer.SCHEMA_TABLES:
            # Asked while SQLite declares an eponymous virtual table's columns
            # (pragma_table_info, dbstat, json_each) in code it never runs. IGNORE leaves
            # the column as it is: the schema table is never written all the same.
            return sqlite3.SQLITE_IGNORE
        if table is not None and table.lower().startswith("sqlite_"):
            self.refused.append(_SCHEMA_CHANGE)  # CREATE and DROP write to sqlite_master
        else:
            self.refused.append(authorizer.describe(action, arg1, arg2))
        return sqlite3.SQLITE_DENY


_SCHEMA_CHANGE = "a schema change"


def _refusal(sql: str, refused: list[str]) -> str:
    """What was refused, in the user's terms."""
    words = leading_words(sql, 4)
    if words[:1] == ["VACUUM"]:  # the authorizer sees VACUUM (INTO) as an ATTACH
        return "VACUUM INTO" if "INTO" in words else "VACUUM"
    if refused[:1] == [_SCHEMA_CHANGE] and words[0] in ("CREATE", "DROP", "ALTER"):
        # SQLite asks about the write to sqlite_master first: name the statement.
        kinds = ("TABLE", "INDEX", "VIEW", "TRIGGER")
        end = next((i for i, w in enumerate(words) if w in kinds), 0)
        return f"{' '.join(words[: end + 1])} ({_SCHEMA_CHANGE})"
    return refused[0] if refused else "a write"


_COMMENT_OR_SPACE = re.compile(r"(\s|--[^\n]*(\n|$)|/\*.*?(\*/|$))*", re.S)
_WORD = re.compile(r"[A-Za-z_]+")
_NOTHING = re.compile(r"(\s|;|--[^\n]*(\n|$)|/\*.*?(\*/|$))*", re.S)


def leading_words(sql: str, count: int = 3) -> list[str]:
    """The first keywords of a statement, upper-cased, past whitespace and comments
    (empty for SQL that holds no statement)."""
    words: list[str] = []
    at = 0
    while len(words) < count:
        at = _COMMENT_OR_SPACE.match(sql, at).end()  # type: ignore[union-attr]
        word = _WORD.match(sql, at)
        if word is None:
            break
        words.append(word.group().upper())
        at = word.end()
    return words


def _rows(run: _Run, cursor: sqlite3.Cursor, columns: list[str]) -> Iterator[dict[str, Any]]:
    try:
        while batch := run.call(cursor.fetchmany, 1000):
            for row in batch:
                yield {c: _json(v) for c, v in zip(columns, row, strict=True)}
    finally:
        run.conn.close()


def _json(value: Any) -> Any:
    # JSON has no bytes: BLOBs come out as base64 text.
    return base64.b64encode(value).decode() if isinstance(value, bytes) else value


def _unique(names: list[str]) -> list[str]:
    """Column names as keys: a repeated name gets a suffix (a join of two `id`s)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        out.append(name)
    return out
