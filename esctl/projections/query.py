"""Read-only SQL over the read models.

Three locks, any one of which refuses a write: the file is opened read-only
(`mode=ro`), `PRAGMA query_only` is on, and an authorizer allows only reading
(SELECT, reads of tables, functions, recursive CTEs and read-only pragmas), so
ATTACH, writes through a function or a trigger, and schema changes are refused too.
"""

from __future__ import annotations

import base64
import os
import pathlib
import re
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from esctl.errors import InvalidInput, NotFound

_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
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
        number = float(text) if any(c in text for c in ".eE") else int(text)
        return number
    return text


def run_query(path: str, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        raise NotFound(f"no read-model database at {path}")
    conn = sqlite3.connect(pathlib.Path(path).absolute().as_uri() + "?mode=ro", uri=True)
    refused: list[str] = []
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.set_authorizer(_authorizer(refused))
        cursor = conn.execute(sql, dict(params or {}))
    except sqlite3.Warning as exc:  # e.g. more than one statement
        conn.close()
        raise InvalidInput(f"query: {exc}") from None
    except sqlite3.Error as exc:
        conn.close()
        if refused or "readonly" in str(exc) or "read-only" in str(exc):
            what = refused[0] if refused else "a write"
            raise InvalidInput(f"query is read-only: {what} refused") from None
        raise InvalidInput(f"query: {exc}") from None
    if cursor.description is None:  # a statement that returns nothing (and wrote nothing)
        conn.close()
        return QueryResult([], iter(()))
    columns = _unique([d[0] for d in cursor.description])
    return QueryResult(columns, _rows(conn, cursor, columns))


def _rows(conn: sqlite3.Connection, cursor: sqlite3.Cursor, columns: list[str]) -> Iterator[dict[str, Any]]:
    try:
        while batch := cursor.fetchmany(1000):
            for row in batch:
                yield {c: _json(v) for c, v in zip(columns, row, strict=True)}
    except sqlite3.Error as exc:
        raise InvalidInput(f"query: {exc}") from None
    finally:
        conn.close()


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


_ACTION_WORDS = {
    sqlite3.SQLITE_INSERT: "INSERT",
    sqlite3.SQLITE_UPDATE: "UPDATE",
    sqlite3.SQLITE_DELETE: "DELETE",
    sqlite3.SQLITE_DROP_TABLE: "DROP TABLE",
    sqlite3.SQLITE_CREATE_TABLE: "CREATE TABLE",
    sqlite3.SQLITE_ALTER_TABLE: "ALTER TABLE",
    sqlite3.SQLITE_ATTACH: "ATTACH",
    sqlite3.SQLITE_TRANSACTION: "a transaction statement",
    sqlite3.SQLITE_PRAGMA: "PRAGMA",
}


_ON_TABLE = {
    sqlite3.SQLITE_INSERT,
    sqlite3.SQLITE_UPDATE,
    sqlite3.SQLITE_DELETE,
    sqlite3.SQLITE_DROP_TABLE,
    sqlite3.SQLITE_CREATE_TABLE,
}


def _authorizer(refused: list[str]):  # type: ignore[no-untyped-def]
    def authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: Any) -> int:
        if action in _ALLOWED:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and arg2 is None:
            return sqlite3.SQLITE_OK  # reading a pragma; setting one is refused
        if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in (
            "table_info",
            "table_xinfo",
            "index_list",
        ):
            return sqlite3.SQLITE_OK
        if (arg1 or "").lower().startswith("sqlite_"):
            refused.append("a schema change")  # CREATE and DROP write to sqlite_master
            return sqlite3.SQLITE_DENY
        word = _ACTION_WORDS.get(action, f"operation {action}")
        refused.append(f"{word} on {arg1}" if arg1 and action in _ON_TABLE else word)
        return sqlite3.SQLITE_DENY

    return authorize
