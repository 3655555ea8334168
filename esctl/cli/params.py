"""Parsing of command-line values shared by command groups."""

from __future__ import annotations

import sys
from typing import Any

from esctl import codec
from esctl.errors import InvalidInput, shown


def json_object(value: str | None, what: str) -> dict[str, Any]:
    """A JSON object given inline, as `-` (stdin) or as `@path`."""
    if value is None:
        return {}
    if value == "-":
        text: bytes | str = sys.stdin.buffer.read()
        source = f"{what} (stdin)"
    elif value.startswith("@"):
        try:
            with open(value[1:], "rb") as f:
                text = f.read()
        except OSError as exc:
            raise InvalidInput(f"{what}: cannot read {value[1:]}: {exc.strerror}") from None
        source = f"{what} ({value[1:]})"
    else:
        text, source = value, what
    if isinstance(text, bytes) and text.startswith(b"\xef\xbb\xbf"):
        text = text[3:]  # a byte-order mark from some Windows editors
    try:
        obj = codec.loads_input(text)
    except codec.JSONDecodeError as exc:
        raise InvalidInput(f"{source}: invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidInput(f"{source} must be a JSON object, got {shown(obj)}")
    return obj
