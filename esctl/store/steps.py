"""A numbered step of a backend's schema (its migrations/ package lists them)."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True, slots=True)
class Step:
    version: int
    summary: str
    module: ModuleType  # with VERSION, SUMMARY and up(connection)

    def to_dict(self) -> dict[str, object]:
        return {"version": self.version, "summary": self.summary}
