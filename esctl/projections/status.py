"""A projection's status: live (caught up), behind, stale (its code changed since it
was built, or a table it built is gone) failed (with the event it failed on), or retrying it
(its handler failed, its retries not yet run out)."""

from __future__ import annotations

from typing import Any

from esctl.projections.definition import Projection
from esctl.projections.runner import lost_tables
from esctl.store.readmodels import ReadModels

LIVE, BEHIND, STALE, FAILED, RETRYING = "live", "behind", "stale", "failed", "retrying"


def status(db: ReadModels | None, projection: Projection, head: int) -> dict[str, Any]:
    """{"name", "checkpoint", "head", "lag", "status"}, plus "error" when failed and
    "missing" (the tables) when stale because tables it built are gone.
    `db` is None when the read-model database does not exist yet."""
    rec = db.record(projection.name) if db is not None else None
    checkpoint = rec.checkpoint if rec else 0
    doc: dict[str, Any] = {
        "name": projection.name,
        "checkpoint": checkpoint,
        "head": head,
        "lag": max(head - checkpoint, 0),
    }
    lost = lost_tables(rec, projection, db.present(projection.name)) if db and rec else []
    if lost:
        doc["status"] = STALE
        doc["missing"] = lost
    elif rec is not None and rec.failure is not None:
        doc["status"] = RETRYING if rec.failure.get("retrying") else FAILED
        doc["error"] = rec.failure
    elif rec is not None and rec.fingerprint != projection.fingerprint:
        doc["status"] = STALE
    else:
        doc["status"] = LIVE if checkpoint >= head else BEHIND
    return doc
