"""Aggregate state as plain JSON-shaped values (dicts, lists, scalars).

Used for output and for diffs. The result is a deep copy, so a handler that later
mutates the state in place cannot change a value already taken. Decimal, datetime,
date and UUID stay as they are (esctl.codec writes them exactly)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from esctl.aggregates.errors import ModelError

_SCALARS = (str, int, float, bool, Decimal, dt.datetime, dt.date, dt.time, uuid.UUID)


def to_plain(value: Any, path: str = "") -> Any:
    if value is None or (isinstance(value, _SCALARS) and not isinstance(value, enum.Enum)):
        return value
    if isinstance(value, dict):
        return {_key(k): to_plain(v, _join(path, k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v, _join(path, i)) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_plain(getattr(value, f.name), _join(path, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, enum.Enum):
        return to_plain(value.value, path)
    if isinstance(value, (set, frozenset)):
        items = [to_plain(v, path) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if hasattr(value, "to_json"):
        return to_plain(value.to_json(), path)
    where = f" at {path!r}" if path else ""
    raise ModelError(
        f"aggregate state is not JSON-serialisable: {type(value).__name__}{where}"
        " (use dicts, lists, dataclasses, str, int, Decimal, datetime)"
    )


def _key(key: Any) -> str:
    return key if isinstance(key, str) else str(to_plain(key))


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)
