"""The event envelope: what is appended (NewEvent), what is stored (RecordedEvent),
and the validation rules for names, ids, versions and sizes."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Union

from esctl.errors import InvalidInput, shown
from esctl.ids import CANONICAL_ID, canonical_id

MAX_EVENT_BYTES = 16 * 1024 * 1024
ENVELOPE_KEYS = ("stream", "version", "position", "type", "data", "metadata", "id", "recorded_at")

# 1-255 characters, none of them whitespace, a control character or a lone surrogate
# (undecodable bytes in a command-line argument arrive as surrogates).
_NAME = re.compile(r"[^\s\x00-\x1f\x7f-\x9f\ud800-\udfff]{1,255}")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_DIGITS = re.compile(r"[0-9]{1,18}")


# --- expected versions -----------------------------------------------------------


class _Sentinel(str):
    """A named expected-version rule ('any', 'no-stream', 'exists')."""


ANY = _Sentinel("any")
NO_STREAM = _Sentinel("no-stream")
EXISTS = _Sentinel("exists")
ExpectedVersion = Union[_Sentinel, int]


def parse_expected_version(value: object, where: str = "") -> ExpectedVersion:
    if isinstance(value, _Sentinel):
        return value
    if isinstance(value, bool):
        raise InvalidInput(
            f"{where}expected version must be any, no-stream, exists or an integer, got {value!r}"
        )
    if isinstance(value, int):
        if not 0 <= value < 2**63:
            raise InvalidInput(f"{where}expected version must be from 0 to 2**63-1, got {value}")
        return value
    if isinstance(value, str):
        for rule in (ANY, NO_STREAM, EXISTS):
            if value == rule:
                return rule
        if _DIGITS.fullmatch(value):
            return int(value)
    raise InvalidInput(f"{where}expected version must be any, no-stream, exists or an integer, got {value!r}")


def version_matches(expected: ExpectedVersion, actual: int) -> bool:
    if expected is ANY:
        return True
    if expected is NO_STREAM:
        return actual == 0
    if expected is EXISTS:
        return actual > 0
    return expected == actual


# --- names ------------------------------------------------------------------------


def check_stream(name: object, where: str = "", *, allow_reserved: bool = False) -> str:
    _check_name(name, "stream", where)
    assert isinstance(name, str)
    if name[0] == "$" and not allow_reserved:
        raise InvalidInput(f"{where}stream names starting with '$' are reserved, got {name!r}")
    return name


def check_type(name: object, where: str = "") -> str:
    return _check_name(name, "type", where)


def _check_name(name: object, key: str, where: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f'{where}"{key}" must be 1-255 characters with no whitespace or control'
            f" characters, got {shown(name)}"
        )
    return name


def check_object(value: object, key: str, where: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f'{where}"{key}" must be a JSON object, got {shown(value)}')
    return value


def check_timestamp(value: object, where: str = "") -> str:
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise InvalidInput(
            f'{where}"recorded_at" must be a UTC timestamp like 2026-01-31T12:00:00.000000Z,'
            f" got {shown(value)}"
        )
    try:
        datetime.fromisoformat(value[:-1])  # the format is checked: this checks the date
    except ValueError:
        raise InvalidInput(f'{where}"recorded_at" is not a valid date, got {value!r}') from None
    return value


def metadata_id(what: str, given: str | None, key: str, metadata: dict[str, Any] | None) -> object:
    """An id given both on its own (`--correlation-id`) and in the metadata (its
    `key`, e.g. correlation_id): the same value twice is fine; two different ones
    are refused (InvalidInput). Returns the one value, None when neither has it."""
    in_metadata = (metadata or {}).get(key)
    if given is not None and in_metadata is not None and given != in_metadata:
        raise InvalidInput(f"two {what}s: {given!r}, and {in_metadata!r} in metadata {key}")
    return given if given is not None else in_metadata


def category_of(stream: str) -> str:
    """The part of a stream name before its first '-' (the whole name if it has none)."""
    return stream.partition("-")[0]


# --- timestamps -------------------------------------------------------------------


def utc_now() -> str:
    """Now in UTC, microseconds, ISO 8601 with Z: the format of recorded_at."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + (
        f".{ns // 1000 % 1_000_000:06d}Z"
    )


def parse_timestamp(text: str) -> str:
    """Accept any ISO 8601 instant (naive means UTC) and return it in recorded_at form."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"not an ISO 8601 timestamp: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- envelopes --------------------------------------------------------------------


@dataclass(slots=True)
class NewEvent:
    """An event to append. `expected_version` applies to this event's stream just
    before this event is written; `version` (from an export line) is the exact
    version this event must get."""

    stream: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    expected_version: ExpectedVersion = ANY
    recorded_at: str | None = None


@dataclass(slots=True)
class _Checked(NewEvent):
    """A NewEvent as `envelope_from_dict` made it, `validate`d already: the writer
    does not check it a second time (one check per line of an import)."""


@dataclass(slots=True, frozen=True)
class RecordedEvent:
    stream: str
    version: int
    position: int
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    id: str
    recorded_at: str

    @property
    def category(self) -> str:
        return category_of(self.stream)

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in ENVELOPE_KEYS}


_LINE_KEYS = frozenset(ENVELOPE_KEYS) | {"expected_version"}
_PLAIN_KEYS = frozenset(("stream", "type", "data", "metadata", "id"))


def validate(event: NewEvent, where: str = "") -> None:
    """Check an event about to be written, and put its id in canonical form.
    Known-good names are cached: this runs for every event written, once (an
    envelope read from NDJSON is checked as it is read)."""
    if type(event) is not _Checked:
        _check(event, where)


def _check(event: NewEvent, where: str) -> None:
    event.id = _checked_id(
        event.stream, event.type, event.data, event.metadata, event.id, event.recorded_at, where
    )


def _checked_id(
    stream: object,
    event_type: object,
    data: object,
    metadata: object,
    event_id: object,
    recorded_at: object,
    where: str,
) -> str | None:
    """The rules every written event follows, in one place: raise InvalidInput, or
    return the event's id in canonical form."""
    if type(stream) is not str or stream not in _valid_streams:
        _remember(_valid_streams, check_stream(stream, where))
    if type(event_type) is not str or event_type not in _valid_types:
        _remember(_valid_types, check_type(event_type, where))
    if type(data) is not dict:
        check_object(data, "data", where)
    if type(metadata) is not dict:
        check_object(metadata, "metadata", where)
    if recorded_at is not None and (type(recorded_at) is not str or not _TIMESTAMP.fullmatch(recorded_at)):
        check_timestamp(recorded_at, where)
    if event_id is None or (type(event_id) is str and CANONICAL_ID.fullmatch(event_id)):
        return event_id
    return canonical_id(event_id, where)


def _remember(cache: set[str], name: str) -> None:
    if len(cache) > 100_000:  # bound memory on imports of very many streams
        cache.clear()
    cache.add(name)


def envelope_from_dict(obj: object, where: str = "") -> NewEvent:
    """Validate one decoded NDJSON envelope (as written by hand or by `export`)."""
    if type(obj) is not dict and not isinstance(obj, dict):
        raise InvalidInput(f"{where}expected a JSON object, got {shown(obj)}")
    plain = _PLAIN_KEYS.issuperset(obj)  # most lines: no versions, positions or times
    if not plain and not _LINE_KEYS.issuperset(obj):
        raise InvalidInput(f"{where}unknown field {sorted(obj.keys() - _LINE_KEYS)[0]!r}")
    get = obj.get
    stream, event_type = get("stream"), get("type")
    if stream is None or event_type is None:
        raise InvalidInput(f'{where}"{"stream" if stream is None else "type"}" is required')
    expected: ExpectedVersion = ANY
    recorded_at = None
    if not plain:
        expected = _line_expected_version(obj, where)
        recorded_at = get("recorded_at")
        if recorded_at is not None:
            check_timestamp(recorded_at, where)  # the full check, a real date included
        position = get("position")
        if position is not None and (isinstance(position, bool) or not isinstance(position, int)):
            raise InvalidInput(f'{where}"position" must be an integer, got {shown(position)}')
    data, metadata = get("data", {}), get("metadata", {})
    event_id = _checked_id(stream, event_type, data, metadata, get("id"), recorded_at, where)
    return _Checked(stream, event_type, data, metadata, event_id, expected, recorded_at)


_valid_streams: set[str] = set()
_valid_types: set[str] = set()


def _line_expected_version(obj: dict[str, Any], where: str) -> ExpectedVersion:
    if "version" in obj:
        version = obj["version"]
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**63:
            raise InvalidInput(f'{where}"version" must be a positive integer, got {shown(version)}')
        if "expected_version" in obj:
            raise InvalidInput(f'{where}give "version" or "expected_version", not both')
        return version - 1
    if "expected_version" in obj:
        return parse_expected_version(obj["expected_version"], f'{where}"expected_version": ')
    return ANY
