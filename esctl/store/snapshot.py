"""A snapshot: an aggregate's state at a version, as every backend keeps it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STALE_AFTER = 7 * 24 * 3600  # seconds without a new snapshot by some code before its rows go


@dataclass(frozen=True, slots=True)
class Snapshot:
    stream: str
    version: int
    aggregate: str
    fingerprint: str
    state: str  # encoded; decode with statecodec.loads
    created_at: str

    def to_dict(self, current_fingerprint: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "stream": self.stream,
            "version": self.version,
            "aggregate": self.aggregate,
            "fingerprint": self.fingerprint,
            "bytes": len(self.state.encode()),
            "created_at": self.created_at,
        }
        if current_fingerprint is not None:
            doc["valid"] = self.fingerprint == current_fingerprint
        return doc
