"""JSON encoding shared by the store and the CLI: orjson, with the types aggregates use."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any

import orjson

loads = orjson.loads
JSONDecodeError = orjson.JSONDecodeError


def default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Exact decimal text, never a float: 79.97 stays 79.97.
        return orjson.Fragment(str(value)) if value.is_finite() else str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if hasattr(value, "to_json"):
        return value.to_json()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any, *, sort_keys: bool = False, indent: bool = False) -> bytes:
    option = _OPTIONS
    if sort_keys:
        option |= orjson.OPT_SORT_KEYS
    if indent:
        option |= orjson.OPT_INDENT_2
    return orjson.dumps(value, default=default, option=option)


def dumps_text(value: Any) -> str:
    return dumps(value).decode()


def raw(text: str) -> orjson.Fragment:
    """Embed already-encoded JSON text (stored data) without decoding it."""
    return orjson.Fragment(text)
