"""How results leave the CLI: Rich for a person, NDJSON / JSON for a pipe.

Only this module decides the format. A command names the `render` function that
draws its result for a person (`out.records(rows, "events", title=...)`); `render`,
and with it Rich, is imported only when something is drawn, so piped commands never
pay for it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, TextIO

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

    def __init__(self, fmt: OutputFormat | str = OutputFormat.auto, *, pager: bool = False) -> None:
        fmt = OutputFormat(fmt)
        if fmt is OutputFormat.auto:
            fmt = OutputFormat.table if stdout_is_terminal() else OutputFormat.auto
        self.format = fmt
        self.pager = pager  # a listing: drawn through the pager when stdout is a terminal

    @property
    def is_table(self) -> bool:
        return self.format is OutputFormat.table

    @property
    def is_ndjson(self) -> bool:
        return self.format in (OutputFormat.ndjson, OutputFormat.auto)

    def records(self, items: Iterable[Any], view: str, /, *args: Any, **options: Any) -> None:
        """A list result: NDJSON by default when piped, a JSON array with `json`, and
        `render.<view>(items, *args, **options)` for a person. Items are dicts or objects
        with `to_dict()`."""
        if self.is_table:
            with paged(self.pager):
                draw(view, items, *args, **options)
        elif self.format is OutputFormat.json:
            write_json_array(_as_dicts(items))
        else:
            write_ndjson(_as_dicts(items))

    def document(self, doc: Any, view: str, /, *args: Any, **options: Any) -> None:
        """A single result: one JSON document (pretty-printed when `json` is asked for
        explicitly, one line otherwise), `render.<view>(doc, *args, **options)` for a person."""
        if self.is_table:
            draw(view, doc, *args, **options)
            return
        data = doc.to_dict() if hasattr(doc, "to_dict") else doc
        out = sys.stdout.buffer
        out.write(codec.dumps(data, indent=self.format is OutputFormat.json) + b"\n")
        out.flush()


def draw(view: str, *args: Any, **options: Any) -> None:
    """Draw for a person with `render.<view>`: the one place the renderer is imported."""
    from esctl.cli import render

    getattr(render, view)(*args, **options)


# --- the pager ----------------------------------------------------------------------

_pager: tuple[TextIO, int, int] | None = None  # (its stdin, the terminal's columns, lines) while paging


def pager_stream() -> tuple[TextIO, int, int] | None:
    """The pager's input and the terminal's size while a listing is paged, else None."""
    return _pager


def pager_command(environ: Mapping[str, str]) -> str | None:
    """The pager, the way git finds it: $ESCTL_PAGER, else $PAGER, else `less -FRX`
    when less is installed. Empty or `cat` means no pager."""
    command = environ.get("ESCTL_PAGER")
    if command is None:
        command = environ.get("PAGER")
    if command is None:
        import shutil

        return "less -FRX" if shutil.which("less") else None
    command = command.strip()
    return None if command in ("", "cat") else command


@contextmanager
def paged(enabled: bool = True) -> Iterator[None]:
    """Send what is drawn inside through the pager, when `enabled` and stdout is a
    terminal (nothing is imported or started otherwise). Colours are kept: the pager
    gets what the terminal would (LESS=FRX unless $LESS is set, as git does). A pager
    the user quits early ends the listing quietly; stderr goes through the pager too
    while it runs (when stderr is the terminal), so notes stay in order."""
    global _pager
    if not enabled or _pager is not None or not stdout_is_terminal():
        yield
        return
    command = pager_command(os.environ)
    if command is None:
        yield
        return
    import shlex
    import shutil
    import subprocess

    try:
        args = shlex.split(command)
    except ValueError:
        args = []
    if not args or shutil.which(args[0]) is None:
        warn(f"pager {command!r} not found: listing without it (ESCTL_PAGER= or --no-pager turn it off)")
        yield
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    env.setdefault("LV", "-c")
    columns, lines = shutil.get_terminal_size()
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, env=env)
    assert proc.stdin is not None
    stream = io.TextIOWrapper(proc.stdin, encoding=sys.stdout.encoding or "utf-8", errors="replace")
    saved_stderr = sys.stderr
    if stderr_is_terminal():
        sys.stderr = stream
    _pager = (stream, columns, lines)
    interrupted = False
    try:
        yield
    except BrokenPipeError:
        pass  # the user quit the pager: the listing ends there, quietly
    except KeyboardInterrupt:
        interrupted = True
    finally:
        _pager = None
        sys.stderr = saved_stderr
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            stream.close()
        _wait(proc)
    if interrupted:
        raise KeyboardInterrupt


def _wait(proc: Any) -> None:
    """Wait for the pager to end: the user reads on after the listing is written.
    Ctrl-C is the pager's meanwhile (less uses it to stop a search)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def progress(
    total: int | None, description: str, unit: str = "events", *, at_least: int = 0
) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr when stderr is a terminal (and there are at least
    `at_least` units to go): yields the callable that advances it, else None."""
    if not stderr_is_terminal() or (total is not None and total < at_least):
        yield None
        return
    from esctl.cli import render

    with render.progress(total, description, unit) as advance:
        yield advance


def _as_dicts(items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        yield item.to_dict() if hasattr(item, "to_dict") else item


def write_ndjson(items: Iterable[Any], encode: Callable[[Any], bytes] = codec.dumps_line) -> None:
    """Write one JSON object per line (`encode` makes the line, newline included)."""
    write = sys.stdout.buffer.write
    for item in items:
        write(encode(item))
    sys.stdout.buffer.flush()


def write_json_array(items: Iterable[Any]) -> None:
    out = sys.stdout.buffer
    out.write(b"[")
    separator = b"\n"
    for item in items:
        out.write(separator + codec.dumps(item))
        separator = b",\n"
    out.write(b"]\n" if separator == b"\n" else b"\n]\n")
    out.flush()


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
