"""Verifying a projection: rebuild it twice into scratch databases, up to the live
checkpoint, and compare row by row.

Rows are matched on the table's primary key (a table without one: on SQLite by
rowid, on PostgreSQL as a multiset of rows). The live tables against the first
rebuild give rows missing (in the rebuild, not live), extra (live only) and
different (same key, other values); the first rebuild against the second gives rows
that differ between two replays of the same events: a non-deterministic projection
(clock, randomness, iteration order, outside state). Values compare with their type
(on SQLite, 1 is not 1.0 is not '1').
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from esctl.errors import NotFound, StoreError
from esctl.projections.apply import ProjectionFailed
from esctl.projections.definition import Projection
from esctl.projections.runner import catch_up
from esctl.store.protocol import EventStoreBackend
from esctl.store.readmodels import ReadModels

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
    store: EventStoreBackend, db: ReadModels, projection: Projection, *, attempts: int = 3
) -> VerifyReport:
    """Rebuild the projection twice up to its live checkpoint and compare; tries
    again (up to `attempts`) when a runner moves it meanwhile."""
    for _ in range(attempts):
        checkpoint = _live_checkpoint(db, projection.name)
        with db.scratch(2) as rebuilds:
            for scratch in rebuilds:
                _build(store, scratch, projection, checkpoint)
            report = _compare(db, rebuilds, projection, checkpoint)
        if report is not None:
            return report
    raise StoreError(
        f"projection {projection.name!r} kept moving while being verified: stop its runner and retry"
    )


def _live_checkpoint(db: ReadModels, name: str) -> int:
    rec = db.record(name)
    if rec is None:
        raise NotFound(f"projection {name!r} has not been built: esctl project run {name}")
    return rec.checkpoint


def _build(store: EventStoreBackend, db: ReadModels, projection: Projection, checkpoint: int) -> None:
    try:
        catch_up(store, db, projection, to_position=checkpoint, batch_size=10_000)
    except ProjectionFailed as failed:
        raise ProjectionFailed(projection.name, failed.failure, "verify: the rebuild failed") from None


def _compare(
    db: ReadModels, rebuilds: list[ReadModels], projection: Projection, checkpoint: int
) -> VerifyReport | None:
    with db.compare(projection.name, rebuilds) as compared:
        rec = compared.record()
        if rec is None or rec.checkpoint != checkpoint:
            return None  # it moved while we rebuilt: try again
        report = VerifyReport(projection.name, checkpoint, failure=rec.failure)
        for name, table in projection.tables.items():
            live_columns = compared.columns(name, "live")
            if not live_columns:
                report.add(Difference(name, "schema", {}, columns=["the live table is missing"]))
                continue
            report.rows[name] = compared.count(name)
            columns = compared.columns(name, "rebuilt")
            if live_columns != columns:
                changed = sorted(set(live_columns) ^ set(columns))
                report.add(Difference(name, "schema", {}, columns=changed))
            common = [c for c in columns if c in live_columns]
            for side, kind_of in (("live", None), ("again", "nondeterministic")):
                for kind, key, theirs, rebuilt, changed in compared.differences(
                    name, table.key, common if side == "live" else columns, side
                ):
                    report.add(Difference(name, kind_of or kind, key, theirs, rebuilt, changed))
        return report
