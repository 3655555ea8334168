"""What changed between two plain states, as a list of changes:

    {"path": "lines.0.quantity", "pointer": "/lines/0/quantity",
     "op": "add" | "change" | "remove", "old": ..., "new": ...}

`old` is absent for an add, `new` for a remove. `path` is for people: keys joined
with dots, list indexes as numbers, so `{"a.b": 1}` and `{"a": {"b": 1}}` share
one. `pointer` is for programs: an RFC 6901 JSON Pointer, unambiguous (`~` and `/`
in keys are escaped as `~0` and `~1`; the whole state is ""). Objects are compared key by key and lists index by index; a
value whose type changes (a list becoming a number) is one change at its path.

Equal subtrees are skipped at C speed (`==`, then their JSON with every non-JSON
type tagged, so 1, 1.0, True and Decimal("1") still count as different): a step
that touches one key of a large state costs a walk of the top level, not of the
whole state."""

from __future__ import annotations

from typing import Any

import orjson

Change = dict[str, Any]
_MISSING: Any = object()


def join(path: str, key: Any) -> str:
    """The path of `key` under `path`."""
    return f"{path}.{key}" if path else str(key)


def pointer_join(pointer: str, key: Any) -> str:
    """The JSON Pointer of `key` under `pointer`."""
    return f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"


def change(path: str, pointer: str, op: str, **values: Any) -> Change:
    return {"path": path, "pointer": pointer, "op": op, **values}


def diff(old: Any, new: Any, path: str = "", pointer: str = "") -> list[Change]:
    changes: list[Change] = []
    if not _same(old, new):
        _diff(old, new, path, pointer, changes)
    return changes


def changed_paths(changes: list[Change]) -> list[str]:
    return [c["path"] for c in changes]


def _diff(old: Any, new: Any, path: str, pointer: str, out: list[Change]) -> None:
    if type(old) is dict and type(new) is dict:
        for key, value in old.items():
            other = new.get(key, _MISSING)
            if other is value:  # to_plain keeps scalars, so an unchanged one is the same object
                continue
            if other is _MISSING:
                out.append(change(join(path, key), pointer_join(pointer, key), "remove", old=value))
            elif not _unchanged(value, other):
                _diff(value, other, join(path, key), pointer_join(pointer, key), out)
        for key, value in new.items():
            if key not in old:
                out.append(change(join(path, key), pointer_join(pointer, key), "add", new=value))
    elif type(old) is list and type(new) is list:
        common = min(len(old), len(new))
        for i in range(common):
            a, b = old[i], new[i]
            if a is not b and not _unchanged(a, b):
                _diff(a, b, join(path, i), pointer_join(pointer, i), out)
        for i in range(common, len(new)):
            out.append(change(join(path, i), pointer_join(pointer, i), "add", new=new[i]))
        for i in range(common, len(old)):
            out.append(change(join(path, i), pointer_join(pointer, i), "remove", old=old[i]))
    elif type(old) is not type(new) or old != new:
        out.append(change(path, pointer, "change", old=old, new=new))


def _unchanged(a: Any, b: Any) -> bool:
    """True only when diffing a and b would find nothing (False is always safe)."""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict or kind is list:
        return _same(a, b)
    try:
        return bool(a == b)
    except Exception:
        return False


_TAGGED = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS


def _tag(value: Any) -> str:
    return f"\0{type(value).__module__}.{type(value).__qualname__}:{value}"


def _same(a: Any, b: Any) -> bool:
    """Equal, with the same type at every leaf: `==` alone takes 1 for 1.0 or True."""
    try:
        return bool(a == b) and orjson.dumps(a, default=_tag, option=_TAGGED) == orjson.dumps(
            b, default=_tag, option=_TAGGED
        )
    except Exception:  # not comparable, or not JSON (an int beyond 64 bits): walk it
        return False
