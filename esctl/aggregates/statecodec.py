"""Typed JSON for snapshots: aggregate state round-trips exactly.

Plain JSON would turn Decimal('79.97') into a float and a dataclass into a dict,
so a replay continued from a snapshot could differ from one from the start. Here
every value that JSON cannot carry is tagged as an object with a "$" key:

    {"$": "decimal", "v": "79.97"}
    {"$": "dataclass", "c": "shop.model:OrderState", "v": {...fields...}}

A plain dict that itself has a "$" key (or non-string keys) is tagged "dict".
Classes are looked up by module and qualified name and must be dataclasses, enums
or named tuples: a snapshot can never name an arbitrary callable."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import importlib
import math
import sys
import uuid
from decimal import Decimal
from typing import Any

from esctl import codec
from esctl.errors import ModelError


def dumps(state: Any) -> str:
    return codec.dumps_text(encode(state))


def loads(text: str) -> Any:
    return decode(codec.loads(text))


def encode(value: Any) -> Any:
    kind = type(value)
    if value is None or kind is str or kind is bool:
        return value
    if kind is int:
        # orjson writes 64-bit integers; Python's are unbounded.
        return value if -(2**63) <= value < 2**64 else {"$": "int", "v": str(value)}
    if kind is float:
        return value if math.isfinite(value) else {"$": "float", "v": repr(value)}
    if kind is list:
        return [encode(v) for v in value]
    if kind is dict:
        if all(type(k) is str for k in value) and "$" not in value:
            return {k: encode(v) for k, v in value.items()}
        return {"$": "dict", "v": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, enum.Enum):
        return {"$": "enum", "c": _class_name(kind), "v": encode(value.value)}
    if isinstance(value, Decimal):
        return {"$": "decimal", "v": str(value)}
    if isinstance(value, dt.datetime):
        return {"$": "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$": "date", "v": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$": "time", "v": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$": "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, uuid.UUID):
        return {"$": "uuid", "v": str(value)}
    if isinstance(value, tuple):
        if hasattr(kind, "_fields"):  # a NamedTuple keeps its class
            return {"$": "namedtuple", "c": _class_name(kind), "v": [encode(v) for v in value]}
        return {"$": "tuple", "v": [encode(v) for v in value]}
    if isinstance(value, frozenset):
        return {"$": "frozenset", "v": _sorted(value)}
    if isinstance(value, set):
        return {"$": "set", "v": _sorted(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$": "dataclass", "c": _class_name(kind), "v": fields}
    for base in (int, float, str, list, dict):  # a subclass of a JSON type keeps its JSON value
        if isinstance(value, base):
            return encode(base(value))
    raise ModelError(f"aggregate state cannot be snapshotted: {kind.__name__} is not JSON-serialisable")


def _sorted(items: set[Any] | frozenset[Any]) -> list[Any]:
    # Sets have no order; sorting their encodings makes equal states encode equally.
    return sorted((encode(v) for v in items), key=codec.dumps)


def decode(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return [decode(v) for v in value]
    if kind is not dict:
        return value
    tag = value.get("$")
    if tag is None:
        return {k: decode(v) for k, v in value.items()}
    v = value["v"]
    if tag == "decimal":
        return Decimal(v)
    if tag == "dataclass":
        cls = _class(value["c"], kind="dataclass")
        obj = cls.__new__(cls)
        for name, field_value in v.items():
            # object.__setattr__ also restores frozen and slotted dataclasses.
            object.__setattr__(obj, name, decode(field_value))
        return obj
    if tag == "dict":
        return {decode(k): decode(item) for k, item in v}
    if tag == "enum":
        return _class(value["c"], kind="enum")(decode(v))
    if tag == "datetime":
        return dt.datetime.fromisoformat(v)
    if tag == "date":
        return dt.date.fromisoformat(v)
    if tag == "time":
        return dt.time.fromisoformat(v)
    if tag == "timedelta":
        return dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2])
    if tag == "uuid":
        return uuid.UUID(v)
    if tag == "namedtuple":
        return _class(value["c"], kind="namedtuple")(*(decode(x) for x in v))
    if tag == "tuple":
        return tuple(decode(x) for x in v)
    if tag == "set":
        return {decode(x) for x in v}
    if tag == "frozenset":
        return frozenset(decode(x) for x in v)
    if tag == "int":
        return int(v)
    if tag == "float":
        return float(v)
    raise ValueError(f"unknown snapshot tag {tag!r}")


def _class_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


_KINDS = {
    "dataclass": dataclasses.is_dataclass,
    "enum": lambda c: issubclass(c, enum.Enum),
    "namedtuple": lambda c: issubclass(c, tuple) and hasattr(c, "_fields"),
}


def _class(name: str, *, kind: str) -> Any:
    module_name, _, qualname = name.partition(":")
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type) or not _KINDS[kind](obj):
        raise ValueError(f"{name} is not a {kind}")
    return obj
