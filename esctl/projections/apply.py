"""Applying a batch of stored events to a projection's tables: decode, upcast,
dispatch to the handler for each type, flush the queued writes. The caller owns the
transaction; a failure names the exact event and leaves the caller to roll back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from esctl import codec
from esctl.errors import EsctlError
from esctl.events import ENVELOPE_KEYS, RecordedEvent
from esctl.projections.definition import Projection
from esctl.projections.tables import Tables
from esctl.store.readmodels import ReadModels
from esctl.store.rows import StoredRow, check_stored_json
from esctl.subscriptions.catchup import Failure, HandlerFailed
from esctl.usercode import where


def _envelope_factory() -> Callable[..., RecordedEvent]:
    """RecordedEvent(...) for a million events: a frozen dataclass's __init__ sets each
    field through object.__setattr__ (~1 us an event); setting the slots directly
    builds the same object in half the time."""
    try:
        s0, s1, s2, s3, s4, s5, s6, s7 = (RecordedEvent.__dict__[f].__set__ for f in ENVELOPE_KEYS)
    except (KeyError, AttributeError):  # not a slots class any more: the plain way
        return RecordedEvent

    new = object.__new__

    def envelope(s: str, v: int, p: int, t: str, d: Any, m: Any, i: str, r: str) -> RecordedEvent:
        event = new(RecordedEvent)
        s0(event, s), s1(event, v), s2(event, p), s3(event, t)
        s4(event, d), s5(event, m), s6(event, i), s7(event, r)
        return event

    return envelope


envelope = _envelope_factory()


class ProjectionFailed(EsctlError):
    """A handler raised: nothing of its batch was written and the checkpoint did not move.
    Exit 2, as for an aggregate's handler: the model has to change, not the store."""

    exit_code = 2

    def __init__(self, name: str, failure: Failure, doing: str = "failed") -> None:
        self.name, self.failure = name, failure
        super().__init__(f"projection {name!r} {doing} at {failure.describe()}")


class Applier:
    """Applies stored rows (esctl.store.rows.StoredRow) to one projection's tables in
    a read-model database: its live tables, or (`shadow`) the ones a rebuild fills,
    which handlers name as plainly."""

    def __init__(self, projection: Projection, db: ReadModels, *, shadow: bool = False) -> None:
        self.projection = projection
        self.db = db
        self.handlers = projection.handlers
        self.guard = db.target(projection.name, list(projection.tables), shadow=shadow)
        self.tables = Tables(db, projection.tables, self.guard)
        self.upcast = projection.upcast

    def close(self) -> None:
        self.guard.close()

    def apply(self, rows: Sequence[StoredRow]) -> int:
        """Apply the rows; returns how many reached a handler. Raises HandlerFailed."""
        if not rows:
            return 0
        with self.db.savepoint() as savepoint:
            try:
                return self._run(rows, immediate=False)
            except HandlerFailed:
                # Queued writes fail late, so the event named may not be the culprit:
                # replay the batch writing at once to find the exact event.
                savepoint.rollback()
                return self._run(rows, immediate=True)

    def _run(self, rows: Sequence[StoredRow], *, immediate: bool) -> int:
        tables, handlers, upcast = self.tables, self.handlers, self.upcast
        loads, make = codec.loads, envelope
        tables.immediate = immediate
        applied = 0
        event: RecordedEvent | None = None
        self.guard.arm()
        try:
            for s, v, p, t, data, metadata, i, r in rows:
                event = make(s, v, p, t, loads(data), loads(metadata), i, r)
                if upcast is not None:
                    event = upcast(event)
                handler = handlers.get(event.type)
                if handler is not None:
                    handler(event, tables)
                    applied += 1
            event = None
            tables.flush()
        except Exception as exc:
            if self.db.translate(exc) is not None:
                raise  # a full disk, a read-only file, a lost server: not the handler's fault
            if isinstance(exc, codec.JSONDecodeError):
                check_stored_json(f"event {p} ({s} v{v})", data=data, metadata=metadata)
            if event is None:  # the final flush: blame the last event
                last = rows[-1]
                event = RecordedEvent(
                    last.stream, last.version, last.position, last.type, {}, {}, last.id, last.recorded_at
                )
            raise HandlerFailed(self._failure(event, exc)) from exc
        finally:
            tables.discard()
            self.guard.disarm()
        return applied

    def _failure(self, event: RecordedEvent, exc: BaseException) -> Failure:
        message = f"{type(exc).__name__}: {exc}"
        if self.guard.refused:
            message = (
                f"refused {self.guard.refused}: projection {self.projection.name!r} may only touch"
                f" its own tables ({', '.join(self.projection.tables)})"
            )
        return Failure(event.position, event.stream, event.version, event.type, where(exc) + message)
