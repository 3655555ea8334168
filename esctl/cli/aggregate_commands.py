"""Aggregate commands: replay, diff, versions, exec, snapshot, upcast (issue 3).

Each command finds the stream's aggregate in the model (by category) or falls back
to the default fold, and leaves the work to esctl.aggregates."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from esctl.cli import output
from esctl.cli.app import OutputOption, app, load_model, open_store, output_for
from esctl.cli.params import json_object
from esctl.errors import CommandRejected, InvalidInput

if TYPE_CHECKING:
    from esctl.aggregates import Replayer, Step
    from esctl.store import EventStore

StrictOption = Annotated[
    bool, typer.Option("--strict", help="An event type the aggregate has no handler for is an error.")
]
NoSnapshotsOption = Annotated[
    bool, typer.Option("--no-snapshots", help="Replay from version 1, ignoring (and writing no) snapshots.")
]


def _replayer(
    ctx: typer.Context, store: EventStore, stream: str, *, strict: bool = False, snapshots: bool = True
) -> Replayer:
    from esctl.aggregates import Replayer, Upcasters, aggregate_for
    from esctl.aggregates.targets import stream_head
    from esctl.events import category_of

    module = load_model(ctx)
    aggregate = aggregate_for(module, stream)
    stream_head(store, stream)  # a missing stream is the news, not which fold would have read it
    if module is not None and aggregate is None:
        output.note(f"no aggregate for category {category_of(stream)!r} in the model: using the default fold")
    return Replayer(
        store, aggregate, upcasters=Upcasters.from_module(module), strict=strict, snapshots=snapshots
    )


def _report(replayer: Replayer, stream: str) -> None:
    """Diagnostics after a replay: skipped event types, snapshot trouble."""
    for event_type, skipped in replayer.skipped.items():
        events = "event" if skipped.count == 1 else "events"
        output.note(
            f"{stream}: skipped {skipped.count} {event_type} {events} (first at v{skipped.first_version}):"
            f" {replayer.name} has no handler for it; --strict refuses"
        )
    for message in replayer.notes:
        output.warn(message)


@app.command()
def replay(
    ctx: typer.Context,
    stream: Annotated[str, typer.Argument(help="The stream to rebuild, e.g. order-1.")],
    to_version: Annotated[
        Optional[int], typer.Option("--to-version", min=0, help="Stop at this version (time travel).")
    ] = None,
    as_of: Annotated[
        Optional[str],
        typer.Option(
            "--as-of", metavar="TIMESTAMP", help="The state as it was at this instant (recorded_at)."
        ),
    ] = None,
    until_type: Annotated[
        Optional[str],
        typer.Option("--until-type", metavar="TYPE", help="Stop before the first event of this type."),
    ] = None,
    steps: Annotated[
        bool, typer.Option("--steps", help="Every event with the state change it caused.")
    ] = False,
    step: Annotated[
        bool, typer.Option("--step", help="Step through the events one key press at a time (a terminal).")
    ] = False,
    strict: StrictOption = False,
    no_snapshots: NoSnapshotsOption = False,
    output_format: OutputOption = None,
) -> None:
    """Rebuild a stream's state by folding its events (time travel: version, instant, type).

    Without a model, or with no aggregate for the stream's category, the default fold
    merges each event's data into {} (objects key by key; null removes a key)."""
    if steps and step:
        raise InvalidInput("give --steps or --step, not both")
    if step and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise InvalidInput("--step needs a terminal; use --steps for a listing")
    out = output_for(ctx, output_format)
    with open_store(ctx) as store:
        replayer = _replayer(ctx, store, stream, strict=strict, snapshots=not no_snapshots)
        target = replayer.target(
            stream, to_version=to_version, as_of=as_of, until_type=until_type, note=output.note
        )
        if step:
            _step_through(replayer, stream, target)
        elif steps:

            def show_steps(rows: Any) -> None:
                from esctl.cli import render

                render.replay_steps(rows, f"{stream} · {replayer.name}")

            out.records(replayer.steps(stream, target), show_steps)
        else:
            result = replayer.replay(stream, target)

            def show(doc: dict[str, Any]) -> None:
                from esctl.cli import render

                source = f"from snapshot v{result.from_snapshot}" if result.from_snapshot else "from v1"
                render.aggregate_state(doc, f"{replayer.name} · {source}")

            out.document(result.to_dict(), show)
        _report(replayer, stream)


@app.command()
def diff(
    ctx: typer.Context,
    stream: Annotated[str, typer.Argument(help="The stream.")],
    version_a: Annotated[int, typer.Argument(metavar="A", min=0, help="From this version (0: before any).")],
    version_b: Annotated[int, typer.Argument(metavar="B", min=0, help="To this version.")],
    strict: StrictOption = False,
    no_snapshots: NoSnapshotsOption = False,
    output_format: OutputOption = None,
) -> None:
    """The state change between versions A and B of a stream."""
    out = output_for(ctx, output_format)
    with open_store(ctx) as store:
        replayer = _replayer(ctx, store, stream, strict=strict, snapshots=not no_snapshots)
        changes = replayer.changes_between(stream, version_a, version_b)
    doc = {"stream": stream, "from": version_a, "to": version_b, "changes": changes}

    def show(d: dict[str, Any]) -> None:
        from esctl.cli import render

        render.changes(d["changes"], f"{stream} · v{version_a} → v{version_b} · {replayer.name}")

    out.document(doc, show)
    _report(replayer, stream)


@app.command()
def versions(
    ctx: typer.Context,
    stream: Annotated[str, typer.Argument(help="The stream.")],
    strict: StrictOption = False,
    output_format: OutputOption = None,
) -> None:
    """The version history of a stream: each event and the state paths it changed."""
    from esctl.aggregates import changed_paths

    out = output_for(ctx, output_format)
    with open_store(ctx) as store:
        replayer = _replayer(ctx, store, stream, strict=strict)

        def rows() -> Any:
            for s in replayer.steps(stream, states=False):
                e = s.event
                yield {
                    "version": e.version,
                    "position": e.position,
                    "type": e.type,
                    "recorded_at": e.recorded_at,
                    "changed": changed_paths(s.changes),
                }

        def show(items: Any) -> None:
            from esctl.cli import render

            render.versions(items, f"{stream} · {replayer.name}")

        out.records(rows(), show)
        _report(replayer, stream)


@app.command("exec")
def exec_(
    ctx: typer.Context,
    stream: Annotated[str, typer.Argument(help="The aggregate's stream, e.g. order-42.")],
    command_name: Annotated[str, typer.Argument(metavar="COMMAND", help="A command of its aggregate.")],
    args: Annotated[
        Optional[str], typer.Argument(metavar="[ARGS_JSON]", help="A JSON object, - for stdin, or @path.")
    ] = None,
    retries: Annotated[
        int, typer.Option("--retries", min=0, help="Reload and retry this often on a concurrent write.")
    ] = 3,
    correlation_id: Annotated[
        Optional[str], typer.Option("--correlation-id", help="Stored in metadata.  [default: a new id]")
    ] = None,
    command_id: Annotated[
        Optional[str],
        typer.Option("--command-id", help="The command's id: the events' causation_id.  [default: a new id]"),
    ] = None,
    metadata: Annotated[
        Optional[str], typer.Option("--metadata", "-m", help="More metadata: a JSON object or @path.")
    ] = None,
    no_snapshots: NoSnapshotsOption = False,
    output_format: OutputOption = None,
) -> None:
    """Run a command against an aggregate and append the events it decides on.

    Exit 6 when the command is rejected (nothing is written), 3 when other writers
    keep winning after --retries reloads."""
    from esctl.aggregates import ModelError, Upcasters, aggregate_for, execute
    from esctl.events import category_of, check_stream

    check_stream(stream)
    body = json_object(args if args is not None else "{}", "ARGS_JSON")
    meta = json_object(metadata, "--metadata")
    module = load_model(ctx, required=True)
    aggregate = aggregate_for(module, stream)
    if aggregate is None:
        raise ModelError(f"the model has no aggregate for category {category_of(stream)!r}")

    def conflict(exc: Exception, attempt: int) -> None:
        if attempt <= retries:
            output.note(f"attempt {attempt}: {exc}; reloading and retrying")

    with open_store(ctx, create=True) as store:
        try:
            executed = execute(
                store,
                stream,
                aggregate,
                command_name,
                body,
                upcasters=Upcasters.from_module(module),
                retries=retries,
                correlation_id=correlation_id,
                command_id=command_id,
                metadata=meta,
                snapshots=not no_snapshots,
                on_conflict=conflict,
            )
        except CommandRejected as exc:
            raise CommandRejected(f"{command_name} rejected: {exc}") from None
    if not executed.events:
        output.note(f"{command_name} decided on no events: nothing written")

    def show(rows: Any) -> None:
        from esctl.cli import render

        render.events(rows, f"{command_name} on {stream} → v{executed.version}")

    output_for(ctx, output_format).records(executed.events, show)


@app.command()
def snapshot(
    ctx: typer.Context,
    stream: Annotated[str, typer.Argument(help="The stream.")],
    to_version: Annotated[
        Optional[int], typer.Option("--to-version", min=1, help="Snapshot this version, not the head.")
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="List the stream's snapshots (valid: made by the current code).")
    ] = False,
    output_format: OutputOption = None,
) -> None:
    """Store a snapshot of a stream's state, so replays start from it."""
    out = output_for(ctx, output_format)
    with open_store(ctx) as store:
        replayer = _replayer(ctx, store, stream)
        if list_:
            rows = [s.to_dict(replayer.fingerprint) for s in replayer.snapshots.list(stream)]

            def show_list(items: Any) -> None:
                from esctl.cli import render

                render.table(items, title=f"snapshots of {stream}", empty="no snapshots")

            out.records(rows, show_list)
            return
        saved = replayer.snapshot(stream, to_version)
        _report(replayer, stream)

    def show(doc: dict[str, Any]) -> None:
        from esctl.cli import render

        render.mapping(doc, "snapshot written")

    out.document(saved.to_dict(), show)


@app.command()
def upcast(
    ctx: typer.Context,
    event_type: Annotated[str, typer.Argument(metavar="TYPE", help="The event type.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show stored events before and after upcasting.")
    ] = False,
    limit: Annotated[Optional[int], typer.Option("--limit", min=0, help="At most N events.")] = None,
    output_format: OutputOption = None,
) -> None:
    """Preview the model's upcasters on stored events of TYPE (--dry-run).

    Upcasters apply when events are read; they never rewrite the store. An event an
    upcaster fails on is reported on stderr and the preview goes on; exit 2 at the
    end if any failed."""
    from esctl.aggregates import ModelError, Upcasters, diff, to_plain
    from esctl.aggregates.upcasting import SCHEMA_KEY
    from esctl.events import check_type

    check_type(event_type)
    if not dry_run:
        raise InvalidInput(
            "upcasters apply when events are read and never rewrite stored events:"
            " use --dry-run to see stored events before and after"
        )
    upcasters = Upcasters.from_module(load_model(ctx, required=True))
    if event_type not in upcasters.types:
        output.note(f"the model has no upcaster for {event_type!r}: events are read as stored")
    out = output_for(ctx, output_format)
    failed = seen = 0
    with open_store(ctx) as store:

        def rows() -> Any:
            nonlocal failed, seen
            for e in store.read_all(types=[event_type], limit=limit):
                seen += 1
                before = to_plain(e.data)
                try:
                    data, metadata = upcasters.upcast(
                        e.type, e.data, e.metadata, f"{e.stream} v{e.version}: "
                    )
                    after = to_plain(data)
                except ModelError as exc:  # a dry run lists every failure, then fails
                    failed += 1
                    output.error(str(exc))
                    continue
                yield {
                    "stream": e.stream,
                    "version": e.version,
                    "position": e.position,
                    "type": e.type,
                    "from_schema": e.metadata.get(SCHEMA_KEY, 1),
                    "to_schema": metadata.get(SCHEMA_KEY, 1),
                    "before": before,
                    "after": after,
                    "changes": diff(before, after),
                }

        def show(items: Any) -> None:
            from esctl.cli import render

            render.upcast_preview(items, f"upcast {event_type} (dry run: nothing is written)")

        out.records(rows(), show)
    if failed:
        raise ModelError(f"{failed} of {seen} {event_type} events could not be upcast")


# --- the interactive step-through ------------------------------------------------

_NEXT = {b" ", b"\r", b"\n", b"n", b"j", b"l", b"\x1b[C", b"\x1b[B", b"\x1bOC", b"\x1bOB"}
_BACK = {b"b", b"p", b"k", b"h", b"\x1b[D", b"\x1b[A", b"\x1bOD", b"\x1bOA"}
_QUIT = {b"q", b"Q", b"\x1b", b"\x04"}  # Ctrl-C arrives as KeyboardInterrupt (ISIG stays on)
_FIRST = {b"g", b"\x1b[H", b"\x1bOH"}
_LAST = {b"G", b"\x1b[F", b"\x1bOF"}


def _keys(buffer: bytes) -> list[bytes]:
    """Split what one read returned into key presses: keys held down or pasted
    arrive together ("nn", two arrows). An escape sequence is one key: ESC [ params
    final (CSI), ESC O x (SS3); a lone ESC is the Escape key."""
    keys = []
    i = 0
    while i < len(buffer):
        if buffer[i] != 0x1B or i + 1 == len(buffer):
            keys.append(buffer[i : i + 1])
            i += 1
        elif buffer[i + 1] == ord("["):
            end = i + 2
            while end < len(buffer) and not 0x40 <= buffer[end] <= 0x7E:  # parameter bytes
                end += 1
            keys.append(buffer[i : end + 1])
            i = end + 1
        elif buffer[i + 1] == ord("O") and i + 2 < len(buffer):
            keys.append(buffer[i : i + 3])
            i += 3
        else:  # ESC then another key: Escape, then that key
            keys.append(buffer[i : i + 1])
            i += 1
    return keys


def _step_through(replayer: Replayer, stream: str, target: int) -> None:
    """Apply one event per key press and show what it changed. space/→ next,
    b/← back, g first, G last, q quit."""
    import termios
    import tty

    from esctl.cli import render

    steps = replayer.steps(stream, target)
    taken: list[Step] = []  # steps seen so far, so that going back costs nothing
    initial = replayer.initial_plain()
    index = 0
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        while True:
            shown = taken[index - 1] if index else None
            render.step_screen(stream, replayer.name, index, target, shown, shown.state if shown else initial)
            keys = _keys(os.read(fd, 64))
            if not keys or any(key in _QUIT for key in keys):  # b"": stdin closed
                break
            for key in keys:
                if key in _NEXT or key in _LAST:
                    goal = target if key in _LAST else index + 1
                    while len(taken) < min(goal, target):
                        taken.append(next(steps))
                    index = min(goal, target)
                elif key in _BACK:
                    index = max(0, index - 1)
                elif key in _FIRST:
                    index = 0
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        steps.close()
