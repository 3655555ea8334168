"""Retry, backoff and the circuit breaker: one set of rules for every handler a
subscription calls (a consumer's command or Python handler, a projection's
handlers, and reactors and sagas), over a schedule the subscription stores.

- **Retry:** a failed attempt is tried again after a delay with exponential
  backoff and full jitter (uniform in [0, min(max, base * 2**(attempt-1))]),
  `retries` times. The attempt count and the time of the next attempt are
  stored with the subscription, so a restarted runner resumes the schedule.
- **Circuit breaker:** after `break_after` failures in a row (across events) it
  opens: no call until `cool_down` has passed, then one trial (half-open);
  success closes it, a failure opens it again.

Time comes from an injectable clock, so tests of the schedule need no sleeping.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from esctl.errors import InvalidInput
from esctl.store.consumers import CLOSED, HALF_OPEN, OPEN

PARK_MODES = ("event", "stream")


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class ManualClock:
    """Time that passes only when slept through (for tests): `sleeps` lists them."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


@dataclass(frozen=True)
class Retry:
    """How a handler's failures are retried, and when its breaker opens."""

    retries: int = 3  # attempts after the first
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    break_after: int = 5
    cool_down: float = 30.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.break_after < 1:
            raise InvalidInput("--retries must be 0 or more and --break-after 1 or more")
        if not 0 <= self.backoff_base <= self.backoff_max or self.cool_down < 0:
            raise InvalidInput("--backoff BASE[:MAX] needs 0 <= BASE <= MAX, and --cool-down 0 or more")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: a uniform wait up to the exponential backoff of `attempt`."""
        return rng.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class Settings(Retry):
    """A consumer's: its retries, how it parks, and its lease."""

    park_mode: str = "stream"
    lease_seconds: float = 5.0
    wait_for_lease: bool = True

    def __post_init__(self) -> None:
        if self.park_mode not in PARK_MODES:
            raise InvalidInput(f"--park must be event or stream, got {self.park_mode!r}")
        super().__post_init__()


class Schedule(Protocol):
    """Where a handler stands, as its subscription stores it."""

    attempt: int  # attempts made on the event at `attempt_at`
    attempt_at: int
    retry_at: float  # when the next attempt is due (0: now)
    failures: int  # failures in a row, across events
    breaker: str
    trial_at: float  # when an open breaker lets one trial through


@dataclass
class RetryState:
    """A Schedule kept as a document (with a projection's failure record)."""

    attempt: int = 0
    attempt_at: int = 0
    retry_at: float = 0.0
    failures: int = 0
    breaker: str = CLOSED
    trial_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any] | None) -> RetryState:
        return cls(**doc) if doc else cls()


def start(schedule: Schedule, position: int) -> None:
    """Attempts on the event at `position`: a schedule for another event does not carry over."""
    if schedule.attempt_at != position:
        schedule.attempt, schedule.attempt_at, schedule.retry_at = 0, position, 0.0


def due(schedule: Schedule) -> float:
    """When the next attempt may be made: after the backoff, and the breaker's cool-down."""
    return max(schedule.retry_at, schedule.trial_at if schedule.breaker == OPEN else 0.0)


def trial(schedule: Schedule, now: float) -> bool:
    """Half-open an open breaker whose cool-down has passed (one trial call).
    True when it changed (for the caller to store)."""
    if schedule.breaker == OPEN and now >= schedule.trial_at:
        schedule.breaker = HALF_OPEN
        return True
    return False


def failed(schedule: Schedule, retry: Retry, now: float, rng: random.Random) -> bool:
    """Count a failed attempt (the one after `schedule.attempt`): the breaker may
    open, the next attempt is scheduled. True when it was the last."""
    schedule.attempt += 1
    schedule.failures += 1
    if schedule.breaker == HALF_OPEN or schedule.failures >= retry.break_after:
        schedule.breaker, schedule.trial_at = OPEN, now + retry.cool_down
    last = schedule.attempt > retry.retries
    schedule.retry_at = 0.0 if last else now + retry.delay(schedule.attempt, rng)
    return last


def finished(schedule: Schedule, succeeded: bool) -> None:
    """The event is handled (or given up): no schedule left. Only a success closes
    the breaker and ends the run of failures."""
    schedule.attempt, schedule.retry_at = 0, 0.0
    if succeeded:
        schedule.failures, schedule.breaker, schedule.trial_at = 0, CLOSED, 0.0
