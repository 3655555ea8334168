"""Verifying a projection: rebuild it twice into scratch databases, up to the live
checkpoint, and compare row by row.

Rows are matched on the table's primary key (rowid for a table without one). The
live tables against the first rebuild give rows missing (in the rebuild, not live),
extra (live only) and different (same key, other values); the first rebuild against
the second gives rows that differ between two replays of the same events: a
non-deterministic projection (clock, randomness, iteration order, outside state).
Values compare with their SQLite type (1 is not 1.0 is not '1').
"""

from __future__ import annotations

import os
import pathlib
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from esctl import codec
from esctl.errors import NotFound, StoreError
from esctl.projections import catalog
from esctl.projections.apply import ProjectionFailed
from esctl.projections.definition import Projection, quote
from esctl.projections.runner import catch_up
from esctl.store import EventStore
from esctl.store.sqlite.schema import read_only_uri

MAX_REPORTED = 10_000  # differences kept for the report; all are counted
KINDS = ("missing", "extra", "different", "nondeterministic", "schema")


@dataclass
class Difference:
    table: str
    kind: str
    key: dict[str, Any]
    live: dict[str, Any] | None = None
    rebuilt: dict[str, Any] | None = None
    columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"table": self.table, "diff": self.kind, "key": self.key}
        if self.columns:
            doc["columns"] = self.columns
        if self.live is not None:
            doc["live" if self.kind != "nondeterministic" else "rebuilt_again"] = self.live
        if self.rebuilt is not None:
            doc["rebuilt"] = self.rebuilt
        return doc


@dataclass
class VerifyReport:
    """What `verify` found. `ok` only when the live tables match a rebuild and the
    projection has not failed: a failed projection's tables may match a rebuild up
    to its checkpoint, but it is stuck at the event its handler failed on
    (`failure`, as `project list` shows it) until the model is fixed."""

    name: str
    checkpoint: int
    rows: dict[str, int] = field(default_factory=dict)  # live rows per table
    differences: list[Difference] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    failure: dict[str, Any] | None = None  # the event a handler failed on, and why

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> bool:
        return self.failure is not None

    @property
    def ok(self) -> bool:
        return self.total == 0 and not self.failed

    @property
    def status(self) -> str:
        """'failed' (a handler failed: fix the model), 'differs' (the tables do not
        match a rebuild) or 'matches'."""
        return "failed" if self.failed else "differs" if self.total else "matches"

    def add(self, difference: Difference) -> None:
        self.counts[difference.kind] += 1
        if len(self.differences) < MAX_REPORTED:
            self.differences.append(difference)

    def summary(self) -> str:
        parts = [f"{n} {kind}" for kind, n in self.counts.items() if n]
        return ", ".join(parts) if parts else "no differences"

    def to_dict(self) -> dict[str, Any]:
        """The report as `esctl project verify` prints it: name, checkpoint, ok,
        status, rows, counts (the kinds found), differences (the first
        MAX_REPORTED), and error (the failure) when failed."""
        doc: dict[str, Any] = {
            "name": self.name,
            "checkpoint": self.checkpoint,
            "ok": self.ok,
            "status": self.status,
            "rows": self.rows,
            "counts": {kind: n for kind, n in self.counts.items() if n},
            "differences": [d.to_dict() for d in self.differences],
        }
        if self.failure is not None:
            doc["error"] = self.failure
        return doc


def verify(
    store: EventStore,
    read_path: str,
    projection: Projection,
    *,
    attempts: int = 3,
) -> VerifyReport:
    if not os.path.exists(read_path):
        raise NotFound(f"projection {projection.name!r} has not been built (no {read_path})")
    for _ in range(attempts):
        checkpoint = _live_checkpoint(read_path, projection.name)
        with tempfile.TemporaryDirectory(prefix="esctl-verify-") as scratch:
            paths = [os.path.join(scratch, f"rebuild{i}.db") for i in (1, 2)]
            for path in paths:
                _build(store, path, projection, checkpoint)
            report = _compare(paths, read_path, projection, checkpoint)
        if report is not None:
            return report
    raise StoreError(
        f"projection {projection.name!r} kept moving while being verified: stop its runner and retry"
    )


def _live_checkpoint(read_path: str, name: str) -> int:
    try:
        conn = sqlite3.connect(read_only_uri(read_path), uri=True)
        try:
            rec = catalog.record(conn, name)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{read_path} cannot hold read models: {exc}") from None
    if rec is None:
        raise NotFound(f"projection {name!r} has not been built: esctl project run {name}")
    return rec.checkpoint


def _build(store: EventStore, path: str, projection: Projection, checkpoint: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")  # scratch: thrown away after the comparison
    try:
        catch_up(store, conn, projection, to_position=checkpoint, batch_size=10_000)
    except ProjectionFailed as failed:
        raise ProjectionFailed(projection.name, failed.failure, "verify: the rebuild failed") from None
    finally:
        conn.close()


def _compare(
    paths: list[str], read_path: str, projection: Projection, checkpoint: int
) -> VerifyReport | None:
    conn = sqlite3.connect(pathlib.Path(paths[0]).as_uri(), uri=True, isolation_level=None)
    try:
        conn.execute("ATTACH DATABASE ? AS live", (read_only_uri(read_path),))
        conn.execute("ATTACH DATABASE ? AS again", (pathlib.Path(paths[1]).as_uri(),))
        conn.execute("BEGIN")  # one snapshot of the live tables and their checkpoint
        row = conn.execute(
            f"SELECT checkpoint, failure FROM live.{catalog.CATALOG} WHERE name = ?", (projection.name,)
        ).fetchone()
        if row is None or row[0] != checkpoint:
            return None  # it moved while we rebuilt: try again
        report = VerifyReport(projection.name, checkpoint, failure=codec.loads(row[1]) if row[1] else None)
        for name, table in projection.tables.items():
            live_columns = _columns(conn, "live", name)
            if not live_columns:
                report.add(Difference(name, "schema", {}, columns=["the live table is missing"]))
                continue
            report.rows[name] = conn.execute(f"SELECT count(*) FROM live.{quote(name)}").fetchone()[0]
            columns = _columns(conn, "main", name)
            if live_columns != columns:
                changed = sorted(set(live_columns) ^ set(columns))
                report.add(Difference(name, "schema", {}, columns=changed))
            common = [c for c in columns if c in live_columns]
            for difference in _differences(conn, name, table.key, common, "live"):
                report.add(difference)
            for difference in _differences(conn, name, table.key, columns, "again"):
                difference.kind = "nondeterministic"
                report.add(difference)
        conn.execute("COMMIT")
        return report
    finally:
        conn.close()


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA {schema}.table_info({quote(table)})")]


def _differences(
    conn: sqlite3.Connection, table: str, key: tuple[str, ...], columns: list[str], other: str
) -> Iterator[Difference]:
    """Rows of main.table (the rebuild) against other.table, matched on `key`."""
    keys = list(key) or ["rowid"]
    values = [c for c in columns if c not in keys]
    names = [*keys, *values]
    mine, theirs = f"main.{quote(table)}", f"{other}.{quote(table)}"
    match = " AND ".join(f"o.{quote(k)} = m.{quote(k)}" for k in keys)

    def select(alias: str) -> str:
        return ", ".join(f"{alias}.{quote(c)}" for c in names)

    def as_dict(row: tuple) -> dict[str, Any]:
        return dict(zip(names, row, strict=True))

    def key_of(d: dict[str, Any]) -> dict[str, Any]:
        return {k: d[k] for k in keys}

    for row in conn.execute(
        f"SELECT {select('m')} FROM {mine} AS m WHERE NOT EXISTS (SELECT 1 FROM {theirs} AS o WHERE {match})"
    ):
        d = as_dict(row)
        yield Difference(table, "missing", key_of(d), rebuilt=d)
    for row in conn.execute(
        f"SELECT {select('o')} FROM {theirs} AS o WHERE NOT EXISTS (SELECT 1 FROM {mine} AS m WHERE {match})"
    ):
        d = as_dict(row)
        yield Difference(table, "extra", key_of(d), live=d)
    if not values:
        return
    same = " AND ".join(
        f"(o.{quote(c)} IS m.{quote(c)} AND typeof(o.{quote(c)}) = typeof(m.{quote(c)}))" for c in values
    )
    width = len(names)
    for row in conn.execute(
        f"SELECT {select('m')}, {select('o')} FROM {mine} AS m JOIN {theirs} AS o ON {match} WHERE NOT ({same})"
    ):
        rebuilt, live = as_dict(row[:width]), as_dict(row[width:])
        changed = [c for c in values if rebuilt[c] != live[c] or type(rebuilt[c]) is not type(live[c])]
        yield Difference(table, "different", key_of(rebuilt), live=live, rebuilt=rebuilt, columns=changed)
