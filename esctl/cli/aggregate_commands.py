"""Aggregate commands: replay, diff, versions, exec, snapshot, upcast.

Each command finds the stream's aggregate in the model (by category) or falls back
to the default fold, and leaves the work to esctl.aggregates."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from esctl.cli import completion, output
from esctl.cli.app import OutputOption, app
from esctl.cli.params import json_object
from esctl.cli.session import session
from esctl.errors import CommandRejected, InvalidInput

if TYPE_CHECKING:
    from esctl.aggregates import Replayer
    from esctl.store import EventStore

StrictOption = Annotated[bool, typer.Option("--strict", help="Fail on an event type with no handler.")]
NoSnapshotsOption = Annotated[
    bool, typer.Option("--no-snapshots", help="Ignore snapshots: replay from version 1.")
]


def _replayer(
    ctx: typer.Context, store: EventStore, stream: str, *, strict: bool = False, snapshots: bool = True
) -> Replayer:
    from esctl.aggregates import Replayer, Upcasters, aggregate_for
    from esctl.aggregates.targets import stream_head
    from esctl.events import category_of

    module = session(ctx).model()
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
    stream: Annotated[
        str, typer.Argument(help="The stream to rebuild, e.g. order-1.", autocompletion=completion.streams)
    ],
    to_version: Annotated[
        Optional[int], typer.Option("--to-version", min=0, help="Stop at this version (time travel).")
    ] = None,
    as_of: Annotated[
        Optional[str],
        typer.Option("--as-of", metavar="TIMESTAMP", help="The state at this recorded_at instant."),
    ] = None,
    until_type: Annotated[
        Optional[str],
        typer.Option("--until-type", metavar="TYPE", help="Stop before the first event of this type."),
    ] = None,
    steps: Annotated[bool, typer.Option("--steps", help="List each event and the change it made.")] = False,
    step: Annotated[bool, typer.Option("--step", help="One event per key press, on a terminal.")] = False,
    strict: StrictOption = False,
    no_snapshots: NoSnapshotsOption = False,
    output_format: OutputOption = None,
) -> None:
    """Rebuild a stream's state by folding its events.

    Travel in time with --to-version, --as-of or --until-type. The stream's
    aggregate in the model folds the events; without a model, or with no aggregate
    for the stream's category, the default fold merges each event's data into {}
    (objects key by key; null removes a key).

    Examples:
      esctl replay order-1
      esctl replay order-1 --to-version 2 | jq .state
      esctl --model sample_streams/orders/model.py replay order-1 --steps
    """
    if steps and step:
        raise InvalidInput("give --steps or --step, not both")
    if step and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise InvalidInput("--step needs a terminal; use --steps for a listing")
    out = session(ctx).output(output_format, listing=True)
    with session(ctx).store() as store:
        replayer = _replayer(ctx, store, stream, strict=strict, snapshots=not no_snapshots)
        target = replayer.target(
            stream, to_version=to_version, as_of=as_of, until_type=until_type, note=output.note
        )
        if step:
            from esctl.cli.step import step_through

            step_through(replayer, stream, target)
        elif steps:
            out.records(replayer.steps(stream, target), "replay_steps", f"{stream} · {replayer.name}")
        else:
            result = replayer.replay(stream, target)
            source = f"from snapshot v{result.from_snapshot}" if result.from_snapshot else "from v1"
            out.document(result.to_dict(), "aggregate_state", f"{replayer.name} · {source}")
        _report(replayer, stream)


@app.command()
def diff(
    ctx: typer.Context,
    stream: Annotated[str, typer.Argument(help="The stream.", autocompletion=completion.streams)],
    version_a: Annotated[int, typer.Argument(metavar="A", min=0, help="From this version (0: before any).")],
    version_b: Annotated[int, typer.Argument(metavar="B", min=0, help="To this version.")],
    strict: StrictOption = False,
    no_snapshots: NoSnapshotsOption = False,
    output_format: OutputOption = None,
) -> None:
    """The state change between versions A and B of a stream.

    Each change is {path, op, old, new}: op is add, change or remove.

    Examples:
      esctl diff order-1 1 3
      esctl diff order-1 0 1 | jq -c '.changes[]'
    """
    with session(ctx).store() as store:
        replayer = _replayer(ctx, store, stream, strict=strict, snapshots=not no_snapshots)
        changes = replayer.changes_between(stream, version_a, version_b)
    doc = {"stream": stream, "from": version_a, "to": version_b, "changes": changes}
    session(ctx).output(output_format).document(
        doc, "changes", f"{stream} · v{version_a} → v{version_b} · {replayer.name}"
    )
    _report(replayer, stream)


@app.command()
def versions(
    ctx: typer.Context,
    stream: Annotated[str, typer.Argument(help="The stream.", autocompletion=completion.streams)],
    strict: StrictOption = False,
    output_format: OutputOption = None,
) -> None:
    """A stream's history: each event and the state paths it changed.

    Examples:
      esctl versions order-1
      esctl versions order-1 | jq -c '{version, changed}'
    """
    out = session(ctx).output(output_format, listing=True)
    with session(ctx).store() as store:
        replayer = _replayer(ctx, store, stream, strict=strict)
        out.records(replayer.versions(stream), "versions", f"{stream} · {replayer.name}")
        _report(replayer, stream)


@app.command("exec")
def exec_(
    ctx: typer.Context,
    stream: Annotated[
        str, typer.Argument(help="The aggregate's stream, e.g. order-42.", autocompletion=completion.streams)
    ],
    command_name: Annotated[str, typer.Argument(metavar="COMMAND", help="A command of its aggregate.")],
    args: Annotated[
        Optional[str],
        typer.Argument(metavar="ARGS_JSON", help="A JSON object, - for stdin, or @path."),
    ] = "{}",
    retries: Annotated[
        int, typer.Option("--retries", min=0, help="Reload and retry this often on a concurrent write.")
    ] = 3,
    correlation_id: Annotated[
        Optional[str],
        typer.Option("--correlation-id", metavar="ID", show_default="generated", help="Stored in metadata."),
    ] = None,
    command_id: Annotated[
        Optional[str],
        typer.Option(
            "--command-id",
            metavar="ID",
            show_default="generated",
            help="The command's id (causation_id).",
        ),
    ] = None,
    metadata: Annotated[
        Optional[str],
        typer.Option("--metadata", "-m", metavar="JSON", help="More metadata: a JSON object or @path."),
    ] = None,
    no_snapshots: NoSnapshotsOption = False,
    output_format: OutputOption = None,
) -> None:
    """Run an aggregate's command and append the events it decides on.

    The events are appended with the loaded version as the expected version; on a
    concurrent write the aggregate is reloaded and the command retried. Exit 6 when
    the command is rejected (nothing is written), 3 when other writers keep winning
    after --retries reloads.

    Examples:
      export ESCTL_MODEL=sample_streams/bank/model.py
      esctl exec account-dan open '{"owner": "Dan"}'
      esctl exec account-dan withdraw '{"amount": 5}'    # exit 6: no funds
    """
    from esctl.aggregates import ModelError, Upcasters, aggregate_for, execute
    from esctl.events import category_of, check_stream

    check_stream(stream)
    body = json_object(args if args is not None else "{}", "ARGS_JSON")
    meta = json_object(metadata, "--metadata")
    module = session(ctx).model(required=True)
    aggregate = aggregate_for(module, stream)
    if aggregate is None:
        raise ModelError(f"the model has no aggregate for category {category_of(stream)!r}")

    def conflict(exc: Exception, attempt: int) -> None:
        if attempt <= retries:
            output.note(f"attempt {attempt}: {exc}; reloading and retrying")

    with session(ctx).store(create=True) as store:
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
    session(ctx).output(output_format).records(
        executed.events, "events", f"{command_name} on {stream} → v{executed.version}", one_stream=True
    )


@app.command()
def snapshot(
    ctx: typer.Context,
    stream: Annotated[str, typer.Argument(help="The stream.", autocompletion=completion.streams)],
    to_version: Annotated[
        Optional[int], typer.Option("--to-version", min=1, help="Snapshot this version, not the head.")
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the snapshots, valid or not.")] = False,
    output_format: OutputOption = None,
) -> None:
    """Store a snapshot of a stream's state, so replays start from it.

    A snapshot belongs to the code that made it: after the aggregate's code changes
    replays ignore it. --list shows which snapshots are valid.

    Examples:
      esctl snapshot order-1
      esctl snapshot order-1 --list
    """
    out = session(ctx).output(output_format)
    with session(ctx).store() as store:
        replayer = _replayer(ctx, store, stream)
        if list_:
            rows = [s.to_dict(replayer.fingerprint) for s in replayer.snapshots.list(stream)]
            out.records(rows, "snapshots", f"snapshots of {stream}")
            return
        saved = replayer.snapshot(stream, to_version)
        _report(replayer, stream)
    out.document(saved.to_dict(), "mapping", title="snapshot written")


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
    """Preview the model's upcasters on the stored events of a TYPE.

    Upcasters apply when events are read and never rewrite the store, so --dry-run
    is required: it shows each event before and after. An event an upcaster fails
    on is reported on stderr and the preview goes on; if any failed, the exit
    status is 2.

    Examples:
      export ESCTL_MODEL=sample_streams/orders/model.py
      esctl upcast OrderCreated --dry-run
      esctl upcast OrderCreated --dry-run | jq -c '{stream, changes}'
    """
    from esctl.aggregates import ModelError, Upcasters
    from esctl.aggregates.preview import Preview
    from esctl.events import check_type

    check_type(event_type)
    if not dry_run:
        raise InvalidInput(
            "upcasters apply when events are read and never rewrite stored events:"
            " use --dry-run to see stored events before and after"
        )
    upcasters = Upcasters.from_module(session(ctx).model(required=True))
    if event_type not in upcasters.types:
        output.note(f"the model has no upcaster for {event_type!r}: events are read as stored")
    with session(ctx).store() as store:
        preview = Preview(upcasters, store.read_all(types=[event_type], limit=limit), on_failure=_error)
        session(ctx).output(output_format).records(
            preview, "upcast_preview", f"upcast {event_type} (dry run: nothing is written)"
        )
    if preview.failures:  # a dry run lists every failure, then fails
        raise ModelError(f"{len(preview.failures)} of {preview.seen} {event_type} events could not be upcast")


def _error(exc: Exception) -> None:
    output.error(str(exc))
