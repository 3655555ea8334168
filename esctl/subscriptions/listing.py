"""Every subscription of a store in one list (`esctl consumers`): projections
from the read-model catalog, consumer groups from their table."""

from __future__ import annotations

from typing import Any

from esctl.store.consumers import ConsumerStore
from esctl.store.readmodels import ReadModels


def subscriptions(db: ReadModels, head: int) -> list[dict[str, Any]]:
    """{name, kind, checkpoint, head, lag, status, parked, breaker, holder} for
    each: status is live, behind, retrying or failed (a projection stuck on an event);
    lag counts positions, wanted or not."""
    docs = []
    for name, rec in sorted(db.records().items()):
        failure = rec.failure or {}
        status = (
            "retrying"
            if failure.get("retrying")
            else "failed"
            if failure
            else "live"
            if rec.checkpoint >= head
            else "behind"
        )
        breaker = failure.get("schedule", {}).get("breaker", "closed")
        holder = db.rebuilder(name) or db.lease_holder(f"projection:{name}")
        docs.append(_doc(name, "projection", rec.checkpoint, head, status, 0, breaker, holder))
    state = ConsumerStore(db)
    parked = state.counts()
    for consumer in state.all():
        status = "live" if consumer.checkpoint >= head else "behind"
        holder = db.lease_holder(f"consumer:{consumer.name}")
        docs.append(
            _doc(
                consumer.name,
                "consumer",
                consumer.checkpoint,
                head,
                status,
                parked.get(consumer.name, 0),
                consumer.breaker,
                holder,
            )
        )
    return docs


def _doc(
    name: str,
    kind: str,
    checkpoint: int,
    head: int,
    status: str,
    parked: int,
    breaker: str | None,
    holder: str | None,
) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "checkpoint": checkpoint,
        "head": head,
        "lag": max(head - checkpoint, 0),
        "status": status,
        "parked": parked,
        "breaker": breaker,
        "holder": holder,
    }
