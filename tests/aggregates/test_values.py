"""The value-level pieces: the default fold, diffs, plain state, the snapshot codec."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any, NamedTuple

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from esctl.aggregates import ModelError, diff, merge, statecodec, to_plain

# --- the default fold -----------------------------------------------------------------


def test_merge_objects_key_by_key_replace_other_values_and_null_removes():
    state = {"a": {"x": 1, "y": 2}, "list": [1, 2], "gone": 1, "keep": True}
    merge(state, {"a": {"y": 3, "z": {"deep": None, "k": 1}}, "list": [3], "gone": None, "new": "v"})
    assert state == {"a": {"x": 1, "y": 3, "z": {"k": 1}}, "list": [3], "keep": True, "new": "v"}


def test_merge_replaces_a_scalar_with_an_object_and_back():
    assert merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert merge({"a": {"b": 2}}, {"a": 5}) == {"a": 5}


# Keys a dotted path cannot tell apart, and the two a JSON Pointer escapes.
KEYS = st.sampled_from(["a", "b", "a.b", "c/d", "e~1"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=12,
)
json_objects = st.dictionaries(KEYS, json_values, max_size=4)


@given(json_objects, json_objects)
def test_merging_the_same_patch_twice_changes_nothing_more(state, patch):
    once = merge(copy.deepcopy(state), copy.deepcopy(patch))
    twice = merge(copy.deepcopy(once), copy.deepcopy(patch))
    assert once == twice


# --- diffs ------------------------------------------------------------------------------


def test_diff_reports_add_change_remove_with_dotted_paths():
    old = {"status": "created", "lines": [{"qty": 1}], "note": "x"}
    new = {"status": "confirmed", "lines": [{"qty": 2}, {"qty": 5}], "total": 3}
    assert diff(old, new) == [
        {"path": "status", "pointer": "/status", "op": "change", "old": "created", "new": "confirmed"},
        {"path": "lines.0.qty", "pointer": "/lines/0/qty", "op": "change", "old": 1, "new": 2},
        {"path": "lines.1", "pointer": "/lines/1", "op": "add", "new": {"qty": 5}},
        {"path": "note", "pointer": "/note", "op": "remove", "old": "x"},
        {"path": "total", "pointer": "/total", "op": "add", "new": 3},
    ]


def test_diff_sees_a_type_change_even_when_python_calls_the_values_equal():
    assert diff({"a": 1}, {"a": True}) == [
        {"path": "a", "pointer": "/a", "op": "change", "old": 1, "new": True}
    ]
    assert diff({"a": 1}, {"a": 1}) == []


def _pointer_keys(pointer: str, root: Any) -> list[Any]:
    """RFC 6901: the keys a JSON Pointer names in `root`, list indexes as ints."""
    keys: list[Any] = []
    node = root
    for token in pointer.split("/")[1:]:
        key: Any = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            key = int(key)
        keys.append(key)
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):  # an add: nothing there yet
            node = None
    return keys


def test_a_pointer_tells_apart_what_a_dotted_path_cannot():
    dotted, nested = diff({}, {"a.b": 1}), diff({"a": {}}, {"a": {"b": 1}})
    assert dotted[0]["path"] == "a.b" == nested[0]["path"]
    assert (dotted[0]["pointer"], nested[0]["pointer"]) == ("/a.b", "/a/b")
    assert diff({"x": {"a/b": 1, "m~n": 1}}, {"x": {"a/b": 2, "m~n": 2}}) == [
        {"path": "x.a/b", "pointer": "/x/a~1b", "op": "change", "old": 1, "new": 2},
        {"path": "x.m~n", "pointer": "/x/m~0n", "op": "change", "old": 1, "new": 2},
    ]
    assert diff(1, 2) == [{"path": "", "pointer": "", "op": "change", "old": 1, "new": 2}]


def _apply(value: Any, changes: list[dict[str, Any]]) -> Any:
    """A reference patcher: apply a diff's changes to a copy of the old value."""
    value = copy.deepcopy(value)
    removals = []
    for change in changes:
        keys = _pointer_keys(change["pointer"], value)
        if not keys:
            value = change["new"]
            continue
        parent = value
        for key in keys[:-1]:
            parent = parent[key]
        if change["op"] == "remove":
            removals.append((parent, keys[-1]))
        elif isinstance(parent, list) and change["op"] == "add":
            parent.append(change["new"])
        else:
            parent[keys[-1]] = change["new"]
    for parent, key in sorted(removals, key=lambda r: r[1] if isinstance(r[1], int) else 0, reverse=True):
        del parent[key]
    return value


@given(json_objects, json_objects)
def test_applying_a_diff_to_the_old_state_gives_the_new_one(old, new):
    assert _apply(old, diff(old, new)) == new


@given(json_objects)
def test_a_state_has_no_diff_with_itself(state):
    assert diff(state, copy.deepcopy(state)) == []


# --- plain state ----------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Item:
    name: str
    price: Decimal
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Frozen:
    at: dt.datetime
    colour: Colour
    items: list[Item] = dataclasses.field(default_factory=list)


class Point(NamedTuple):
    x: int
    y: int


def test_plain_state_is_json_shaped_and_a_copy():
    state = {"items": [Item("a", Decimal("1.10"), ("x",))], 3: {"s": {2, 1}}}
    plain = to_plain(state)
    assert plain == {"items": [{"name": "a", "price": Decimal("1.10"), "tags": ["x"]}], "3": {"s": [1, 2]}}
    state["items"][0].name = "changed"
    assert plain["items"][0]["name"] == "a"


def test_plain_state_refuses_what_json_cannot_carry():
    with pytest.raises(ModelError, match=r"not JSON-serialisable: object at 'a.0'"):
        to_plain({"a": [object()]})


# --- the snapshot codec -----------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.datetimes(timezones=st.just(dt.UTC))
    | st.dates()
    | st.uuids()
    | st.sampled_from(Colour)
)
states = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=3), children, max_size=3)
        | st.dictionaries(st.integers(), children, max_size=2)
        | st.builds(Item, st.text(max_size=3), st.decimals(allow_nan=False, allow_infinity=False))
        | st.builds(
            Frozen,
            st.datetimes(),
            st.sampled_from(Colour),
            st.lists(
                st.builds(Item, st.text(), st.decimals(allow_nan=False, allow_infinity=False)), max_size=2
            ),
        )
        | st.builds(Point, st.integers(), st.integers())
        | st.frozensets(st.integers(), max_size=3)
    ),
    max_leaves=15,
)


@given(states)
def test_snapshot_codec_round_trips_exactly(state):
    restored = statecodec.loads(statecodec.dumps(state))
    assert restored == state
    assert type(restored) is type(state)
    assert statecodec.dumps(restored) == statecodec.dumps(state)


def test_snapshot_codec_keeps_decimal_text_and_escapes_dollar_keys():
    state = {"total": Decimal("79.970"), "$": 1, "p": Point(1, 2)}
    restored = statecodec.loads(statecodec.dumps(state))
    assert str(restored["total"]) == "79.970"
    assert restored["$"] == 1
    assert restored["p"].x == 1


def test_snapshot_codec_refuses_classes_that_are_not_dataclasses():
    text = '{"$":"dataclass","c":"os:system","v":{}}'
    with pytest.raises(ValueError, match="is not a dataclass"):
        statecodec.loads(text)


def test_uuid_state_round_trips():
    value = uuid.uuid4()
    assert statecodec.loads(statecodec.dumps([value])) == [value]


# --- diffs skip equal subtrees, exactly ---------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (1, 1.0),
        (1, True),
        (0, False),
        (Decimal("1"), 1),
        (1.0, Decimal("1.0")),
        ("2026-01-01", dt.date(2026, 1, 1)),
    ],
)
def test_a_nested_value_of_another_type_is_a_change_even_when_python_calls_it_equal(old, new):
    before = {"a": {"b": [old, 2]}, "c": 3}
    after = {"a": {"b": [new, 2]}, "c": 3}
    assert diff(before, after) == [
        {"path": "a.b.0", "pointer": "/a/b/0", "op": "change", "old": old, "new": new}
    ]


@given(json_objects, json_objects)
@example({"a": {}}, {"b": None, "a.b": [], "a": {"b": False}})
def test_the_default_fold_s_changes_from_the_patch_are_the_diff_of_the_states(state, patch):
    """merge_changes works from the event alone; it must find what a diff of the
    whole states before and after would (in the patch's order)."""
    from esctl.aggregates.default_fold import merge_changes

    before = to_plain(state)
    changes = merge_changes(state, patch)
    after = merge(state, patch)
    # By pointer: paths can coincide ("a.b" names both /a.b and /a/b).
    key = lambda c: (c["pointer"], c["op"])  # noqa: E731
    assert sorted(changes, key=key) == sorted(diff(before, to_plain(after)), key=key)


def test_a_to_json_that_raises_names_its_line():
    class Money:
        def to_json(self):
            raise ValueError("no currency")

    with pytest.raises(
        ModelError, match=r"test_values\.py, line \d+: Money\.to_json raised ValueError: no currency"
    ):
        to_plain({"m": Money()})
