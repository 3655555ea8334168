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

from esctl.aggregates.changes import join
from esctl.errors import ModelError
from esctl.usercode import where

_SCALARS = (str, int, float, bool, Decimal, dt.datetime, dt.date, dt.time, uuid.UUID)
_JSON_SCALARS = frozenset((str, int, float, bool, type(None)))


class _NotPlain(Exception):
    pass


def to_plain(value: Any, path: str = "") -> Any:
    # The common shapes (dicts, lists, JSON scalars) without tracking the path; the
    # path is worked out again only to explain a value that cannot be made plain.
    try:
        return _plain(value)
    except _NotPlain:
        return _convert(value, path)


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind in _JSON_SCALARS:
        return value
    if kind is dict:
        return {k if type(k) is str else _key(k): _plain(v) for k, v in value.items()}
    if kind is list:
        return [_plain(v) for v in value]
    return _convert(value, None)


def _convert(value: Any, path: str | None) -> Any:
    """Any value. With path None, the fast walk (it raises _NotPlain on a value it
    cannot convert); with a path, the walk that names where that value is."""

    def child(v: Any, key: Any = None) -> Any:
        if path is None:
            return _plain(v)
        return _convert(v, path if key is None else join(path, key))

    if value is None or (isinstance(value, _SCALARS) and not isinstance(value, enum.Enum)):
        return value
    if isinstance(value, enum.Enum):
        return child(value.value)
    if isinstance(value, dict):
        return {_key(k): child(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [child(v, i) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: child(getattr(value, f.name), f.name) for f in dataclasses.fields(value)}
    if isinstance(value, (set, frozenset)):
        items = [child(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if hasattr(value, "to_json"):
        try:
            converted = value.to_json()
        except Exception as exc:
            raise ModelError(
                f"{type(value).__name__}.to_json raised {type(exc).__name__}: {exc}", where(exc)
            ) from exc
        return child(converted)
    if path is None:
        raise _NotPlain
    at = f" at {path!r}" if path else ""
    raise ModelError(
        f"aggregate state is not JSON-serialisable: {type(value).__name__}{at}"
        " (use dicts, lists, dataclasses, str, int, Decimal, datetime)"
    )


def _key(key: Any) -> str:
    return key if isinstance(key, str) else str(to_plain(key))
