"""Commands that react to events as they come: follow."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from esctl.cli import completion, output
from esctl.cli.app import OutputOption, app
from esctl.cli.output import OutputFormat
from esctl.cli.session import session
from esctl.cli.signals import sigterm_as_interrupt
from esctl.errors import InvalidInput


@app.command()
def follow(
    ctx: typer.Context,
    stream: Annotated[
        Optional[str],
        typer.Argument(help="The stream to follow (or --all).", autocompletion=completion.streams),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Follow every stream.")] = False,
    category: Annotated[
        Optional[list[str]],
        typer.Option("--category", metavar="CATEGORY", help="Only this category (repeatable)."),
    ] = None,
    event_type: Annotated[
        Optional[list[str]], typer.Option("--type", metavar="TYPE", help="Only this type (repeatable).")
    ] = None,
    from_position: Annotated[
        Optional[int],
        typer.Option("--from-position", min=1, metavar="POSITION", help="The first position to print."),
    ] = None,
    from_start: Annotated[bool, typer.Option("--from-start", help="Start at the first event.")] = False,
    output_format: OutputOption = None,
) -> None:
    """Print events as they are appended, until Ctrl-C.

    From the end of the log unless --from-position or --from-start says where;
    --category takes --all (a stream has one category). A
    live view on a terminal (a status line with position, rate and lag); piped,
    NDJSON envelopes, one line per event as soon as it is committed. Ctrl-C stops
    it (exit 130), SIGTERM too (exit 143).

    Examples:
      esctl follow --all
      esctl follow order-1 --from-start
      esctl follow --all --category order --type OrderShipped | jq -r .stream
    """
    from esctl.subscriptions import EventFilter
    from esctl.subscriptions import follow as follow_events

    if all_ == (stream is not None):
        raise InvalidInput("give a STREAM or --all (not both)")
    if stream is not None and category:
        raise InvalidInput("--category applies to --all (a stream has one category)")
    if from_start and from_position is not None:
        raise InvalidInput("give --from-position or --from-start, not both")
    out = session(ctx).output(output_format)
    if out.format is OutputFormat.json:
        raise InvalidInput("follow never ends, so it prints NDJSON (one event per line), not -o json")
    wanted = EventFilter.of([stream] if stream else (), category or (), event_type or ())
    after = 0 if from_start else from_position - 1 if from_position is not None else None
    with session(ctx).store() as store, sigterm_as_interrupt() as stopped:
        try:
            # From the head as it is now, before the note says it follows: an event
            # appended once the note is out is printed.
            start = store.head_position() if after is None else after
            batches = follow_events(store, wanted, after=start)
            output.note(f"following {wanted.describe()} in {store.location}: Ctrl-C stops")
            if out.is_table:
                output.draw("follow_events", batches)
            else:
                _write_ndjson(batches)
        except KeyboardInterrupt:
            raise typer.Exit(stopped.exit_code) from None


def _write_ndjson(batches) -> None:  # type: ignore[no-untyped-def]
    from esctl.ndjson import envelope_line

    out = sys.stdout.buffer
    for batch in batches:
        if batch.rows:
            out.write(b"".join(map(envelope_line, batch.rows)))
            out.flush()  # a reader down the pipe sees each event when it is committed
