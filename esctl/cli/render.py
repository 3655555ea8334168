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
from rich.cells import cell_len
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


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # Rich would exit 1; the CLI ends a closed pipe quietly, the same for every format.
        raise BrokenPipeError


def console() -> Console:
    # A pipe that asked for a table gets it unwrapped and uncoloured.
    if sys.stdout.isatty():
        return _Console(highlight=False)
    return _Console(highlight=False, width=int(os.environ.get("COLUMNS", 0)) or 250, no_color=True)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def compact(value: Any, width: int = 60) -> str:
    text = codec.dumps_text(value) if not isinstance(value, str) else value
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
    """Draw dict rows (or objects with to_dict) as a table, streamed in chunks of
    _CHUNK rows: one line per row, the look of Rich's SIMPLE_HEAD box.

    The lines are composed here rather than with rich.table.Table, which measured
    ~1 ms per row (minutes for a large store); this is ~25x faster. Column widths
    only grow from chunk to chunk, so later rows stay aligned with the header, and
    JSON columns are cut to the width the other columns leave."""
    out = console()
    styles = styles or {}
    iterator: Iterator[Any] = iter(rows)
    widths: dict[str, int] = {}
    first = True
    while chunk := list(islice(iterator, _CHUNK)):
        dicts = [r.to_dict() if hasattr(r, "to_dict") else r for r in chunk]
        cols = columns or list(dicts[0].keys())
        cells = [[_cell(d.get(c)) for c in cols] for d in dicts]
        for i, col in enumerate(cols):
            if col not in _JSON_COLUMNS:
                widths[col] = max(widths.get(col, len(col)), *(_width(row[i]) for row in cells))
        budget = _json_budget(out.width, cols, widths)
        for i, col in enumerate(cols):
            if col in _JSON_COLUMNS:
                widths[col] = min(budget, max(widths.get(col, len(col)), *(_width(row[i]) for row in cells)))
        lines: list[Text] = []
        if first:
            if title:
                lines.append(Text(title, style="bold"))
            lines.append(_row_line([Text(c, style="bold") for c in cols], cols, widths, {}))
            lines.append(Text(" " + "─" * (sum(widths[c] for c in cols) + 3 * len(cols) - 1)))
        lines.extend(_row_line(row, cols, widths, styles) for row in cells)
        out.print(Text("\n").join(lines), no_wrap=True, crop=True, overflow="ellipsis")
        first = False
    if first:
        out.print(Text(empty, style="dim"))


def _width(value: str | Text) -> int:
    text = value.plain if isinstance(value, Text) else value
    return len(text) if text.isascii() else cell_len(text)  # cell_len is slow per character


def _fit(value: str | Text, width: int, right: bool, pad: bool) -> str | Text:
    """A cell cut (with …) or padded to `width` terminal cells."""
    if isinstance(value, str) and value.isascii():  # the common case, at C speed
        if len(value) > width:
            value = value[: width - 1] + "…"
        return value.rjust(width) if right else value.ljust(width) if pad else value
    cell = value.copy() if isinstance(value, Text) else Text(value)
    cell.truncate(width, overflow="ellipsis")
    if right or pad:
        cell.align("right" if right else "left", width)
    return cell


def _row_line(row: list[Any], cols: list[str], widths: dict[str, int], styles: dict[str, str]) -> Text:
    line = Text("  ")
    last = len(cols) - 1
    for i, (col, value) in enumerate(zip(cols, row, strict=True)):
        # No trailing blanks after the last column.
        cell = _fit(value, widths[col], right=col in _NUMERIC_COLUMNS, pad=i < last)
        if isinstance(cell, Text):
            line.append_text(cell)
        else:
            line.append(cell, style=styles.get(col))
        if i < last:
            line.append("   ")
    return line


def _json_budget(width: int, cols: list[str], widths: dict[str, int]) -> int:
    """Width left for JSON columns once the others show in full: JSON is cut to fit,
    so each row stays one line and ids, names and versions are never folded."""
    fixed = sum(widths[c] for c in cols if c not in _JSON_COLUMNS)
    json_cols = sum(1 for c in cols if c in _JSON_COLUMNS) or 1
    return max(12, (width - fixed - 3 * len(cols) - 1) // json_cols)


EVENT_COLUMNS = ["position", "stream", "version", "type", "recorded_at", "data"]
EVENT_STYLES = {"position": "dim", "stream": "cyan", "type": "bold magenta", "recorded_at": "dim"}


def events(rows: Iterable[Any], title: str | None = None) -> None:
    # On a narrow terminal the timestamp gives way, so that some data still shows.
    columns = EVENT_COLUMNS if console().width >= 110 else [c for c in EVENT_COLUMNS if c != "recorded_at"]
    table(rows, columns, title=title, styles=EVENT_STYLES, empty="no events")


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


# --- aggregates: state, changes, steps, versions, upcasting (issue 3) ----------------

_OP_STYLE = {"add": "green", "change": "yellow", "remove": "red"}
_OP_MARK = {"add": "+", "change": "~", "remove": "-"}


def json_text(value: Any) -> Text:
    """Indented JSON with Rich's JSON colours; exact decimals (esctl.codec)."""
    from rich.highlighter import JSONHighlighter

    text = Text(codec.dumps(value, indent=True).decode())
    JSONHighlighter().highlight(text)
    return text


def _value(value: Any, style: str = "", width: int = 60) -> Text:
    return Text(compact(codec.dumps_text(value), width), style=style)


def aggregate_state(doc: dict[str, Any], subtitle: str) -> None:
    """`replay`: the state of a stream at a version, as one panel."""
    position = "—" if doc.get("position") is None else str(doc["position"])
    title = f"[bold cyan]{doc['stream']}[/] · version {doc['version']} · position {position}"
    console().print(
        Panel(
            json_text(doc["state"]),
            title=title,
            title_align="left",
            subtitle=subtitle,
            subtitle_align="right",
        )
    )


def changes_table(changes: list[dict[str, Any]], title: str | None = None) -> Table:
    t = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", title_style="bold")
    t.add_column("", width=1)
    t.add_column("path", style="cyan", overflow="fold")
    t.add_column("old", overflow="fold")
    t.add_column("new", overflow="fold")
    for c in changes:
        style = _OP_STYLE[c["op"]]
        t.add_row(
            Text(_OP_MARK[c["op"]], style=f"bold {style}"),
            c["path"] or "(state)",
            _value(c["old"], "red") if "old" in c else Text(""),
            _value(c["new"], style) if "new" in c else Text(""),
        )
    return t


def changes(doc: dict[str, Any], title: str) -> None:
    """`diff`: one row per changed path."""
    items = doc["changes"]
    out = console()
    if not items:
        out.print(Text(title, style="bold"))
        out.print(Text("no changes", style="dim"))
        return
    out.print(changes_table(items, title))


def _event_heading(ev: Any, skipped: bool = False) -> Text:
    heading = Text()
    heading.append(f"v{ev.version} ", style="bold")
    heading.append(ev.type, style="bold magenta")
    heading.append(f"  position {ev.position} · {ev.recorded_at}", style="dim")
    if skipped:
        heading.append("  skipped: no handler", style="yellow")
    return heading


def replay_steps(steps: Iterable[Any], title: str) -> None:
    """`replay --steps` on a terminal: each event and the changes it made."""
    out = console()
    out.print(Text(title, style="bold"))
    count = 0
    for s in steps:
        count += 1
        out.print(_event_heading(s.event, s.skipped))
        if s.changes:
            out.print(changes_table(s.changes))
        else:
            out.print(Text("  no change", style="dim"))
    if not count:
        out.print(Text("no events", style="dim"))


def versions(rows: Iterable[dict[str, Any]], title: str) -> None:
    """`versions`: one row per version with the state paths its event changed."""
    out = console()
    iterator = iter(rows)
    first = True
    while chunk := list(islice(iterator, _CHUNK)):
        t = Table(
            box=box.SIMPLE_HEAD, title=title if first else None, title_justify="left", show_header=first
        )
        t.add_column("version", justify="right", no_wrap=True)
        t.add_column("position", justify="right", style="dim", no_wrap=True)
        t.add_column("type", style="bold magenta", no_wrap=True)
        t.add_column("recorded_at", style="dim", no_wrap=True)
        t.add_column("changed", style="cyan", overflow="fold")
        for row in chunk:
            changed = ", ".join(row["changed"]) or Text("—", style="dim")
            t.add_row(str(row["version"]), str(row["position"]), row["type"], row["recorded_at"], changed)
        out.print(t)
        first = False
    if first:
        out.print(Text("no events", style="dim"))


def step_screen(stream: str, aggregate: str, index: int, total: int, step: Any, state: Any) -> None:
    """One screen of `replay --step`: the event just applied, its changes, the state."""
    out = console()
    out.clear()
    header = Text()
    header.append(stream, style="bold cyan")
    header.append(f"  {aggregate}  ", style="dim")
    header.append(f"step {index}/{total}", style="bold")
    out.print(header)
    state_panel = Panel(json_text(state), title="state", title_align="left", expand=False)
    if step is None:
        out.print(Text("initial state: no event applied yet", style="dim"))
        out.print(state_panel)
    else:
        out.print(_event_heading(step.event, step.skipped))
        if step.changes:
            out.print(changes_table(step.changes))
        else:
            out.print(Text("no change to the state", style="dim"))
        # Event and state side by side, so a step fits on one screen.
        grid = Table.grid(padding=(0, 2))
        grid.add_column()
        grid.add_column()
        grid.add_row(Panel(json_text(step.event.data), title="event data", title_align="left"), state_panel)
        out.print(grid)
    end = "  (end of stream)" if index == total else ""
    out.print(Text(f"space/→ next · b/← back · g first · G last · q quit{end}", style="dim"))


def upcast_preview(rows: Iterable[dict[str, Any]], title: str) -> None:
    """`upcast --dry-run`: each stored event before and after its upcasters."""
    out = console()
    out.print(Text(title, style="bold"))
    count = 0
    for row in rows:
        count += 1
        heading = Text()
        heading.append(f"{row['stream']} v{row['version']} ", style="bold cyan")
        heading.append(
            f"position {row['position']} · schema {row['from_schema']} → {row['to_schema']}", style="dim"
        )
        out.print(heading)
        if not row["changes"]:
            out.print(Text("  already current: read as stored", style="dim"))
            continue
        grid = Table.grid(padding=(0, 2))
        grid.add_column()
        grid.add_column()
        grid.add_row(
            Panel(json_text(row["before"]), title="stored", title_align="left"),
            Panel(json_text(row["after"]), title="as read", title_align="left"),
        )
        out.print(grid)
    if not count:
        out.print(Text("no stored events of this type", style="dim"))


# --- projections: statuses, follow lines, verify reports, query rows (issue 4) --------

_STATUS_STYLE = {"live": "green", "behind": "yellow", "stale": "magenta", "failed": "bold red"}


def projection_statuses(rows: Iterable[dict[str, Any]], title: str | None = "projections") -> None:
    """`project list` / `project run`: one row per projection; a failure gets its event."""
    out = console()
    t = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", title_style="bold")
    t.add_column("name", style="cyan", no_wrap=True)
    t.add_column("status", no_wrap=True)
    for col in ("checkpoint", "head", "lag"):
        t.add_column(col, justify="right", no_wrap=True)
    extra = False
    failures = []
    rows_missing = []
    for row in rows:
        cells = [row["name"], Text(row["status"], style=_STATUS_STYLE.get(row["status"], ""))]
        cells += [str(row[c]) for c in ("checkpoint", "head", "lag")]
        if "applied" in row:
            if not extra:
                t.add_column("applied", justify="right", no_wrap=True)
                t.add_column("seconds", justify="right", no_wrap=True, style="dim")
                extra = True
            cells += [str(row["applied"]), f"{row['seconds']:.3f}"]
        elif extra:
            cells += ["—", "—"]
        t.add_row(*cells)
        if "error" in row:
            failures.append(row)
        if "missing" in row:
            rows_missing.append(row)
    if not t.rows:
        out.print(Text("no projections", style="dim"))
        return
    out.print(t)
    for row in rows_missing:
        line = Text()
        line.append(f"{row['name']} needs a rebuild: ", style="magenta")
        line.append(f"its table {', '.join(row['missing'])} is missing (esctl project rebuild {row['name']})")
        out.print(line)
    for row in failures:
        e = row["error"]
        line = Text()
        line.append(f"{row['name']} failed ", style="bold red")
        line.append(f"at position {e['position']} ({e['stream']} v{e['version']} {e['type']}): ", style="dim")
        line.append(e["message"])
        out.print(line)


def follow_line(doc: dict[str, Any]) -> None:
    """`project run --follow`: one line per batch applied."""
    line = Text()
    line.append(doc["name"], style="cyan")
    line.append(f"  checkpoint {doc['checkpoint']}", style="bold")
    line.append(f"  +{doc['applied']} applied", style="dim")
    console().print(line)


def verify_report(doc: dict[str, Any]) -> None:
    """`project verify`: a verdict, then each difference with the values that differ."""
    out = console()
    tables = ", ".join(f"{name} ({n} rows)" for name, n in doc["rows"].items()) or "no tables"
    failure = doc.get("error")
    if failure:  # a handler failed: the projection is stuck there, whatever its tables
        out.print(
            Text(
                f"✗ {doc['name']} has failed at position {failure['position']} ({failure['stream']}"
                f" v{failure['version']}, {failure['type']}): {failure['message']}",
                style="red",
            )
        )
    if not doc["counts"]:
        if failure:
            out.print(Text(f"its tables match a rebuild at checkpoint {doc['checkpoint']}: {tables}"))
        else:
            verdict = f"✓ {doc['name']} matches a rebuild at checkpoint {doc['checkpoint']}: {tables}"
            out.print(Text(verdict, style="green"))
        return
    counts = ", ".join(f"{n} {kind}" for kind, n in doc["counts"].items())
    verdict = f"✗ {doc['name']} differs from a rebuild at checkpoint {doc['checkpoint']}: {counts}"
    out.print(Text(verdict, style="red"))
    t = Table(box=box.SIMPLE_HEAD)
    t.add_column("table", style="cyan", no_wrap=True)
    t.add_column("diff", no_wrap=True)
    t.add_column("key", no_wrap=True)
    t.add_column("live", overflow="fold")
    t.add_column("rebuilt", overflow="fold")
    styles = {"missing": "yellow", "extra": "yellow", "different": "red", "nondeterministic": "bold red"}
    for d in doc["differences"]:
        live = d.get("live", d.get("rebuilt_again"))
        rebuilt = d.get("rebuilt")
        columns = d.get("columns")
        if d["diff"] == "different" and columns:
            live = {c: live[c] for c in columns}
            rebuilt = {c: rebuilt[c] for c in columns}
        t.add_row(
            d["table"],
            Text(d["diff"], style=styles.get(d["diff"], "")),
            compact(d["key"], 40),
            _cell(live) if d["diff"] != "schema" else ", ".join(columns or []),
            _cell(rebuilt),
        )
    out.print(t)


def query_rows(rows: Iterable[dict[str, Any]], columns: list[str]) -> None:
    """`query`: the result set as tables of up to _CHUNK rows; a column whose values
    are all numbers is right-aligned, whatever its name."""
    out = console()
    if not columns:
        out.print(Text("no result set", style="dim"))
        return
    iterator = iter(rows)
    first = True
    while chunk := list(islice(iterator, _CHUNK)):
        t = Table(box=box.SIMPLE_HEAD, show_header=first)
        for col in columns:
            numeric = _numbers_only([row.get(col) for row in chunk])
            t.add_column(col, justify="right" if numeric else "left", no_wrap=numeric)
        for row in chunk:
            t.add_row(*(_cell(row.get(col)) for col in columns))
        out.print(t)
        first = False
    if first:
        out.print(Text("no rows", style="dim"))


def _numbers_only(values: list[Any]) -> bool:
    """At least one number and nothing but numbers and NULLs (bool is not a number here)."""
    numbers = [v for v in values if v is not None]
    return bool(numbers) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers)
