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
from esctl.projections import authorizer

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


def run_query(path: str, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
    if _NOTHING.fullmatch(sql):
        raise InvalidInput("query: no SQL statement given")
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        raise NotFound(f"no read-model database at {path}")
    conn = sqlite3.connect(read_only_uri(path), uri=True)
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
            raise InvalidInput(f"query is read-only: {_refusal(sql, refused)} refused") from None
        raise InvalidInput(f"query: {exc}") from None
    if cursor.description is None:  # a statement that returns nothing (and wrote nothing)
        conn.close()
        return QueryResult([], iter(()))
    columns = _unique([d[0] for d in cursor.description])
    return QueryResult(columns, _rows(conn, cursor, columns))


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


def _authorizer(refused: list[str]):  # type: ignore[no-untyped-def]
    def authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: Any) -> int:
        if action in authorizer.READING or action == sqlite3.SQLITE_READ:
            if (
                action != sqlite3.SQLITE_FUNCTION
                or (arg2 or "").lower() not in authorizer.FORBIDDEN_FUNCTIONS
            ):
                return sqlite3.SQLITE_OK
        elif action == sqlite3.SQLITE_PRAGMA and (
            arg2 is None or (arg1 or "").lower() in authorizer.SHAPE_PRAGMAS
        ):
            return sqlite3.SQLITE_OK  # reading a pragma; setting one is refused
        table = authorizer.table_of(action, arg1, arg2)
        if table is not None and table.lower().startswith("sqlite_"):
            refused.append(_SCHEMA_CHANGE)  # CREATE and DROP write to sqlite_master
        else:
            refused.append(authorizer.describe(action, arg1, arg2))
        return sqlite3.SQLITE_DENY

    return authorize
