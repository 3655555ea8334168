"""The default fold: how a stream replays when no aggregate is defined for it.

Starting from `{}`, each event's `data` is merged in as a JSON Merge Patch
(RFC 7396): objects merge key by key, any other value (lists included) replaces
what was there, and `null` removes the key."""

from __future__ import annotations

from typing import Any

from esctl.aggregates.changes import Change, change, diff, join, pointer_join
from esctl.aggregates.definition import WILDCARD, Aggregate, evolve
from esctl.aggregates.plain import to_plain


def merge(state: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Merge `patch` into `state` in place and return it. `patch` is freshly decoded
    event data, so its values can be adopted without copying."""
    for key, value in patch.items():
        if value is None:
            state.pop(key, None)
        elif type(value) is dict:
            current = state.get(key)
            # A new object still goes through merge so that its nulls are dropped.
            state[key] = merge(current if type(current) is dict else {}, value)
        else:
            state[key] = value
    return state


class DefaultFold(Aggregate):
    """The aggregate replay uses for a stream whose category has none."""

    @evolve(WILDCARD)
    def merged(state: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        return merge(state, data)


def merge_changes(
    state: dict[str, Any], patch: dict[str, Any], path: str = "", pointer: str = ""
) -> list[Change]:
    """The changes `merge(state, patch)` is about to make, worked out from the patch
    (call it before merging): the cost follows the event, not the state, so
    `versions` of a long default-fold stream stays linear. Within an object, changes
    come in the patch's key order."""
    out: list[Change] = []
    for key, value in patch.items():
        at, ptr = join(path, key), pointer_join(pointer, key)
        if key not in state:
            if value is not None:
                new = merge({}, value) if type(value) is dict else value
                out.append(change(at, ptr, "add", new=to_plain(new)))
        elif value is None:
            out.append(change(at, ptr, "remove", old=to_plain(state[key])))
        elif type(value) is dict and type(state[key]) is dict:
            out.extend(merge_changes(state[key], value, at, ptr))
        else:
            new = merge({}, value) if type(value) is dict else value
            out.extend(diff(to_plain(state[key]), to_plain(new), at, ptr))
    return out
