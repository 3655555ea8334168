"""NDJSON envelopes, one event per line: read (errors named by line number) and written."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import IO

from orjson import OPT_APPEND_NEWLINE, Fragment, JSONDecodeError, dumps, loads

from esctl import codec
from esctl.errors import InvalidInput
from esctl.events import MAX_EVENT_BYTES, NewEvent, envelope_from_dict
from esctl.store.rows import check_stored_json

BOM = b"\xef\xbb\xbf"
# A line may spell its event in up to 6 bytes a character (\u00e9); the exact
# 16 MiB limit is applied to the event as stored.
_MAX_LINE_BYTES = 6 * MAX_EVENT_BYTES


def read_envelopes(lines: Iterable[bytes]) -> Iterator[tuple[str, NewEvent]]:
    """Yield ("line N: ", event) for each non-blank line; raise InvalidInput naming the line."""
    for number, line in enumerate(lines, 1):
        where = f"line {number}: "
        if number == 1 and line.startswith(BOM):  # files saved by some Windows editors
            line = line[len(BOM) :]
        if len(line) > _MAX_LINE_BYTES:
            raise InvalidInput(f"{where}event is larger than 16 MiB")
        try:
            obj = codec.loads_input(line)
        except codec.JSONDecodeError as exc:
            if not line.strip():
                continue
            raise InvalidInput(f"{where}invalid JSON: {exc}") from None
        yield where, envelope_from_dict(obj, where)


def iter_lines(stream: IO[bytes], progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """Lines of a binary stream, reporting bytes read to `progress` every ~1 MiB."""
    if progress is None:
        yield from stream
        return
    pending = 0
    for line in stream:
        pending += len(line)
        if pending >= 1 << 20:
            progress(pending)
            pending = 0
        yield line
    progress(pending)


def envelope_line(row: tuple) -> bytes:
    """A stored row (`read_all(raw=True)`) as its NDJSON line, newline included: what
    `read` prints piped and `export` writes. The stored JSON of data and metadata is
    embedded as it is, exactly, after a check that it parses (a row written around
    esctl that is not JSON raises StoreDamaged rather than reaching the output)."""
    stream, version, position, event_type, data, metadata, event_id, recorded_at = row
    try:
        loads(data)
        loads(metadata)
    except (JSONDecodeError, TypeError):
        check_stored_json(f"event {position} ({stream} v{version})", data=data, metadata=metadata)
        raise
    # orjson directly: every value here is a str, an int or stored JSON.
    return dumps(
        {
            "stream": stream,
            "version": version,
            "position": position,
            "type": event_type,
            "data": Fragment(data),
            "metadata": Fragment(metadata),
            "id": event_id,
            "recorded_at": recorded_at,
        },
        option=OPT_APPEND_NEWLINE,
    )
