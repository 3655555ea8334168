"""Errors specific to aggregates (ModelError, for any part of a model, is in
esctl.errors): input problems (exit 2), the model or the stored events do not
fit together, and the user has to change one of them."""

from __future__ import annotations

from esctl.errors import InvalidInput


class UnknownEventType(InvalidInput):
    """`--strict` replay met an event type its aggregate has no handler for."""

    def __init__(self, aggregate: str, stream: str, version: int, event_type: str) -> None:
        self.stream, self.version, self.event_type = stream, version, event_type
        super().__init__(
            f"{aggregate} has no handler for event type {event_type!r} (stream {stream!r}, version {version})"
        )
