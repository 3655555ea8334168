"""What changed between two plain states, as a list of changes:

    {"path": "lines.0.quantity", "op": "add" | "change" | "remove", "old": ..., "new": ...}

`old` is absent for an add, `new` for a remove. Paths join keys with dots; list
indexes are numbers. Objects are compared key by key and lists index by index; a
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


def diff(old: Any, new: Any, path: str = "") -> list[Change]:
    changes: list[Change] = []
    if not _same(old, new):
        _diff(old, new, path, changes)
    return changes


def changed_paths(changes: list[Change]) -> list[str]:
    return [c["path"] for c in changes]


def _diff(old: Any, new: Any, path: str, out: list[Change]) -> None:
    if type(old) is dict and type(new) is dict:
        for key, value in old.items():
            other = new.get(key, _MISSING)
            if other is value:  # to_plain keeps scalars, so an unchanged one is the same object
                continue
            if other is _MISSING:
                out.append({"path": join(path, key), "op": "remove", "old": value})
            elif not _unchanged(value, other):
                _diff(value, other, join(path, key), out)
        for key, value in new.items():
            if key not in old:
                out.append({"path": join(path, key), "op": "add", "new": value})
    elif type(old) is list and type(new) is list:
        common = min(len(old), len(new))
        for i in range(common):
            a, b = old[i], new[i]
            if a is not b and not _unchanged(a, b):
                _diff(a, b, join(path, i), out)
        for i in range(common, len(new)):
            out.append({"path": join(path, i), "op": "add", "new": new[i]})
        for i in range(common, len(old)):
            out.append({"path": join(path, i), "op": "remove", "old": old[i]})
    elif type(old) is not type(new) or old != new:
        out.append({"path": path, "op": "change", "old": old, "new": new})


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
