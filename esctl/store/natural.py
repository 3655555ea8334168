"""The natural order of stream names (account-2 before account-10), in Python and
as a byte string that SQLite can index."""

from __future__ import annotations

import re

_NUMBER = re.compile(r"([0-9]+)")


def natural_key(name: str) -> tuple[tuple[object, ...], str]:
    """The natural sort key of a name: runs of digits compare as numbers
    ("account-2" < "account-10"); the name itself breaks ties ("a-01" vs "a-1").
    A number is (its digit count, its digits) without leading zeros, which compares
    as the number does at any length (int() refuses past 4,300 digits)."""
    parts: list[object] = list(_NUMBER.split(name))
    parts[1::2] = [_number(p) for p in parts[1::2]]
    return tuple(parts), name


def _number(digits: str) -> tuple[int, str]:
    significant = digits.lstrip("0") or "0"
    return len(significant), significant


def sql_sort_key(name: object) -> bytes:
    """`sort_key` as the SQL function esctl_sort_key: a name that a writer other than
    esctl stored as a number or bytes gets the key of its text form."""
    return sort_key(name if isinstance(name, str) else str(name))


def sort_key(name: str) -> bytes:
    """`natural_key(name)` as bytes that compare (memcmp, SQLite's BLOB order) the
    way the tuple does, so that an index on them lists streams in natural order.

    Text runs are UTF-8 ended by 0x00 (names hold no NUL, so a shorter run sorts
    first, as in Python); a number follows as 0x02, its digit count in two bytes and
    its digits without leading zeros (more digits, a larger number); 0x01 ends the
    tuple, ahead of any number, and the name itself follows to break ties."""
    out = bytearray()
    for index, part in enumerate(_NUMBER.split(name)):
        if index % 2:
            digits = part.lstrip("0") or "0"
            out += b"\x02" + len(digits).to_bytes(2, "big") + digits.encode()
        else:
            out += part.encode() + b"\x00"
    return bytes(out + b"\x01" + name.encode())
