"""How results leave the CLI: Rich for a person, NDJSON / JSON for a pipe.

Only this module decides the format; Rich itself is imported by `render`, and only
when a table is actually drawn, so piped commands never pay for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from typing import Any

from esctl import codec


class OutputFormat(StrEnum):
    auto = "auto"
    table = "table"
    json = "json"
    ndjson = "ndjson"


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


class Output:
    """Writes one command's data to stdout in the chosen format."""

    def __init__(self, fmt: OutputFormat | str = OutputFormat.auto) -> None:
        fmt = OutputFormat(fmt)
        if fmt is OutputFormat.auto:
            fmt = OutputFormat.table if stdout_is_terminal() else OutputFormat.auto
        self.format = fmt

    @property
    def is_table(self) -> bool:
        return self.format is OutputFormat.table

    def records(self, items: Iterable[Any], table: Callable[[Iterable[Any]], None]) -> int:
        """A list result: NDJSON by default when piped, a JSON array with `json`.
        Items are dicts or objects with `to_dict()`. Returns how many were written."""
        if self.is_table:
            counted = _Counted(items)
            table(counted)
            return counted.count
        if self.format is OutputFormat.json:
            return write_json_array(_as_dicts(items))
        return write_ndjson(_as_dicts(items))

    def document(self, doc: Any, table: Callable[[Any], None]) -> None:
        """A single result: one JSON document (pretty-printed when `json` is asked for
        explicitly, one line otherwise)."""
        if self.is_table:
            table(doc)
            return
        data = doc.to_dict() if hasattr(doc, "to_dict") else doc
        out = sys.stdout.buffer
        out.write(codec.dumps(data, indent=self.format is OutputFormat.json) + b"\n")
        out.flush()


def _as_dicts(items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        yield item.to_dict() if hasattr(item, "to_dict") else item


class _Counted:
    def __init__(self, items: Iterable[Any]) -> None:
        self._items, self.count = items, 0

    def __iter__(self) -> Iterator[Any]:
        for item in self._items:
            self.count += 1
            yield item


def write_ndjson(items: Iterable[Any], encode: Callable[[Any], bytes] = codec.dumps) -> int:
    """Write one JSON object per line; returns the count."""
    write = sys.stdout.buffer.write
    count = 0
    for count, item in enumerate(items, 1):  # noqa: B007 - count is the result
        write(encode(item) + b"\n")
    sys.stdout.buffer.flush()
    return count


def write_json_array(items: Iterable[Any]) -> int:
    out = sys.stdout.buffer
    out.write(b"[")
    count = 0
    for item in items:
        out.write((b",\n" if count else b"\n") + codec.dumps(item))
        count += 1
    out.write(b"\n]\n" if count else b"]\n")
    out.flush()
    return count


def _color(code: str, text: str) -> str:
    if stderr_is_terminal() and not os.environ.get("NO_COLOR"):  # no-color.org: empty means unset
        return f"\x1b[{code}m{text}\x1b[0m"
    return text


def error(message: str) -> None:
    sys.stderr.write(f"esctl: {_color('1;31', 'error:')} {message}\n")
    sys.stderr.flush()


def warn(message: str) -> None:
    sys.stderr.write(f"esctl: {_color('33', 'warning:')} {message}\n")
    sys.stderr.flush()


def note(message: str) -> None:
    sys.stderr.write(f"esctl: {message}\n")
    sys.stderr.flush()
