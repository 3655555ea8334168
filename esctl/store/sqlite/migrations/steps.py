"""What every migration step shares."""

from __future__ import annotations

import sqlite3


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run each statement of `script` inside the caller's transaction
    (`executescript` would commit it)."""
    for statement in statements(script):
        conn.execute(statement)


def statements(script: str) -> list[str]:
    buffered, found = "", []
    for line in script.splitlines(keepends=True):
        buffered += line
        if sqlite3.complete_statement(buffered):
            found.append(buffered.strip())
            buffered = ""
    return [s for s in found if s]
