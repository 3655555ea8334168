"""The one module that owns Rich: what a person sees on a terminal.

Imported only when something is drawn for a person (start-up cost ~45 ms). Rich
finds the terminal (its size, its colours) and draws the progress bars; the screens
themselves are composed here line by line and written straight to the console's
file, so that every line fits the width by construction:

- identifiers (stream names, types, ids, column names, paths, JSON keys) are never
  cut or folded; a table column that does not fit is dropped, and a note on stderr
  names it (-o json shows it, or a wider terminal);
- values (JSON data, free text) are cut with "…" to the width left;
- numbers get thousands separators, sizes KiB / MiB, booleans yes / no, and a
  missing value is "—".
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from itertools import chain, islice
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.style import Style

from esctl import codec
from esctl.cli import output

_CHUNK = 500  # rows per layout: long listings stream instead of building in memory

Seg = list[tuple[str, str | None]]  # one line: (text, style) pieces


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # Rich would exit 1; the CLI ends a closed pipe quietly, the same for every format.
        raise BrokenPipeError


def console() -> Console:
    paged = output.pager_stream()
    if paged is not None:  # the pager shows what the terminal would: its width, colours
        stream, columns, lines = paged
        return _Console(file=stream, force_terminal=True, width=columns, height=lines, highlight=False)
    if sys.stdout.isatty():
        return _Console(highlight=False)
    # A pipe that asked for a table gets it uncoloured, $COLUMNS wide (else 250).
    return _Console(highlight=False, width=_env_int("COLUMNS") or 250, no_color=True)


def _env_int(name: str) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else 0


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


class Screen:
    """Lines for one console: painted with ANSI codes when it shows colour, and
    written straight to its file (rich.table.Table measured ~1 ms per row)."""

    def __init__(self, con: Console | None = None) -> None:
        self.console = con or console()
        self.width = max(self.console.width, 20)
        self.height = max(self.console.height, 8)
        self._system = None if self.console.no_color else self.console._color_system
        self._codes: dict[str, tuple[str, str]] = {}

    def codes(self, style: str | None) -> tuple[str, str]:
        """The ANSI codes before and after text in `style` ("" when uncoloured)."""
        if not style or self._system is None:
            return "", ""
        codes = self._codes.get(style)
        if codes is None:
            before, _, after = Style.parse(style).render("\0", color_system=self._system).partition("\0")
            codes = self._codes[style] = (before, after)
        return codes

    def paint(self, segs: Seg) -> str:
        if self._system is None:
            return "".join(text for text, _ in segs)
        out = []
        for text, style in segs:
            before, after = self.codes(style)
            out.append(before + text + after if before and text else text)
        return "".join(out)

    def write(self, lines: Sequence[str]) -> None:
        if lines:
            file = self.console.file
            file.write("\n".join(lines) + "\n")
            file.flush()

    def print(self, *lines: Seg) -> None:
        self.write([self.paint(line) for line in lines])


# --- text: widths, cutting, values for people ---------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CONTROL = {c: "\ufffd" for c in [*range(0x20), *range(0x7F, 0xA0)]} | {0x0A: "⏎", 0x09: " "}


def width(text: str) -> int:
    return len(text) if text.isascii() else cell_len(text)  # cell_len is slow per character


def seg_width(segs: Seg) -> int:
    return sum(width(text) for text, _ in segs)


def visible_width(painted: str) -> int:
    return width(_ANSI.sub("", painted))


def cut(text: str, room: int) -> str:
    """`text` in at most `room` cells, ending in … when cut."""
    if width(text) <= room:
        return text
    if room <= 1:
        return "…"[:room]
    if text.isascii():
        return text[: room - 1] + "…"
    return set_cell_size(text, room - 1).rstrip() + "…"


def printable(text: str) -> str:
    """Control characters (a newline in a query result) would break a line."""
    return text if text.isprintable() else text.translate(_CONTROL)


def human(value: Any) -> str:
    """A scalar for people: 1,234,567; yes / no; — for nothing; compact JSON."""
    if value is None:
        return "—"
    if value is True or value is False:
        return "yes" if value else "no"
    if isinstance(value, (int, float, Decimal)):
        return f"{value:,}"
    if isinstance(value, (dict, list)):
        return codec.dumps_text(value)
    return printable(str(value))


_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def size(n: Any) -> str:
    """Bytes for people: 436 B, 24 KiB, 3.2 MiB."""
    if not isinstance(n, int) or isinstance(n, bool):
        return human(n)
    if abs(n) < 1024:
        return f"{n} B"
    value = float(n)
    for unit in _UNITS:
        value /= 1024
        if abs(value) < 1024 or unit == _UNITS[-1]:
            break
    if abs(value) < 10 and round(value, 1) != int(value):
        return f"{value:.1f} {unit}"
    return f"{value:,.0f} {unit}"


def compact(value: Any, room: int = 60) -> str:
    """JSON (or text) on one line, cut to `room` cells."""
    return cut(printable(value) if isinstance(value, str) else codec.dumps_text(value), room)


def wrap(text: str, room: int) -> list[str]:
    """Prose in lines of at most `room` cells, broken at spaces only."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        if current and width(current) + 1 + width(word) > room:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return lines


def title_lines(screen: Screen, title: str | None) -> list[str]:
    if not title:
        return []
    return [screen.paint([(line, "bold")]) for line in wrap(title, screen.width)]


# --- tables ------------------------------------------------------------------------

RowStyle = Callable[[dict[str, Any]], "str | None"]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a table.

    kind: "id" is never cut; "num" and "size" are right-aligned and never cut; "value"
    (JSON, free text) is cut with … to the width left, down to `min_width`; "list" is
    a list of identifiers that wraps onto more lines, never inside an item.
    When a row does not fit the terminal, the column of lowest `priority` goes first
    (ties: the rightmost), never one that is `keep`. An `optional` column shows only
    once some row has a value for it."""

    key: str
    kind: str = "id"
    priority: int = 50
    keep: bool = False
    style: str | RowStyle | None = None
    get: Callable[[dict[str, Any]], Any] | None = None
    optional: bool = False
    header: str | None = None
    min_width: int = 16

    @property
    def title(self) -> str:
        return self.key if self.header is None else self.header

    @property
    def right(self) -> bool:
        return self.kind in ("num", "size")


_JSON_KEYS = {"data", "metadata", "state", "changes"}
_NUMERIC_KEYS = {"version", "position", "count", "checkpoint", "head", "lag", "last_position"}
_SIZE_KEYS = {"file_size", "bytes", "size"}
_DIM = ("—", "dim")


def _infer(key: str) -> Column:
    if key in _JSON_KEYS:
        return Column(key, "value")
    if key in _NUMERIC_KEYS:
        return Column(key, "num")
    if key in _SIZE_KEYS:
        return Column(key, "size")
    return Column(key)


def _cell_maker(col: Column) -> Callable[[dict[str, Any]], Any]:
    """A function from a row to its cell: a str (in the column's style), a
    (text, style) pair, or for a list column a list of str."""
    key = col.key
    get = col.get or (lambda d: d.get(key))
    row_style = col.style if callable(col.style) else None
    fmt: Callable[[Any], str]
    if col.kind == "num":
        fmt = human
    elif col.kind == "size":
        fmt = size
    elif col.kind == "value":

        def fmt(v: Any) -> str:
            return codec.dumps_text(v) if isinstance(v, (dict, list)) else human(v)

    else:

        def fmt(v: Any) -> str:
            return (v if v.isprintable() else printable(v)) if type(v) is str else human(v)

    if col.kind == "list":

        def cell(d: dict[str, Any]) -> Any:
            v = get(d)
            return [fmt(x) for x in v] if v else _DIM

        return cell

    def cell(d: dict[str, Any]) -> Any:
        v = get(d)
        if v is None:
            return _DIM
        return (fmt(v), row_style(d)) if row_style is not None else fmt(v)

    return cell


def _text(cell: Any) -> str:
    return cell if type(cell) is str else ", ".join(cell) if type(cell) is list else cell[0]


class TableWriter:
    """Lays out dict rows in columns, chunk by chunk: one line per row (a list cell
    may take more). Widths only grow from chunk to chunk, so later rows stay aligned
    with the header; a column set that changes (a column dropped for room, an
    optional column that gets its first value) repeats the header."""

    def __init__(
        self,
        screen: Screen,
        columns: Sequence[Column | str] | None = None,
        *,
        room: int | None = None,
        dropped: set[str] | None = None,
        announce: bool = True,
    ) -> None:
        self.screen = screen
        self.room = room or screen.width
        self.columns = [c if isinstance(c, Column) else _infer(c) for c in columns] if columns else None
        self.dropped = dropped if dropped is not None else set()  # shared by the tables of one screen
        self.announce = announce
        self.newly_dropped: list[str] = []
        self._natural: dict[str, int] = {}
        self._least: dict[str, int] = {}  # list columns: the longest item
        self._seen: set[str] = set()
        self._shown: list[Column] | None = None

    def rows(self, dicts: list[dict[str, Any]]) -> list[str]:
        """The painted lines of one chunk, with a header when the layout is new."""
        if self.columns is None:
            self.columns = [_infer(k) for k in dicts[0]]
        cols = self.columns
        makers = [_cell_maker(c) for c in cols]
        cells = [[make(d) for make in makers] for d in dicts]
        for i, col in enumerate(cols):
            k = col.key
            column = [row[i] for row in cells]
            if any(c is not _DIM for c in column):
                self._seen.add(k)
            most = max(len(col.title), *(width(_text(c)) for c in column))
            self._natural[k] = max(self._natural.get(k, 0), most)
            if col.kind == "list":
                items = [width(x) for c in column if type(c) is list for x in c] or [1]
                self._least[k] = max(self._least.get(k, 0), max(items) + 1)  # room for the comma
        shown, widths = self._layout()
        lines: list[str] = []
        if shown != self._shown:
            if self._shown is not None:
                lines.append("")
            lines += self._header(shown, widths)
            self._shown = shown
        index = {c.key: i for i, c in enumerate(cols)}
        spec = []
        for n, col in enumerate(shown):
            before, after = self.screen.codes(col.style if isinstance(col.style, str) else None)
            spec.append((index[col.key], widths[col.key], col, before, after, n == len(shown) - 1))
        for row in cells:
            lines += self._line(row, spec)
        return lines

    def _need(self, col: Column) -> int:
        natural = self._natural[col.key]
        if col.kind == "value":
            return min(natural, max(col.min_width, len(col.title)))
        if col.kind == "list":
            return min(natural, max(self._least[col.key], col.min_width, len(col.title)))
        return natural

    def _layout(self) -> tuple[list[Column], dict[str, int]]:
        assert self.columns is not None
        shown = [
            c for c in self.columns if c.key not in self.dropped and (not c.optional or c.key in self._seen)
        ]

        def total(cs: list[Column]) -> int:
            return 2 + sum(self._need(c) for c in cs) + 3 * (len(cs) - 1)

        while total(shown) > self.room:
            candidates = [c for c in shown if not c.keep]
            if not candidates:
                break  # identifiers wider than the terminal: the terminal wraps them
            victim = min(reversed(candidates), key=lambda c: c.priority)
            shown.remove(victim)
            self.dropped.add(victim.key)
            self.newly_dropped.append(victim.key)
        widths = {c.key: self._need(c) for c in shown}
        spare = self.room - total(shown)
        grow = [c.key for c in shown if c.kind in ("value", "list") and widths[c.key] < self._natural[c.key]]
        while spare > 0 and grow:
            share = max(1, spare // len(grow))
            for k in list(grow):
                add = min(share, self._natural[k] - widths[k], spare)
                widths[k] += add
                spare -= add
                if widths[k] >= self._natural[k]:
                    grow.remove(k)
                if not spare:
                    break
        if self.newly_dropped and self.announce:
            order = [c.key for c in self.columns]
            names = ", ".join(sorted(self.newly_dropped, key=order.index))
            output.note(
                f"not shown at {self.room} columns: {names} (see them with -o json or a wider terminal)"
            )
            self.newly_dropped = []
        return shown, widths

    def _header(self, shown: list[Column], widths: dict[str, int]) -> list[str]:
        before, after = self.screen.codes("bold")
        parts = []
        for n, col in enumerate(shown):
            title = before + col.title + after if before and col.title else col.title
            pad = " " * (widths[col.key] - width(col.title))
            parts.append(pad + title if col.right else title if n == len(shown) - 1 else title + pad)
        line_width = sum(widths.values()) + 3 * (len(shown) - 1)
        return [("  " + "   ".join(parts)).rstrip(), " " + "─" * (line_width + 1)]

    def _line(self, row: list[Any], spec: list[tuple[int, int, Column, str, str, bool]]) -> list[str]:
        parts = []
        more: dict[int, list[str]] = {}
        for n, (i, w, col, before, after, last) in enumerate(spec):
            cell = row[i]
            if type(cell) is str:
                text = cell
            elif type(cell) is list:
                wrapped = _wrap_items(cell, w)
                text = wrapped[0]
                if len(wrapped) > 1:
                    more[n] = wrapped[1:]
            else:
                text = cell[0]
                before, after = self.screen.codes(cell[1])
            if col.kind == "value":
                text = cut(text, w)
            pad = w - width(text)
            painted = before + text + after if before else text
            if col.right:
                parts.append(" " * pad + painted)
            else:
                parts.append(painted if last else painted + " " * pad)
        lines = [("  " + "   ".join(parts)).rstrip()]
        if more:
            lines += self._continued(more, spec)
        return lines

    def _continued(self, more: dict[int, list[str]], spec: list[Any]) -> list[str]:
        lines = []
        for k in range(max(len(v) for v in more.values())):
            parts = []
            for n, (_, w, _col, before, after, _last) in enumerate(spec):
                text = more[n][k] if n in more and k < len(more[n]) else ""
                painted = before + text + after if before and text else text
                parts.append(painted + " " * (w - width(text)))
            lines.append(("  " + "   ".join(parts)).rstrip())
        return lines


def _wrap_items(items: list[str], room: int) -> list[str]:
    """Items joined by ", " in lines of `room` cells, never broken inside an item."""
    lines: list[str] = []
    current = ""
    for item in items:
        if not current:
            current = item
        elif width(current) + 2 + width(item) + 1 <= room:
            current = f"{current}, {item}"
        else:
            lines.append(current + ",")
            current = item
    lines.append(current)
    return lines


def table(
    rows: Iterable[Any],
    columns: Sequence[Column | str] | None = None,
    *,
    title: str | None = None,
    empty: str = "no rows",
) -> None:
    """Draw dict rows (or objects with to_dict) as a table, streamed in chunks of
    _CHUNK rows: one line per row, the look of Rich's SIMPLE_HEAD box."""
    screen = Screen()
    writer = TableWriter(screen, columns)
    iterator: Iterator[Any] = iter(rows)
    first = True
    while chunk := list(islice(iterator, _CHUNK)):
        dicts = [r.to_dict() if hasattr(r, "to_dict") else r for r in chunk]
        lines = title_lines(screen, title) if first else []
        screen.write(lines + writer.rows(dicts))
        first = False
    if first:
        screen.write([*title_lines(screen, title), screen.paint([(empty, "dim")])])


# --- events, streams, snapshots -----------------------------------------------------

_META_IDS = ("correlation_id", "causation_id")


def _meta(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda d: (d.get("metadata") or {}).get(key)


def _other_metadata(d: dict[str, Any]) -> Any:
    rest = {k: v for k, v in (d.get("metadata") or {}).items() if k not in _META_IDS}
    return rest or None


EVENT_COLUMNS = [
    Column("position", "num", 55, style="dim"),
    Column("stream", keep=True, style="cyan"),
    Column("version", "num", keep=True),
    Column("type", priority=90, style="bold magenta"),
    Column("recorded_at", priority=30, style="dim"),
    Column("correlation_id", priority=50, optional=True, get=_meta("correlation_id"), style="green"),
    Column("causation_id", priority=45, optional=True, get=_meta("causation_id"), style="green"),
    Column("data", "value", 80),
    Column("metadata", "value", 20, optional=True, get=_other_metadata, style="dim"),
]


def events(rows: Iterable[Any], title: str | None = None, *, one_stream: bool = False) -> None:
    """`read`, `exec`: one row per event. One stream's events name the stream in the
    title, not on every row; correlation and causation ids show when a row has them."""
    columns = EVENT_COLUMNS
    if one_stream:  # versions order one stream: its positions matter less than its data
        columns = [
            replace(c, priority=25) if c.key == "position" else c for c in columns if c.key != "stream"
        ]
    table(rows, columns, title=title, empty="no events")


STREAM_COLUMNS = [
    Column("stream", keep=True, style="cyan"),
    Column("category", priority=10),
    Column("version", "num", keep=True),
    Column("first_recorded_at", priority=20, style="dim"),
    Column("last_recorded_at", priority=40, style="dim"),
    Column("last_position", "num", 60, style="dim"),
]


def streams(rows: Iterable[Any], title: str = "streams") -> None:
    """`streams`: one row per stream."""
    table(rows, STREAM_COLUMNS, title=title, empty="no streams")


SNAPSHOT_COLUMNS = [
    Column("version", "num", keep=True),
    Column("aggregate", priority=30),
    Column("fingerprint", priority=50, style="cyan"),
    Column("bytes", "size", 35),
    Column("created_at", priority=45, style="dim"),
    Column("valid", priority=90, style=lambda d: "green" if d.get("valid") else "bold red"),
]


def snapshots(rows: Iterable[dict[str, Any]], title: str) -> None:
    """`snapshot --list`: one stream's snapshots (the stream is in the title)."""
    table(rows, SNAPSHOT_COLUMNS, title=title, empty="no snapshots")


# --- documents: one panel of keys and values ----------------------------------------

_COUNT_MAP_CAP = 12  # entries of a {name: count} map shown on a terminal


def frame(screen: Screen, title: Seg, body: list[Seg], subtitle: Seg | None = None) -> list[str]:
    """Body lines in a rounded box, as wide as they need (at most the terminal)."""
    inner = max([seg_width(b) for b in body] + [seg_width(title) + 2, seg_width(subtitle or []) + 2])
    inner = min(inner, screen.width - 4)
    rest = inner - seg_width(title) - 2
    lines = [screen.paint([("╭─ ", None), *title, (" " + "─" * max(rest, 0) + "─╮", None)])]
    for b in body:
        lines.append(screen.paint([("│ ", None), *b, (" " * max(inner - seg_width(b), 0) + " │", None)]))
    if subtitle:
        rest = inner - seg_width(subtitle) - 1
        lines.append(screen.paint([("╰" + "─" * max(rest, 0) + " ", None), *subtitle, (" ─╯", None)]))
    else:
        lines.append("╰" + "─" * (inner + 2) + "╯")
    return lines


def _is_envelope(value: Any) -> bool:
    return isinstance(value, dict) and {"type", "version", "position", "recorded_at"} <= value.keys()


def _is_count_map(key: str, value: Any) -> bool:
    return (
        key not in _JSON_KEYS
        and isinstance(value, dict)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value.values())
    )


def event_line(ev: dict[str, Any], room: int) -> Seg:
    """An event in one line: v1 OrderCreated · position 1 · recorded_at · data."""
    segs: Seg = [(f"v{ev['version']:,} ", "bold"), (ev["type"], "bold magenta")]
    segs.append((f" · position {ev['position']:,} · {ev['recorded_at']}", "dim"))
    left = room - seg_width(segs) - 3
    if ev.get("data") is not None and left >= 8:
        segs += [(" · ", "dim"), (compact(ev["data"], left), None)]
    return segs


def _value_lines(key: str, value: Any, room: int) -> list[Seg]:
    if value is None or value == {} or value == []:
        return [[_DIM]]
    if isinstance(value, bool) or not isinstance(value, (dict, list)):
        text = size(value) if key in _SIZE_KEYS else human(value)
        return [[(text, None)]]
    if _is_envelope(value):
        return [event_line(value, room)]
    if _is_count_map(key, value):
        items = list(value.items())
        shown = items[:_COUNT_MAP_CAP] if len(items) > _COUNT_MAP_CAP + 1 else items
        name_w = max(width(str(k)) for k, _ in shown)
        count_w = max(len(human(v)) for _, v in shown)
        lines: list[Seg] = [
            [(str(k) + " " * (name_w - width(str(k))) + "  ", None), (human(v).rjust(count_w), None)]
            for k, v in shown
        ]
        if len(shown) < len(items):
            lines.append([(f"… {len(items) - len(shown):,} more (-o json shows them all)", "dim")])
        return lines
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        if any(width(v) > room for v in value):  # sentences, a line or more each
            return [[(line, None)] for v in value for line in wrap(v, room)]
        return [[(line, None)] for line in _wrap_items(value, room)]
    return [[(compact(value, room), None)]]


def document_lines(screen: Screen, doc: dict[str, Any], title: str) -> list[str]:
    """The panel of a document. A name too long to stand beside its key (a deep
    path) goes on a line of its own below it; one too long even for that leaves the
    panel unframed, so that it stays whole."""
    key_w = max((width(str(k)) for k in doc), default=0)
    room = max(screen.width - 4 - key_w - 2, 12)
    body: list[Seg] = []
    for key, value in doc.items():
        lines = _value_lines(key, value, room)
        if len(lines) == 1 and seg_width(lines[0]) > room:
            body += [[(str(key), "bold")], [("  ", None), *lines[0]]]
            continue
        for n, line in enumerate(lines):
            label = str(key) if n == 0 else ""
            body.append([(label, "bold"), (" " * (key_w - width(label) + 2), None), *line])
    if max(seg_width(line) for line in body) > screen.width - 4:
        return [screen.paint([(title, "bold")]), *(screen.paint(line) for line in body)]
    return frame(screen, [(title, "bold")], body)


def mapping(doc: dict[str, Any], title: str) -> None:
    """A document (init, import, info, snapshot, reset) as one panel: a line per key;
    an event in one line; a {name: count} map as a small column."""
    screen = Screen()
    screen.write(document_lines(screen, doc, title))


def migration(doc: dict[str, Any], title: str) -> None:
    """`migrate`: what it did, a line per step."""
    steps = [f"schema {step['version']}: {step['summary']}" for step in doc["steps"]]
    mapping(doc | {"steps": steps}, title)


def event(ev: Any, title: str = "event") -> None:
    """`append`: the event stored, data and metadata on a line each."""
    mapping(ev.to_dict() if hasattr(ev, "to_dict") else ev, title)


@contextmanager
def progress(total: int | None, description: str, unit: str = "events") -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr, advanced by the callable it yields."""
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if unit != "bytes" else TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    import time

    start = time.monotonic()
    with Progress(*columns, console=err_console(), transient=True) as bar:
        task = bar.add_task(description, total=total, rate="")

        def advance(n: int) -> None:
            done = bar.tasks[0].completed + n
            elapsed = time.monotonic() - start
            rate = (
                f"{done / elapsed / (1 << 20):,.1f} MiB/s"
                if unit == "bytes"
                else f"{done / elapsed:,.0f} {unit}/s"
            )
            bar.update(task, advance=n, rate=rate if elapsed > 0 else "")

        yield advance


# --- JSON, indented, a line per key ------------------------------------------------------

_JSON_STYLE = {"key": "bold blue", "str": "green", "num": "cyan", "const": "italic magenta"}


@dataclass(slots=True)
class JsonLine:
    segs: Seg  # indent, key, value, comma
    pointer: str  # the JSON Pointer of the value this line shows (or closes)
    cuttable: int  # index of the segment that may be cut (a scalar value), or -1
    inlined: bool = False  # a small object or list on one line


_INLINE_MAX = 72  # a nested object or list this short (and fitting) takes one line


def json_lines(value: Any, room: int = _INLINE_MAX) -> list[JsonLine]:
    """`value` as indented JSON (exact decimals, esctl.codec), one JsonLine per line;
    a nested object or list that fits in `room` (and _INLINE_MAX) takes one line."""
    out: list[JsonLine] = []
    _json(value, "", 0, [], False, out, min(room, _INLINE_MAX))
    return out


def _scalar_style(value: Any) -> str:
    if isinstance(value, str):
        return _JSON_STYLE["str"]
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return _JSON_STYLE["num"]
    return _JSON_STYLE["const"]


def _json(
    value: Any, pointer: str, depth: int, prefix: Seg, comma: bool, out: list[JsonLine], inline: int
) -> None:
    indent = ("  " * depth, None)
    tail: Seg = [(",", None)] if comma else []
    if not (isinstance(value, (dict, list)) and value):
        segs = [indent, *prefix, (printable(codec.dumps_text(value)), _scalar_style(value)), *tail]
        out.append(JsonLine(segs, pointer, len(segs) - 1 - len(tail)))
        return
    if depth and len(codec.dumps(value)) + 2 * depth <= inline:  # cheap first test, at C speed
        text = printable(_inline(value))
        segs = [indent, *prefix, (text, None), *tail]
        if seg_width(segs) <= inline:
            out.append(JsonLine(segs, pointer, len(segs) - 1 - len(tail), inlined=True))
            return
    opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
    out.append(JsonLine([indent, *prefix, (opening, None)], pointer, -1))
    items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
    last = len(items) - 1
    for n, (key, item) in enumerate(items):
        child = f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
        key_segs: Seg = (
            [(printable(codec.dumps_text(str(key))), _JSON_STYLE["key"]), (": ", None)]
            if isinstance(value, dict)
            else []
        )
        _json(item, child, depth + 1, key_segs, n < last, out, inline)
    out.append(JsonLine([indent, (closing, None), *tail], pointer, -1))


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{codec.dumps_text(str(k))}: {_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return codec.dumps_text(value)


def fit_json(line: JsonLine, room: int) -> Seg:
    """The line in `room` cells: only its value is cut, never a key."""
    over = seg_width(line.segs) - room
    if over <= 0 or line.cuttable < 0:
        return line.segs
    text, style = line.segs[line.cuttable]
    segs = list(line.segs)
    segs[line.cuttable] = (cut(text, max(width(text) - over, 1)), style)
    return segs


_OP_STYLE = {"add": "green", "change": "yellow", "remove": "red"}
_OP_MARK = {"add": "+", "change": "~", "remove": "-"}


def json_block(value: Any, room: int, marks: dict[str, str] | None = None) -> list[Seg]:
    """Indented JSON in `room` cells. With `marks` ({pointer: op}), a gutter marks
    each line inside a changed value with + or ~ (in the op's colour); a line that
    shows a small object on one line is marked when something inside it changed."""
    if marks is None:
        return [fit_json(line, room) for line in json_lines(value, room)]
    out = []
    for line in json_lines(value, room - 2):
        op = _mark_for(line.pointer, marks)
        if op is None and line.inlined:
            inside = {o for p, o in marks.items() if p.startswith(line.pointer + "/")}
            op = inside.pop() if len(inside) == 1 else "change" if inside else None
        gutter = (f"{_OP_MARK[op]} ", f"bold {_OP_STYLE[op]}") if op else ("  ", None)
        segs = fit_json(line, room - 2)
        if op:  # the key of a changed line in the op's colour too
            segs = [(t, f"bold {_OP_STYLE[op]}" if s == _JSON_STYLE["key"] else s) for t, s in segs]
        out.append([gutter, *segs])
    return out


def _mark_for(pointer: str, marks: dict[str, str]) -> str | None:
    while True:
        if pointer in marks:
            return marks[pointer]
        if not pointer:
            return None
        pointer = pointer.rpartition("/")[0]


# --- aggregates: state, changes, steps, versions, upcasting ------------------------------


def aggregate_state(doc: dict[str, Any], subtitle: str) -> None:
    """`replay`: the state of a stream at a version, as one panel."""
    screen = Screen()
    position = "—" if doc.get("position") is None else f"{doc['position']:,}"
    title: Seg = [
        (doc["stream"], "bold cyan"),
        (f" · version {doc['version']:,} · position {position}", None),
    ]
    body = json_block(doc["state"], screen.width - 4)
    screen.write(frame(screen, title, body, [(subtitle, "dim")]))


def _old_new(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda c: printable(codec.dumps_text(c[key])) if key in c else ""


CHANGE_COLUMNS = [
    Column(
        "op",
        header="",
        keep=True,
        get=lambda c: _OP_MARK[c["op"]],
        style=lambda c: f"bold {_OP_STYLE[c['op']]}",
    ),
    Column("path", keep=True, style="cyan", get=lambda c: c["path"] or "(state)"),
    Column("old", "value", 50, style="red", get=_old_new("old"), min_width=10),
    Column("new", "value", 60, style=lambda c: _OP_STYLE[c["op"]], get=_old_new("new"), min_width=10),
]


def changes(doc: dict[str, Any], title: str) -> None:
    """`diff`: one row per changed path."""
    items = doc["changes"]
    if not items:
        screen = Screen()
        screen.write([*title_lines(screen, title), screen.paint([("no changes", "dim")])])
        return
    table(items, CHANGE_COLUMNS, title=title)


def _event_heading(ev: Any, skipped: bool = False) -> Seg:
    segs: Seg = [(f"v{ev.version:,} ", "bold"), (ev.type, "bold magenta")]
    segs.append((f"  position {ev.position:,} · {ev.recorded_at}", "dim"))
    if skipped:
        segs.append(("  skipped: no handler", "yellow"))
    return segs


def replay_steps(steps: Iterable[Any], title: str) -> None:
    """`replay --steps` on a terminal: each event and the changes it made."""
    screen = Screen()
    screen.write(title_lines(screen, title))
    dropped: set[str] = set()  # one note per dropped column, not one per step
    count = 0
    for s in steps:
        count += 1
        lines = [screen.paint(_event_heading(s.event, s.skipped))]
        if s.changes:
            lines += TableWriter(screen, CHANGE_COLUMNS, dropped=dropped).rows(s.changes)
        else:
            lines.append(screen.paint([("  no change", "dim")]))
        screen.write(lines)
    if not count:
        screen.print([("no events", "dim")])


VERSION_COLUMNS = [
    Column("version", "num", keep=True),
    Column("position", "num", 30, style="dim"),
    Column("type", priority=90, style="bold magenta"),
    Column("recorded_at", priority=50, style="dim"),
    Column("changed", "list", 80, style="cyan"),
]


def versions(rows: Iterable[dict[str, Any]], title: str) -> None:
    """`versions`: one row per version with the state paths its event changed."""
    table(rows, VERSION_COLUMNS, title=title, empty="no events")


def side_by_side(left: list[str], right: list[str], left_width: int, gap: str = "  ") -> list[str]:
    """Two blocks of painted lines as columns, the left one padded to `left_width`."""
    lines = []
    for n in range(max(len(left), len(right))):
        a = left[n] if n < len(left) else ""
        b = right[n] if n < len(right) else ""
        lines.append((a + " " * max(left_width - visible_width(a), 0) + gap + b).rstrip() if b else a)
    return lines


def _labelled_json(screen: Screen, label: str, value: Any, room: int) -> list[str]:
    return [screen.paint([(label, "bold")])] + [screen.paint(s) for s in json_block(value, room)]


def upcast_preview(rows: Iterable[dict[str, Any]], title: str) -> None:
    """`upcast --dry-run`: each stored event before and after its upcasters."""
    screen = Screen()
    screen.write(title_lines(screen, title))
    half = (screen.width - 2) // 2
    count = 0
    for row in rows:
        count += 1
        heading: Seg = [(f"{row['stream']} v{row['version']:,} ", "bold cyan")]
        heading.append(
            (f"position {row['position']:,} · schema {row['from_schema']} → {row['to_schema']}", "dim")
        )
        lines = [screen.paint(heading)]
        if not row["changes"]:
            lines.append(screen.paint([("  already current: read as stored", "dim")]))
        else:
            stored = _labelled_json(screen, "stored", row["before"], half)
            after = _labelled_json(screen, "as read", row["after"], screen.width - 2 - half)
            lines += side_by_side(stored, after, half)
        screen.write(lines)
    if not count:
        screen.print([("no stored events of this type", "dim")])


# --- replay --step: one screen per event ------------------------------------------------


def _pairs_line(pairs: list[tuple[str, Any]], room: int) -> Seg:
    """key value · key value ... as many whole pairs as fit, then "+N more"."""
    segs: Seg = []
    for n, (key, value) in enumerate(pairs):
        text = value if isinstance(value, str) else compact(value, 24)
        piece: Seg = [(" · " if segs else "", "dim"), (key + " ", "dim"), (printable(text), None)]
        more = len(pairs) - n - 1
        reserve = len(f" · +{more} more") if more else 0
        if seg_width(segs) + seg_width(piece) + reserve > room:
            segs.append((f"{' · ' if segs else ''}+{len(pairs) - n} more", "dim"))
            break
        segs += piece
    return segs


def _window(n: int, first: int, last: int, room: int) -> tuple[int, int]:
    """Lines start:stop of n to show in `room` lines, leaving a line for each "… more"
    marker needed: lines first..last (the changed ones) when they fit, else from
    just before `first`."""
    if n <= room:
        return 0, n
    room = max(room, 3)
    inner = room - 2  # lines between two markers
    span = last - first + 1
    start = max(0, first - (inner - span) // 2 if span <= inner else first - 2)
    stop = start + room - (start > 0) - 1
    if stop >= n:
        return n - (room - 1), n
    return start, stop


def _capped_json(screen: Screen, lines: list[Seg], room: int, focus: tuple[int, int] = (0, 0)) -> list[str]:
    start, stop = _window(len(lines), *focus, room)
    if start == 1:  # one hidden line takes the room of its marker: show it
        start = 0
    if stop == len(lines) - 1:
        stop = len(lines)
    out = []
    if start:
        out.append(screen.paint([(f"  … {_count(start, 'line')} above", "dim")]))
    out += [screen.paint(s) for s in lines[start:stop]]
    if stop < len(lines):
        out.append(screen.paint([(f"  … {_count(len(lines) - stop, 'more line')}", "dim")]))
    return out


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _changes_block(screen: Screen, items: list[dict[str, Any]], room: int, lines: int) -> list[str]:
    if not items:
        return [screen.paint([("no change to the state", "dim")])]
    writer = TableWriter(screen, CHANGE_COLUMNS, room=room, announce=False)
    out = writer.rows(items)  # a header, a rule and a line per change
    notes = []
    if writer.newly_dropped:
        notes.append(f"{', '.join(writer.newly_dropped)} not shown: too narrow")
    if len(out) + bool(notes) > lines:
        keep = max(lines - 3, 1)
        notes.insert(0, f"… {_count(len(items) - keep, 'more change')}")
        out = out[: keep + 2]
    if notes:
        note = "  " + "; ".join(notes) + " (replay --steps shows all)"
        out.append(screen.paint([(cut(note, room), "dim")]))
    return out


def _state_block(screen: Screen, state: Any, step: Any, room: int, lines: int) -> list[str]:
    marks = {c["pointer"]: c["op"] for c in step.changes if c["op"] != "remove"} if step else {}
    block = json_block(state, room, marks)
    marked = [n for n, segs in enumerate(block) if segs[0][0] != "  "] or [0]
    legend = "  (+ added, ~ changed)" if marks else ""
    heading = screen.paint([("state", "bold"), (legend, "dim")])
    return [heading, *_capped_json(screen, block, lines - 1, (marked[0], marked[-1]))]


def step_screen(
    stream: str, aggregate: str, index: int, total: int, step: Any, state: Any, con: Console | None = None
) -> None:
    """One screen of `replay --step`, at most the terminal's height: the event just
    applied (its metadata and data compactly), its changes, and the state with the
    changed lines marked; what does not fit is cut with a "… more" line. From 120
    columns, the changes and the event's data stand beside the state."""
    screen = Screen(con)
    w, h = screen.width, screen.height
    top: list[str] = []
    header: Seg = [(stream, "bold cyan"), (f"  {aggregate}  ", "dim"), (f"step {index:,}/{total:,}", "bold")]
    top.append(screen.paint(header))
    end = "  (end of stream)" if index == total else ""
    footer = screen.paint([(cut(f"space/→ next · b/← back · g first · G last · q quit{end}", w), "dim")])
    body: list[str] = []
    if step is None:
        top.append(screen.paint([("initial state: no event applied yet", "dim")]))
        room = h - 1 - len(top) - 1  # the last line stays free: no scrolling
        body = _state_block(screen, state, None, w, room)
    else:
        ev = step.event
        top.append(screen.paint(_event_heading(ev, step.skipped)))
        top.append(screen.paint(_pairs_line([("id", ev.id), *ev.metadata.items()], w)))
        if w >= 120:
            room = h - 1 - len(top) - 1
            half = (w - 3) // 2
            changes_part = _changes_block(screen, step.changes, half, max(room // 2, 4))
            data_lines = [fit_json(line, half) for line in json_lines(ev.data, half)]
            left = [*changes_part, screen.paint([("data", "bold")])]
            left += _capped_json(screen, data_lines, max(room - len(left), 3))
            left_w = max(visible_width(line) for line in left)
            right = _state_block(screen, state, step, w - 3 - left_w, room)
            body = side_by_side(left, right, left_w, " │ ")
        else:
            top.append(screen.paint([("data ", "bold"), (compact(ev.data, w - 5), None)]))
            room = h - 1 - len(top) - 1
            state_lines = len(json_lines(state, w - 2)) + 1
            changes_room = max(room - state_lines, min(len(step.changes) + 2, max(room * 2 // 5, 4)))
            body = _changes_block(screen, step.changes, w, changes_room)
            body += _state_block(screen, state, step, w, max(room - len(body), 4))
        body = body[:room]  # a last resort: the blocks are sized to fit
    out = screen.console
    out.clear()
    screen.write([*top, *body, footer])


# --- projections: statuses, follow lines, verify reports, query rows ---------------------

_STATUS_STYLE = {
    "live": "green",
    "behind": "yellow",
    "stale": "magenta",
    "retrying": "red",
    "failed": "bold red",
}

STATUS_COLUMNS = [
    Column("name", keep=True, style="cyan"),
    Column("status", keep=True, style=lambda d: _STATUS_STYLE.get(d.get("status"))),
    Column("checkpoint", "num", 80),
    Column("head", "num", 30),
    Column("lag", "num", 70),
    Column("applied", "num", 60, optional=True),
    Column("seconds", "num", 50, optional=True, style="dim"),
    Column("events_per_second", "num", 40, optional=True, style="dim"),
]


def projection_statuses(rows: Iterable[dict[str, Any]], title: str | None = "projections") -> None:
    """`project list` / `run` / `rebuild`: one row per projection (a head shared by
    every row goes in the title); a failure gets its event, a lost table its fix."""
    screen = Screen()
    rows = list(rows)
    if not rows:
        screen.print([("no projections", "dim")])
        return
    columns = STATUS_COLUMNS
    heads = {row.get("head") for row in rows}
    if len(heads) == 1 and None not in heads:
        title = f"{title or 'projections'} · head {human(heads.pop())}"
        columns = [c for c in columns if c.key != "head"]
    lines = title_lines(screen, title) + TableWriter(screen, columns).rows(rows)
    for row in rows:
        if "missing" in row:
            text = (
                f"{row['name']} needs a rebuild: its table {', '.join(row['missing'])} is missing"
                f" (esctl project rebuild {row['name']})"
            )
            lines += [screen.paint([(line, "magenta")]) for line in wrap(text, screen.width)]
    for row in rows:
        if "error" in row:
            e = row["error"]
            text = (
                f"{row['name']} failed at position {e['position']:,}"
                f" ({e['stream']} v{e['version']:,} {e['type']}): {e['message']}"
            )
            lines += [screen.paint([(line, "red")]) for line in wrap(printable(text), screen.width)]
    screen.write(lines)


def projection_report(doc: dict[str, Any], title: str) -> None:
    """`project rebuild`: the same table as `project run`."""
    projection_statuses([doc], title)


def follow_events(batches: Iterable[Any]) -> None:
    """`follow` on a terminal: one line per event as it comes, and below them a
    status line (position, lag, rate) redrawn in place."""
    import time
    from collections import deque

    screen = Screen()
    file = screen.console.file
    recent: deque[tuple[float, int]] = deque()  # (when, events) over the last _RATE_SECONDS
    erase = "\r\x1b[2K"
    try:
        for batch in batches:
            now = time.monotonic()
            if batch.rows:
                recent.append((now, len(batch.rows)))
            while recent and now - recent[0][0] > _RATE_SECONDS:
                recent.popleft()
            rate = sum(n for _, n in recent) / _RATE_SECONDS
            lines = [screen.paint(_follow_segs(row, screen.width)) for row in batch.rows]
            lag = max(batch.head - batch.position, 0)
            status = cut(f"position {batch.position:,}  lag {lag:,}  {rate:,.1f} events/s", screen.width - 1)
            file.write(erase + "".join(line + "\n" for line in lines) + screen.paint([(status, "dim")]))
            file.flush()
    finally:
        file.write(erase)
        file.flush()


_RATE_SECONDS = 10.0


def _follow_segs(row: Any, room: int) -> Seg:
    """position, stream and version, type, then as much of the data as fits."""
    head: Seg = [
        (f"{row.position:>7,}  ", "dim"),
        (f"{printable(row.stream)}", "cyan"),
        (f" v{row.version}  ", "dim"),
        (f"{printable(row.type)}", "bold"),
    ]
    used = seg_width(head)
    if used >= room:
        return [(cut("".join(text for text, _ in head), room), None)]
    return [*head, (cut("  " + printable(row.data), room - used), None)]


CONSUMER_COLUMNS = [
    Column("name", keep=True, style="cyan"),
    Column("kind", priority=40, style="dim"),
    Column("status", keep=True, style=lambda d: _STATUS_STYLE.get(d.get("status"))),
    Column("checkpoint", "num", 80),
    Column("lag", "num", 70),
    Column("parked", "num", 75, style=lambda d: "yellow" if d.get("parked") else "dim"),
    Column("breaker", priority=65, style=lambda d: "bold red" if d.get("breaker") == "open" else "dim"),
    Column("holder", "value", 30, style="dim"),
]


def consumer_statuses(rows: Iterable[dict[str, Any]]) -> None:
    """`consumers`: one row per subscription, the head in the title."""
    rows = list(rows)
    heads = {row["head"] for row in rows}
    title = f"subscriptions · head {human(heads.pop())}" if len(heads) == 1 else "subscriptions"
    table(rows, CONSUMER_COLUMNS, title=title, empty="no projections or consumers have run yet")


PARKED_COLUMNS = [
    Column("consumer", keep=True, style="cyan"),
    Column("position", "num", keep=True),
    Column("stream", priority=70),
    Column("version", "num", 40),
    Column("type", priority=60),
    Column("state", keep=True, style=lambda d: "yellow" if d.get("state") in ("parked", "held") else "dim"),
    Column("attempts", "num", 35),
    Column("error", "value", 20, style="red"),
]


def parked_events(rows: Iterable[dict[str, Any]]) -> None:
    """`dlq list`: one row per parked event, with the last line of its error."""
    rows = [{**row, "error": (row["error"].splitlines() or [""])[-1]} for row in rows]
    table(rows, PARKED_COLUMNS, title="parked events", empty="no parked events")


def parked_event(doc: dict[str, Any]) -> None:
    """`dlq show`: the parked event's record, then its error and history."""
    screen = Screen()
    head = {
        k: doc[k]
        for k in ("consumer", "position", "stream", "version", "type", "state", "attempts", "exit_code")
    }
    lines = document_lines(screen, head, f"parked event {doc['position']:,} of {doc['consumer']}")
    lines.append(screen.paint([("error:", "bold")]))
    lines += [
        screen.paint([(cut(printable(line), screen.width - 2), "red")]) for line in doc["error"].splitlines()
    ]
    lines.append(screen.paint([("history:", "bold")]))
    for entry in doc["history"]:
        details = ", ".join(f"{k} {human(v)}" for k, v in entry.items() if k not in ("at", "what"))
        text = f"  {entry['at']}  {entry['what']}" + (f" ({details})" if details else "")
        lines.append(screen.paint([(cut(text, screen.width), None)]))
    lines.append(screen.paint([("event:", "bold")]))
    lines.append(screen.paint([(cut("  " + codec.dumps_text(doc["event"]["data"]), screen.width), None)]))
    screen.write(lines)


_OUTCOME_STYLE = {
    "ok": "green",
    "failed": "yellow",
    "open": "bold red",
    "parked": "magenta",
    "held": "magenta",
    "queued": "dim",
}


def consume_line(doc: dict[str, Any]) -> None:
    """`consume`: one line per delivery."""
    screen = Screen()
    text = f"{doc['position']:>7,}  {doc['stream']} v{doc['version']}  {doc['type']}"
    outcome = doc["outcome"] + (f" (attempt {doc['attempt']})" if doc.get("attempt", 1) > 1 else "")
    if doc.get("retry_in") is not None:
        outcome += f", again in {doc['retry_in']:.1f} s"
    room = max(screen.width - width(outcome) - 2, 10)
    screen.print([(cut(text, room), None), ("  " + outcome, _OUTCOME_STYLE.get(doc["outcome"]))])


def follow_line(doc: dict[str, Any]) -> None:
    """`project run --follow`: one line per batch applied."""
    Screen().print(
        [
            (doc["name"], "cyan"),
            (f"  checkpoint {doc['checkpoint']:,}", "bold"),
            (f"  +{doc['applied']:,} applied", "dim"),
        ]
    )


def _key_text(key: Any) -> str:
    if isinstance(key, dict):
        return ", ".join(f"{k}={human(v)}" for k, v in key.items())
    return human(key)


_DIFF_STYLE = {"missing": "yellow", "extra": "yellow", "different": "red", "nondeterministic": "bold red"}


def _difference_row(d: dict[str, Any]) -> dict[str, Any]:
    live = d.get("live", d.get("rebuilt_again"))
    rebuilt = d.get("rebuilt")
    columns = d.get("columns")
    if d["diff"] == "different" and columns:
        live = {c: live[c] for c in columns}
        rebuilt = {c: rebuilt[c] for c in columns}
    if d["diff"] == "schema":
        live = ", ".join(columns or [])
    return {
        "table": d["table"],
        "diff": d["diff"],
        "key": _key_text(d.get("key")),
        "live": live,
        "rebuilt": rebuilt,
    }


DIFFERENCE_COLUMNS = [
    Column("table", keep=True, style="cyan"),
    Column("diff", keep=True, style=lambda r: _DIFF_STYLE.get(r["diff"])),
    Column("key", priority=70),
    Column("live", "value", 60, min_width=12),
    Column("rebuilt", "value", 50, min_width=12),
]


def verify_report(doc: dict[str, Any]) -> None:
    """`project verify`: a verdict, then each difference with the values that differ."""
    screen = Screen()
    tables = ", ".join(f"{name} ({human(n)} rows)" for name, n in doc["rows"].items()) or "no tables"
    checkpoint = human(doc["checkpoint"])
    lines: list[str] = []
    failure = doc.get("error")
    if failure:  # a handler failed: the projection is stuck there, whatever its tables
        stuck = (
            f"✗ {doc['name']} has failed at position {human(failure['position'])} ({failure['stream']}"
            f" v{failure['version']}, {failure['type']}): {failure['message']}"
        )
        lines += [screen.paint([(line, "red")]) for line in wrap(stuck, screen.width)]
    if not doc["counts"]:
        if failure:
            verdict, style = f"its tables match a rebuild at checkpoint {checkpoint}: {tables}", ""
        else:
            verdict, style = (
                f"✓ {doc['name']} matches a rebuild at checkpoint {checkpoint}: {tables}",
                "green",
            )
        screen.write(lines + [screen.paint([(line, style)]) for line in wrap(verdict, screen.width)])
        return
    counts = ", ".join(f"{human(n)} {kind}" for kind, n in doc["counts"].items())
    verdict = f"✗ {doc['name']} differs from a rebuild at checkpoint {checkpoint}: {counts}"
    lines += [screen.paint([(line, "red")]) for line in wrap(verdict, screen.width)]
    rows = [_difference_row(d) for d in doc["differences"]]
    screen.write(lines + (TableWriter(screen, DIFFERENCE_COLUMNS).rows(rows) if rows else []))


def query_rows(rows: Iterable[dict[str, Any]], columns: list[str]) -> None:
    """`query`: the result set in tables of up to _CHUNK rows. A column whose values
    are all numbers is right-aligned, whatever its name; text with spaces and JSON
    may be cut; other text (names, ids) is whole, or its column is left out."""
    screen = Screen()
    if not columns:
        screen.print([("no result set", "dim")])
        return
    iterator = iter(rows)
    first = list(islice(iterator, _CHUNK))
    if not first:
        screen.print([("no rows", "dim")])
        return
    cols = [
        Column(name, _query_kind([row.get(name) for row in first]), 100 - n, keep=n == 0, get=_getter(name))
        for n, name in enumerate(columns)
    ]
    table(chain(first, iterator), cols)


def _getter(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: row.get(name)


def _query_kind(values: list[Any]) -> str:
    if _numbers_only(values):
        return "num"
    for v in values:
        if isinstance(v, (dict, list, bytes)):
            return "value"
        if isinstance(v, str) and (len(v) > 40 or v[:1] in ("{", "[") or not v.isprintable() or " " in v):
            return "value"
    return "id"


def _numbers_only(values: list[Any]) -> bool:
    """At least one number and nothing but numbers and NULLs (bool is not a number here)."""
    numbers = [v for v in values if v is not None]
    return bool(numbers) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers)
