"""The natural order of stream names, in Python and as the indexed sort key."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from esctl.store.natural import natural_key, sort_key

# Stream names: no whitespace or control characters (esctl.events), digits often.
names = st.text(
    alphabet=st.sampled_from(list("ab-_Zé☕0123456789"))
    | st.characters(min_codepoint=0x21, max_codepoint=0x2FFFF),
    min_size=1,
    max_size=20,
).filter(lambda s: all(not (0xD800 <= ord(c) <= 0xDFFF) and not c.isspace() for c in s))


def test_numbers_compare_as_numbers():
    order = ["a", "a-01", "a-1", "a-2", "a-10", "a-10-1", "a-10b", "ab", "b-0"]
    assert sorted(order, key=natural_key) == order
    assert sorted(order, key=sort_key) == order


@given(st.lists(names, min_size=2, max_size=12, unique=True))
def test_the_sort_key_orders_bytes_as_the_natural_key_orders_names(batch):
    assert sorted(batch, key=sort_key) == sorted(batch, key=natural_key)


def test_numbers_of_any_length_compare():
    huge = "s-" + "9" * 5000
    assert sorted([huge, "s-10", "s-" + "1" + "0" * 5000], key=natural_key) == [
        "s-10",
        huge,
        "s-1" + "0" * 5000,
    ]
