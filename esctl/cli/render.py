"""The one module that owns Rich: tables, panels and progress bars for a terminal.

Imported only when something is drawn for a person (start-up cost ~45 ms)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Any

from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from esctl import codec

_JSON_COLUMNS = {"data", "metadata", "state", "changes"}
_NUMERIC_COLUMNS = {"version", "position", "count", "checkpoint", "head", "lag", "last_position"}
_CHUNK = 500  # rows per drawn table: long listings stream instead of building in memory


def console() -> Console:
    # A pipe that asked for a table gets it unwrapped and uncoloured.
    if sys.stdout.isatty():
        return Console(highlight=False)
    return Console(highlight=False, width=int(os.environ.get("COLUMNS", 0)) or 250, no_color=True)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def compact(value: Any, width: int = 60) -> str:
    text = codec.dumps(value).decode() if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 1] + "…"


def _cell(value: Any) -> str | Text:
    if value is None:
        return Text("—", style="dim")
    if isinstance(value, (dict, list)):
        return compact(value)
    return str(value)


def table(
    rows: Iterable[Any],
    columns: list[str] | None = None,
    *,
    title: str | None = None,
    styles: dict[str, str] | None = None,
    empty: str = "no rows",
) -> None:
    """Draw dict rows (or objects with to_dict) as tables of up to _CHUNK rows each."""
    out = console()
    styles = styles or {}
    iterator: Iterator[Any] = iter(rows)
    first = True
    while chunk := list(islice(iterator, _CHUNK)):
        dicts = [r.to_dict() if hasattr(r, "to_dict") else r for r in chunk]
        cols = columns or list(dicts[0].keys())
        t = Table(
            box=box.SIMPLE_HEAD,
            title=title if first else None,
            show_header=first,
            title_justify="left",
            title_style="bold",
        )
        cells = [[_cell(d.get(c)) for c in cols] for d in dicts]
        budget = _json_budget(out.width, cols, cells)
        for col in cols:
            t.add_column(
                col,
                style=styles.get(col),
                no_wrap=col not in _JSON_COLUMNS,
                justify="right" if col in _NUMERIC_COLUMNS else "left",
            )
        for row in cells:
            t.add_row(*(_cut(v, budget) if c in _JSON_COLUMNS else v for c, v in zip(cols, row, strict=True)))
        out.print(t)
        first = False
    if first:
        out.print(Text(empty, style="dim"))


def _json_budget(width: int, cols: list[str], cells: list[list[Any]]) -> int:
    """Width left for JSON columns once the others show in full: JSON is cut to fit,
    so each row stays one line and ids, names and versions are never folded."""
    fixed = sum(
        max([len(c)] + [Text(row[i]).cell_len if isinstance(row[i], str) else row[i].cell_len for row in cells])
        for i, c in enumerate(cols)
        if c not in _JSON_COLUMNS
    )
    json_cols = sum(1 for c in cols if c in _JSON_COLUMNS) or 1
    return max(12, (width - fixed - 3 * len(cols) - 2) // json_cols)


def _cut(value: Any, width: int) -> Any:
    if isinstance(value, str) and len(value) > width:
        return value[: width - 1] + "…"
    return value


EVENT_COLUMNS = ["position", "stream", "version", "type", "recorded_at", "data"]
EVENT_STYLES = {"position": "dim", "stream": "cyan", "type": "bold magenta", "recorded_at": "dim"}


def events(rows: Iterable[Any], title: str | None = None) -> None:
    table(rows, EVENT_COLUMNS, title=title, styles=EVENT_STYLES, empty="no events")


def event(ev: Any, title: str = "event") -> None:
    d = ev.to_dict() if hasattr(ev, "to_dict") else ev
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in d.items():
        if isinstance(value, dict):
            value = codec.dumps(value, indent=True).decode()
        grid.add_row(key, str(value))
    console().print(Panel.fit(grid, title=title, title_align="left"))


def mapping(doc: dict[str, Any], title: str) -> None:
    """A document of scalars and small {name: count} maps as one panel."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in doc.items():
        if isinstance(value, dict) and all(not isinstance(v, (dict, list)) for v in value.values()):
            inner = Table(box=box.SIMPLE, show_header=False, pad_edge=False)
            inner.add_column()
            inner.add_column(justify="right")
            for k, v in value.items():
                inner.add_row(str(k), str(v))
            grid.add_row(key, inner if value else Text("—", style="dim"))
        elif isinstance(value, (dict, list)):
            grid.add_row(key, codec.dumps(value, indent=True).decode())
        else:
            grid.add_row(key, _cell(value))
    console().print(Panel.fit(grid, title=title, title_align="left"))


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
