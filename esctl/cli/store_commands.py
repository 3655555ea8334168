"""Commands over the store itself: init, append, import, read, export, streams, info."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from esctl.cli import output
from esctl.cli.app import OutputOption, app, open_store, output_for
from esctl.cli.params import json_object
from esctl.errors import InvalidInput


@app.command()
def init(ctx: typer.Context, output_format: OutputOption = None) -> None:
    """Create the event store if it does not exist (idempotent)."""
    from esctl.store.schema import SCHEMA_VERSION

    with open_store(ctx, create=True) as store:
        doc = {
            "path": os.path.abspath(store.path),
            "schema_version": SCHEMA_VERSION,
            "created": store.created,
        }
    out = output_for(ctx, output_format)

    def show(d: dict) -> None:
        from esctl.cli import render

        render.mapping(d, "store created" if d["created"] else "store exists")

    out.document(doc, show)


@app.command()
def append(
    ctx: typer.Context,
    stream: Annotated[str, typer.Argument(help="Stream name, e.g. order-42 (category: order).")],
    event_type: Annotated[str, typer.Argument(metavar="TYPE", help="Event type, e.g. OrderCreated.")],
    data: Annotated[
        Optional[str], typer.Argument(help="A JSON object, - for stdin, or @path.  [default: {}]")
    ] = None,
    expected_version: Annotated[
        str,
        typer.Option(
            "--expected-version", "-e", help="any, no-stream, exists, or the stream's exact version N."
        ),
    ] = "any",
    event_id: Annotated[
        Optional[str], typer.Option("--id", help="Event id (a UUID); a repeat is an idempotent no-op.")
    ] = None,
    metadata: Annotated[
        Optional[str], typer.Option("--metadata", "-m", help="Metadata: a JSON object or @path.")
    ] = None,
    correlation_id: Annotated[
        Optional[str], typer.Option("--correlation-id", help="Stored in metadata.")
    ] = None,
    causation_id: Annotated[Optional[str], typer.Option("--causation-id", help="Stored in metadata.")] = None,
    output_format: OutputOption = None,
) -> None:
    """Append one event to a stream, with an optimistic concurrency check."""
    from esctl.events import NewEvent, check_stream, check_type, metadata_id, parse_expected_version
    from esctl.ids import canonical_id

    check_stream(stream)
    check_type(event_type)
    expected = parse_expected_version(expected_version, "--expected-version: ")
    body = json_object(data if data is not None else "{}", "DATA")
    meta = json_object(metadata, "--metadata")
    # The rule exec follows: an id given twice must be the same id.
    for what, given, key in (
        ("correlation id", correlation_id, "correlation_id"),
        ("causation id", causation_id, "causation_id"),
    ):
        if given is not None:
            meta[key] = metadata_id(what, given, key, meta)
    new = NewEvent(
        stream, event_type, body, meta, canonical_id(event_id, "--id: ") if event_id is not None else None
    )
    with open_store(ctx, create=True) as store:
        result = store.append(stream, [new], expected)
    if result.duplicates:
        output.note(f"event {new.id} is already stored: nothing written")
    out = output_for(ctx, output_format)

    def show(ev) -> None:  # type: ignore[no-untyped-def]
        from esctl.cli import render

        render.event(ev, "already stored" if result.duplicates else "appended")

    out.document(result.events[0], show)


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        str, typer.Argument(metavar="[FILE|-]", help="NDJSON envelopes; - or nothing for stdin.")
    ] = "-",
    batch_size: Annotated[
        Optional[int],
        typer.Option("--batch-size", min=1, help="Commit every N lines instead of all-or-nothing."),
    ] = None,
    output_format: OutputOption = None,
) -> None:
    """Import NDJSON events (as written by export). Atomic unless --batch-size is given."""
    from esctl.ndjson import iter_lines, read_envelopes

    if file == "-":
        source, total = sys.stdin.buffer, None
    else:
        try:
            source = open(file, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise InvalidInput(f"cannot read {file}: {exc.strerror}") from None
        total = os.fstat(source.fileno()).st_size  # 0 for a pipe or a device
    try:
        with open_store(ctx, create=True) as store:
            if not output.stderr_is_terminal():
                summary = store.import_events(read_envelopes(source), batch_size=batch_size)
            elif total:  # a file: progress by bytes read, with an ETA
                from esctl.cli import render

                with render.progress(total, "importing", unit="bytes") as advance:
                    summary = store.import_events(
                        read_envelopes(iter_lines(source, advance)), batch_size=batch_size
                    )
            else:  # a pipe: no size to go by, so count events
                from esctl.cli import render

                with render.progress(None, "importing") as advance:
                    summary = store.import_events(
                        read_envelopes(source), batch_size=batch_size, progress=advance
                    )
    finally:
        if source is not sys.stdin.buffer:
            source.close()

    def show(d: dict) -> None:
        from esctl.cli import render

        render.mapping(d, "imported")

    output_for(ctx, output_format).document(summary.to_dict(), show)


@app.command()
def read(
    ctx: typer.Context,
    stream: Annotated[Optional[str], typer.Argument(help="The stream to read (or --all).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Read every stream in position order.")] = False,
    from_version: Annotated[int, typer.Option("--from-version", min=1, help="First version.")] = 1,
    to_version: Annotated[Optional[int], typer.Option("--to-version", min=1, help="Last version.")] = None,
    backwards: Annotated[bool, typer.Option("--backwards", help="Newest first.")] = False,
    from_position: Annotated[
        int, typer.Option("--from-position", min=1, help="With --all: first position.")
    ] = 1,
    category: Annotated[
        Optional[str], typer.Option("--category", help="With --all: only this category.")
    ] = None,
    event_type: Annotated[
        Optional[list[str]], typer.Option("--type", help="With --all: only this event type (repeatable).")
    ] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=0, help="At most N events.")] = None,
    output_format: OutputOption = None,
) -> None:
    """Read one stream, or every event with --all."""
    if all_ == (stream is not None):
        raise InvalidInput("give a STREAM or --all (not both)")
    if all_ and (from_version != 1 or to_version is not None or backwards):
        raise InvalidInput("--from-version, --to-version and --backwards apply to one stream, not --all")
    if not all_ and (from_position != 1 or category is not None or event_type):
        raise InvalidInput("--from-position, --category and --type apply to --all")
    out = output_for(ctx, output_format)
    with open_store(ctx) as store:
        if all_:
            events = store.read_all(
                from_position=from_position, category=category, types=event_type or (), limit=limit
            )
            title = "all events"
        else:
            events = store.read_stream(
                stream, from_version=from_version, to_version=to_version, backwards=backwards, limit=limit
            )
            title = stream

        def show(rows) -> None:  # type: ignore[no-untyped-def]
            from esctl.cli import render

            render.events(rows, title)

        out.records(events, show)


@app.command()
def export(
    ctx: typer.Context,
    category: Annotated[Optional[str], typer.Option("--category", help="Only this category.")] = None,
    from_position: Annotated[int, typer.Option("--from-position", min=1, help="First position.")] = 1,
) -> None:
    """Write events as NDJSON envelopes in position order (always NDJSON), for import."""
    from esctl import codec
    from esctl.cli.output import write_ndjson

    def encode(row: tuple) -> bytes:
        s, v, p, t, data, metadata, i, r = row
        return codec.dumps(
            {
                "stream": s,
                "version": v,
                "position": p,
                "type": t,
                "data": codec.raw(data),
                "metadata": codec.raw(metadata),
                "id": i,
                "recorded_at": r,
            }
        )

    with open_store(ctx) as store:
        write_ndjson(store.read_all(from_position=from_position, category=category, raw=True), encode)


@app.command()
def streams(
    ctx: typer.Context,
    category: Annotated[Optional[str], typer.Option("--category", help="Only this category.")] = None,
    output_format: OutputOption = None,
) -> None:
    """List streams: version, first and last recorded_at, last position."""
    out = output_for(ctx, output_format)
    with open_store(ctx) as store:

        def show(rows) -> None:  # type: ignore[no-untyped-def]
            from esctl.cli import render

            render.table(rows, title="streams", styles={"stream": "cyan"}, empty="no streams")

        out.records(store.streams(category=category), show)


@app.command()
def info(
    ctx: typer.Context,
    stream: Annotated[Optional[str], typer.Argument(help="One stream instead of the whole store.")] = None,
    output_format: OutputOption = None,
) -> None:
    """Describe the store (sizes, counts by category and type) or one stream."""
    out = output_for(ctx, output_format)
    with open_store(ctx) as store:
        doc = store.stream_info(stream) if stream is not None else store.info()

    def show(d: dict) -> None:
        from esctl.cli import render

        render.mapping(d, stream or d["path"])

    out.document(doc, show)
