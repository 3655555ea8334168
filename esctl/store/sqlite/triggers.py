"""Turning the schema's triggers off on esctl's own connection.

The triggers guard the store against writers that are not esctl (a plain `sqlite3`
shell, a script): they refuse UPDATE and DELETE of events, check each inserted
row's position, version and id, and keep the `streams` table and the counters up to
date, row by row. esctl's writer checks the same things for a whole chunk in Python,
inside the same transaction, and maintains the derived tables once per chunk, so on
its connection the triggers only repeat that work at several times its cost.

SQLITE_DBCONFIG_ENABLE_TRIGGER switches them off for one connection, nobody else's.
Python 3.12 exposes it as `Connection.setconfig`; on CPython 3.11 on Linux it is
called through ctypes on the connection's `sqlite3 *` handle, which CPython 3.11
keeps first in the connection object, checked by asking SQLite for the handle's
file name before anything is changed. Where none of this is possible the triggers stay on, and the
writer leaves the derived tables to them: slower, never wrong.
"""

from __future__ import annotations

import os
import sqlite3
import sys

_ENABLE_TRIGGER = 1003  # SQLITE_DBCONFIG_ENABLE_TRIGGER


def disable_triggers(conn: sqlite3.Connection, path: str) -> bool:
    """Turn triggers off on `conn` (a connection to the file at `path`); True when
    they are off."""
    if hasattr(conn, "setconfig"):  # Python 3.12+
        conn.setconfig(_ENABLE_TRIGGER, False)
        return not conn.getconfig(_ENABLE_TRIGGER)
    # ctypes passes variadic arguments as named ones, which is the calling convention
    # for both on Linux (x86-64 and AArch64), not on Apple's arm64.
    if sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11) or sys.platform != "linux":
        return False
    if not isinstance(conn, sqlite3.Connection):
        return False
    try:
        return _disable_with_ctypes(conn, path)
    except (ImportError, OSError, AttributeError, ValueError):
        return False


def _disable_with_ctypes(conn: sqlite3.Connection, path: str) -> bool:
    import _sqlite3
    import ctypes

    library = ctypes.CDLL(_sqlite3.__file__)  # resolves to the SQLite that module uses
    filename = library.sqlite3_db_filename
    filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    filename.restype = ctypes.c_char_p
    db_config = library.sqlite3_db_config
    db_config.restype = ctypes.c_int
    handle = ctypes.c_void_p.from_address(id(conn) + object.__basicsize__).value
    if not handle:
        return False
    named = filename(handle, b"main")
    if not named or os.path.realpath(os.fsdecode(named)) != os.path.realpath(path):
        return False
    state = ctypes.c_int(-1)
    code = db_config(
        ctypes.c_void_p(handle), ctypes.c_int(_ENABLE_TRIGGER), ctypes.c_int(0), ctypes.byref(state)
    )
    return code == 0 and state.value == 0
