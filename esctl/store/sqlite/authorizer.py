"""SQLite authorizer actions in words: the one table both authorizers use (the
handler guard in readmodels.Guard and the read-only `query`), so a refusal reads the
same wherever it happens."""

from __future__ import annotations

import sqlite3

# Actions whose first argument is the table touched, and those whose second is.
TABLE_ARG1 = frozenset(
    {
        sqlite3.SQLITE_READ,
        sqlite3.SQLITE_INSERT,
        sqlite3.SQLITE_UPDATE,
        sqlite3.SQLITE_DELETE,
        sqlite3.SQLITE_CREATE_TABLE,
        sqlite3.SQLITE_DROP_TABLE,
        sqlite3.SQLITE_ANALYZE,
    }
)
TABLE_ARG2 = frozenset(
    {
        sqlite3.SQLITE_CREATE_INDEX,
        sqlite3.SQLITE_DROP_INDEX,
        sqlite3.SQLITE_ALTER_TABLE,
        sqlite3.SQLITE_CREATE_TRIGGER,
        sqlite3.SQLITE_DROP_TRIGGER,
    }
)
# Never a write by themselves (what they read or call is authorized separately).
READING = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE})
# Pragmas that only describe a table's shape: sqlite-utils reads them.
SHAPE_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"}
)
# Pragmas whose argument only names what to read or check (table_info(t),
# integrity_check(100)); given to any other pragma, an argument is a value to set.
READ_PRAGMAS = SHAPE_PRAGMAS | {"table_list", "foreign_key_check", "integrity_check", "quick_check"}
# Pragmas that act without an argument too: a checkpoint, ANALYZE, freeing pages.
ACTING_PRAGMAS = frozenset({"wal_checkpoint", "optimize", "incremental_vacuum"})
# The schema table under each of its names.
SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"})
# Functions that are never allowed, whatever else is: load_extension() loads native
# code, fts3_tokenizer() returns and registers native pointers.
FORBIDDEN_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})

_NAMES = {
    sqlite3.SQLITE_READ: "reading",
    sqlite3.SQLITE_INSERT: "INSERT into",
    sqlite3.SQLITE_UPDATE: "UPDATE of",
    sqlite3.SQLITE_DELETE: "DELETE from",
    sqlite3.SQLITE_CREATE_TABLE: "CREATE TABLE",
    sqlite3.SQLITE_CREATE_TEMP_TABLE: "CREATE TEMP TABLE",
    sqlite3.SQLITE_DROP_TABLE: "DROP TABLE",
    sqlite3.SQLITE_DROP_TEMP_TABLE: "DROP TEMP TABLE",
    sqlite3.SQLITE_CREATE_INDEX: "CREATE INDEX on",
    sqlite3.SQLITE_CREATE_TEMP_INDEX: "CREATE TEMP INDEX",
    sqlite3.SQLITE_DROP_INDEX: "DROP INDEX on",
    sqlite3.SQLITE_DROP_TEMP_INDEX: "DROP TEMP INDEX",
    sqlite3.SQLITE_ALTER_TABLE: "ALTER TABLE",
    sqlite3.SQLITE_CREATE_TRIGGER: "CREATE TRIGGER on",
    sqlite3.SQLITE_CREATE_TEMP_TRIGGER: "CREATE TEMP TRIGGER",
    sqlite3.SQLITE_DROP_TRIGGER: "DROP TRIGGER on",
    sqlite3.SQLITE_DROP_TEMP_TRIGGER: "DROP TEMP TRIGGER",
    sqlite3.SQLITE_CREATE_VIEW: "CREATE VIEW",
    sqlite3.SQLITE_CREATE_TEMP_VIEW: "CREATE TEMP VIEW",
    sqlite3.SQLITE_DROP_VIEW: "DROP VIEW",
    sqlite3.SQLITE_DROP_TEMP_VIEW: "DROP TEMP VIEW",
    sqlite3.SQLITE_CREATE_VTABLE: "CREATE VIRTUAL TABLE",
    sqlite3.SQLITE_DROP_VTABLE: "DROP VIRTUAL TABLE",
    sqlite3.SQLITE_TRANSACTION: "a transaction statement (BEGIN/COMMIT/ROLLBACK)",
    sqlite3.SQLITE_ATTACH: "ATTACH",
    sqlite3.SQLITE_DETACH: "DETACH",
    sqlite3.SQLITE_REINDEX: "REINDEX",
    sqlite3.SQLITE_ANALYZE: "ANALYZE of",
}
_SAVEPOINT_VERBS = {"BEGIN": "SAVEPOINT", "RELEASE": "RELEASE SAVEPOINT", "ROLLBACK": "ROLLBACK TO SAVEPOINT"}


def table_of(action: int, arg1: str | None, arg2: str | None) -> str | None:
    """The table an action touches, or None for an action on no table."""
    if action in TABLE_ARG1:
        return arg1
    if action in TABLE_ARG2:
        return arg2
    return None


def describe(action: int, arg1: str | None, arg2: str | None) -> str:
    """The action in words, with what it acts on: 'DELETE from t', 'PRAGMA
    journal_mode = DELETE', 'SAVEPOINT x', 'load_extension()'."""
    if action == sqlite3.SQLITE_PRAGMA:
        return f"PRAGMA {arg1}" + (f" = {arg2}" if arg2 is not None else "")
    if action == sqlite3.SQLITE_SAVEPOINT:
        return f"{_SAVEPOINT_VERBS.get(arg1 or '', 'SAVEPOINT')} {arg2}"
    if action == sqlite3.SQLITE_FUNCTION:
        return f"{arg2}()"
    if action == sqlite3.SQLITE_ATTACH and not arg1:
        return "VACUUM"  # VACUUM attaches a temporary database of no name
    if action == sqlite3.SQLITE_ATTACH:
        return f"ATTACH {arg1!r}"
    name = _NAMES.get(action, f"SQLite operation {action}")
    table = table_of(action, arg1, arg2)
    return f"{name} {table}" if table else name


def pragma_only_reads(name: str | None, arg: str | None) -> bool:
    """A pragma that changes nothing: one without an argument (but for ACTING_PRAGMAS),
    or one of READ_PRAGMAS, whose argument only says what to read."""
    name = (name or "").lower()
    return name not in ACTING_PRAGMAS if arg is None else name in READ_PRAGMAS
