"""What a durable consumer keeps between runs: its checkpoint, the retry schedule
of the event it is on, its circuit breaker, and the events it parked.

The tables live with the read models (the store's file or database, or --read-db),
in SQL both backends run (SQLite-style placeholders, which the PostgreSQL backend
translates):

- `esctl_consumers`: one row per group: its filter, park mode, checkpoint (every
  event up to it has been handled: its command succeeded, or it was parked), the
  attempt on the event after it (`attempt`, `retry_at`), and the breaker
  (`failures` in a row, `breaker`, `trial_at`).
- `esctl_parked`: events set aside, with their last error; `state` is `parked`
  (its retries ran out), `held` (a later event of a parked stream, in `stream`
  mode), `retry` (put back in line by `dlq retry`), `done` (delivered after a
  retry) or `skipped` (given up by `dlq skip`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from esctl import codec
from esctl.events import utc_now
from esctl.store.readmodels import ReadModels

CONSUMERS = "esctl_consumers"
PARKED = "esctl_parked"
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
# Parked rows that still stand in a stream's way, and those waiting to be delivered.
WAITING = ("parked", "held", "retry")

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {CONSUMERS} (
        name       TEXT PRIMARY KEY,
        filter     TEXT NOT NULL,
        park_mode  TEXT NOT NULL,
        checkpoint BIGINT NOT NULL DEFAULT 0,
        attempt    BIGINT NOT NULL DEFAULT 0,
        attempt_at BIGINT NOT NULL DEFAULT 0,
        retry_at   DOUBLE PRECISION NOT NULL DEFAULT 0,
        failures   BIGINT NOT NULL DEFAULT 0,
        breaker    TEXT NOT NULL DEFAULT 'closed',
        trial_at   DOUBLE PRECISION NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    f"""CREATE TABLE IF NOT EXISTS {PARKED} (
        consumer    TEXT NOT NULL,
        position    BIGINT NOT NULL,
        stream      TEXT NOT NULL,
        version     BIGINT NOT NULL,
        type        TEXT NOT NULL,
        id          TEXT NOT NULL,
        state       TEXT NOT NULL,
        attempts    BIGINT NOT NULL,
        exit_code   BIGINT,
        error       TEXT NOT NULL,
        parked_at   TEXT NOT NULL,
        history     TEXT NOT NULL,
        PRIMARY KEY (consumer, position)
    )""",
)
# What changes as a consumer runs, in Consumer's field order.
_STATE = ("checkpoint", "attempt", "attempt_at", "retry_at", "failures", "breaker", "trial_at")
_CONSUMER_COLUMNS = ", ".join(("name", "filter", "park_mode", *_STATE))
_PARKED = (
    "consumer", "position", "stream", "version", "type", "id", "state", "attempts", "exit_code", "error",
    "parked_at", "history",
)  # fmt: skip
_PARKED_COLUMNS = ", ".join(_PARKED)
# What a parked event's later steps change (its history JSON-encoded).
_OUTCOME = ("state", "attempts", "exit_code", "error", "history")


@dataclass
class Consumer:
    """A consumer group's row."""

    name: str
    filter: dict[str, list[str]]
    park_mode: str
    checkpoint: int = 0
    attempt: int = 0  # attempts made on the event at position `attempt_at`
    attempt_at: int = 0
    retry_at: float = 0.0  # when the next attempt may run (seconds since the epoch)
    failures: int = 0  # failures in a row, for the breaker
    breaker: str = CLOSED
    trial_at: float = 0.0  # when an open breaker lets one trial call through

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Consumer:
        name, filter_, mode, *rest = row
        return cls(name, codec.loads(filter_), mode, *rest)


@dataclass
class Parked:
    """An event set aside by a consumer."""

    consumer: str
    position: int
    stream: str
    version: int
    type: str
    id: str
    state: str
    attempts: int
    exit_code: int | None
    error: str
    parked_at: str
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Parked:
        *head, history = row
        return cls(*head, history=codec.loads(history))

    def to_dict(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "position": self.position,
            "stream": self.stream,
            "version": self.version,
            "type": self.type,
            "id": self.id,
            "state": self.state,
            "attempts": self.attempts,
            "exit_code": self.exit_code,
            "error": self.error,
            "parked_at": self.parked_at,
            "history": self.history,
        }


class ConsumerStore:
    """The consumer tables of one read-model database. Writes run in the caller's
    transaction (`db.transaction(name)`), but for `ensure`."""

    def __init__(self, db: ReadModels) -> None:
        self.db = db
        self._ready = False

    def ensure(self) -> None:
        """Make the tables if need be (in a transaction of their own)."""
        if self._ready:
            return
        with self.db.transaction("esctl consumers"):
            for ddl in _DDL:
                self.db.execute(ddl)
        self._ready = True

    def _exists(self) -> bool:
        if not self._ready:
            self._ready = self.db.has_table(PARKED)
        return self._ready

    # --- consumers -------------------------------------------------------------------

    def get(self, name: str, *, lock: bool = False) -> Consumer | None:
        if not self._exists():
            return None
        sql = f"SELECT {_CONSUMER_COLUMNS} FROM {CONSUMERS} WHERE name = ?"
        if lock and self.db.dialect == "postgresql":
            sql += " FOR UPDATE"
        row = self.db.execute(sql, (name,)).fetchone()
        return Consumer.from_row(row) if row else None

    def all(self) -> list[Consumer]:
        if not self._exists():
            return []
        rows = self.db.execute(f"SELECT {_CONSUMER_COLUMNS} FROM {CONSUMERS} ORDER BY name").fetchall()
        return [Consumer.from_row(row) for row in rows]

    def create(self, consumer: Consumer) -> None:
        now = utc_now()
        marks = ", ".join("?" * (len(_STATE) + 5))
        self.db.execute(
            f"INSERT INTO {CONSUMERS} ({_CONSUMER_COLUMNS}, created_at, updated_at) VALUES ({marks})",
            (
                consumer.name,
                codec.dumps_text(consumer.filter),
                consumer.park_mode,
                *_values(consumer, _STATE),
                now,
                now,
            ),
        )

    def save(self, consumer: Consumer) -> None:
        """Its checkpoint, retry schedule and breaker."""
        sets = ", ".join(f"{column} = ?" for column in _STATE)
        self.db.execute(
            f"UPDATE {CONSUMERS} SET {sets}, updated_at = ? WHERE name = ?",
            (*_values(consumer, _STATE), utc_now(), consumer.name),
        )

    # --- parked events ---------------------------------------------------------------

    def park(self, parked: Parked) -> None:
        marks = ", ".join("?" * len(_PARKED))
        self.db.execute(
            f"INSERT INTO {PARKED} ({_PARKED_COLUMNS}) VALUES ({marks})", _values(parked, _PARKED)
        )

    def update(self, parked: Parked) -> None:
        sets = ", ".join(f"{column} = ?" for column in _OUTCOME)
        self.db.execute(
            f"UPDATE {PARKED} SET {sets} WHERE consumer = ? AND position = ?",
            (*_values(parked, _OUTCOME), parked.consumer, parked.position),
        )

    def parked(self, consumer: str | None = None, *, states: Sequence[str] = ()) -> list[Parked]:
        """Parked events in position order (of one consumer, in some states)."""
        if not self._exists():
            return []
        where, params = [], []
        if consumer is not None:
            where.append("consumer = ?")
            params.append(consumer)
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            params.extend(states)
        sql = f"SELECT {_PARKED_COLUMNS} FROM {PARKED}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.db.execute(sql + " ORDER BY consumer, position", params).fetchall()
        return [Parked.from_row(row) for row in rows]

    def one(self, consumer: str, position: int) -> Parked | None:
        if not self._exists():
            return None
        row = self.db.execute(
            f"SELECT {_PARKED_COLUMNS} FROM {PARKED} WHERE consumer = ? AND position = ?",
            (consumer, position),
        ).fetchone()
        return Parked.from_row(row) if row else None

    def held_streams(self, consumer: str) -> set[str]:
        """Streams with an event still set aside: in `stream` mode their later
        events wait behind it."""
        rows = self.db.execute(
            f"SELECT DISTINCT stream FROM {PARKED} WHERE consumer = ? AND state IN (?, ?, ?)",
            (consumer, *WAITING),
        )
        return {row[0] for row in rows}

    def waiting_in(self, consumer: str, stream: str) -> set[str]:
        """The states of the stream's events still set aside (parked, held, retry)."""
        rows = self.db.execute(
            f"SELECT DISTINCT state FROM {PARKED} WHERE consumer = ? AND stream = ? AND state IN (?, ?, ?)",
            (consumer, stream, *WAITING),
        )
        return {row[0] for row in rows}

    def counts(self) -> dict[str, int]:
        """Events still set aside (parked, held or waiting to be re-driven) per consumer."""
        if not self._exists():
            return {}
        rows = self.db.execute(
            f"SELECT consumer, count(*) FROM {PARKED} WHERE state IN (?, ?, ?) GROUP BY consumer", WAITING
        )
        return {name: n for name, n in rows}


def _values(record: Consumer | Parked, columns: Sequence[str]) -> tuple[Any, ...]:
    """The record's fields for these columns (a history as its JSON)."""
    return tuple(
        codec.dumps_text(getattr(record, c)) if c == "history" else getattr(record, c) for c in columns
    )


def history_entry(what: str, **details: Any) -> dict[str, Any]:
    return {"at": utc_now(), "what": what, **details}
