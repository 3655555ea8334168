"""What changed between two plain states, as a list of changes:

    {"path": "lines.0.quantity", "op": "add" | "change" | "remove", "old": ..., "new": ...}

`old` is absent for an add, `new` for a remove. Paths join keys with dots; list
indexes are numbers. Objects are compared key by key and lists index by index; a
value whose type changes (a list becoming a number) is one change at its path."""

from __future__ import annotations

from typing import Any

Change = dict[str, Any]


def diff(old: Any, new: Any, path: str = "") -> list[Change]:
    changes: list[Change] = []
    _diff(old, new, path, changes)
    return changes


def changed_paths(changes: list[Change]) -> list[str]:
    return [c["path"] for c in changes]


def _diff(old: Any, new: Any, path: str, out: list[Change]) -> None:
    if type(old) is dict and type(new) is dict:
        for key, value in old.items():
            if key not in new:
                out.append({"path": _join(path, key), "op": "remove", "old": value})
            else:
                _diff(value, new[key], _join(path, key), out)
        for key, value in new.items():
            if key not in old:
                out.append({"path": _join(path, key), "op": "add", "new": value})
    elif type(old) is list and type(new) is list:
        common = min(len(old), len(new))
        for i in range(common):
            _diff(old[i], new[i], _join(path, i), out)
        for i in range(common, len(new)):
            out.append({"path": _join(path, i), "op": "add", "new": new[i]})
        for i in range(common, len(old)):
            out.append({"path": _join(path, i), "op": "remove", "old": old[i]})
    elif type(old) is not type(new) or old != new:
        out.append({"path": path, "op": "change", "old": old, "new": new})


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)
