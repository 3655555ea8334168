"""Commands over the store itself: init, append, import, read, export, streams, info,
copy, migrate."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Annotated, Optional, TypeVar

import typer

from esctl.cli import completion, output
from esctl.cli.app import OutputOption, app
from esctl.cli.params import json_object
from esctl.cli.session import session
from esctl.errors import InvalidInput

T = TypeVar("T")


@app.command()
def init(ctx: typer.Context, output_format: OutputOption = None) -> None:
    """Create the event store if it does not exist (idempotent).

    Prints the store's path, its schema version and whether this call created it.
    The write commands (append, import, exec) create a missing store too.

    Examples:
      esctl init
      esctl --db /tmp/orders.db init -o json
    """
    with session(ctx).store(create=True, announce=False) as store:
        doc = {
            "path": store.info()["path"],
            "schema_version": store.schema_version,
            "created": store.created,
        }
    session(ctx).output(output_format).document(
        doc, "mapping", title="store created" if doc["created"] else "store exists"
    )


@app.command()
def append(
    ctx: typer.Context,
    stream: Annotated[
        str,
        typer.Argument(
            help="Stream name, e.g. order-42 (category: order).", autocompletion=completion.streams
        ),
    ],
    event_type: Annotated[str, typer.Argument(metavar="TYPE", help="Event type, e.g. OrderCreated.")],
    data: Annotated[Optional[str], typer.Argument(help="A JSON object, - for stdin, or @path.")] = "{}",
    expected_version: Annotated[
        str,
        typer.Option(
            "--expected-version",
            "-e",
            metavar="VERSION",
            help="any, no-stream, exists, or the stream's exact version N.",
        ),
    ] = "any",
    event_id: Annotated[
        Optional[str], typer.Option("--id", metavar="UUID", help="Event id; a repeat is a no-op.")
    ] = None,
    metadata: Annotated[
        Optional[str],
        typer.Option("--metadata", "-m", metavar="JSON", help="Metadata: a JSON object or @path."),
    ] = None,
    correlation_id: Annotated[
        Optional[str], typer.Option("--correlation-id", metavar="ID", help="Stored in metadata.")
    ] = None,
    causation_id: Annotated[
        Optional[str], typer.Option("--causation-id", metavar="ID", help="Stored in metadata.")
    ] = None,
    output_format: OutputOption = None,
) -> None:
    """Append one event to a stream, checking the expected version.

    With --expected-version the append is refused (exit 3, nothing written) unless
    the stream is at that version: any (no check), no-stream, exists, or N.

    Examples:
      esctl append order-7 OrderCreated '{"customer_id": "c-1"}' -e no-stream
      esctl append order-7 OrderConfirmed -e 1 --correlation-id req-42
      echo '{"tracking_number": "T-7"}' | esctl append order-7 OrderShipped -
    """
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
    with session(ctx).store(create=True) as store:
        result = store.append(stream, [new], expected)
    if result.duplicates:
        output.note(f"event {new.id} is already stored: nothing written")
    session(ctx).output(output_format).document(
        result.events[0], "event", title="already stored" if result.duplicates else "appended"
    )


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        str, typer.Argument(metavar="FILE|-", help="NDJSON envelopes; - or nothing for stdin.")
    ] = "-",
    batch_size: Annotated[
        Optional[int],
        typer.Option("--batch-size", min=1, help="Commit every N lines, not all at once."),
    ] = None,
    output_format: OutputOption = None,
) -> None:
    """Import NDJSON events as export writes them, all or nothing.

    Only stream and type are required on a line. An event whose id is stored
    already, with the same content, is skipped: an interrupted --batch-size import
    can be run again. Prints the counts and the positions written.

    A store has one writer at a time: while an import runs in one transaction,
    other writers wait (60 s at most, then fail as busy). --batch-size commits
    every N lines and lets them in between batches.

    Examples:
      esctl import sample_streams/orders/events.ndjson
      esctl export | esctl --db copy.db import --batch-size 10000
    """
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
        with session(ctx).store(create=True) as store:
            if total:  # a file: progress by bytes read, with an ETA
                if batch_size is None and total >= LONG_HOLD_BYTES:
                    output.note(_long_hold(f"{file} ({total / 2**20:,.0f} MiB)"))
                with output.progress(total, "importing", unit="bytes") as advance:
                    summary = store.import_events(
                        read_envelopes(iter_lines(source, advance)), batch_size=batch_size
                    )
            else:  # a pipe: no size to go by, so count events
                events = read_envelopes(source)
                if batch_size is None:
                    events = _noting_long_hold(events)
                with output.progress(None, "importing") as advance:
                    summary = store.import_events(events, batch_size=batch_size, progress=advance)
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    session(ctx).output(output_format).document(summary.to_dict(), "mapping", title="imported")


# Past these, an import in one transaction holds the store for seconds (about
# 40,000 events a second): other writers should hear why they wait.
LONG_HOLD_BYTES = 64 * 2**20
LONG_HOLD_EVENTS = 200_000


def _long_hold(what: str) -> str:
    return (
        f"importing {what} in one transaction: other writers wait until it commits;"
        " --batch-size N lets them in between batches"
    )


def _noting_long_hold(events: Iterator[T]) -> Iterator[T]:
    """The events, with a note on stderr once a piped import reaches LONG_HOLD_EVENTS."""
    for count, event in enumerate(events, 1):
        if count == LONG_HOLD_EVENTS:
            output.note(_long_hold(f"{LONG_HOLD_EVENTS:,} events or more"))
        yield event


@app.command()
def read(
    ctx: typer.Context,
    stream: Annotated[
        Optional[str],
        typer.Argument(help="The stream to read (or --all).", autocompletion=completion.streams),
    ] = None,
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
        Optional[list[str]],
        typer.Option("--type", metavar="TYPE", help="With --all: only this type (repeatable)."),
    ] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=0, help="At most N events.")] = None,
    output_format: OutputOption = None,
) -> None:
    """Read a stream's events, or every event with --all.

    A table on a terminal; piped, NDJSON envelopes, one event per line.

    Examples:
      esctl read order-1
      esctl read order-1 --from-version 2 --limit 1
      esctl read --all --type OrderShipped | jq .stream
    """
    if all_ == (stream is not None):
        raise InvalidInput("give a STREAM or --all (not both)")
    if all_ and (from_version != 1 or to_version is not None or backwards):
        raise InvalidInput("--from-version, --to-version and --backwards apply to one stream, not --all")
    if not all_ and (from_position != 1 or category is not None or event_type):
        raise InvalidInput("--from-position, --category and --type apply to --all")
    out = session(ctx).output(output_format, listing=True)
    # NDJSON is written from the stored rows, as export writes them: decoding each
    # event into objects and encoding it again would cost half the speed.
    raw = out.is_ndjson
    with session(ctx).store() as store:
        if all_:
            events = store.read_all(
                from_position=from_position, category=category, types=event_type or (), limit=limit, raw=raw
            )
            title = "all events"
        else:
            events = store.read_stream(
                stream,
                from_version=from_version,
                to_version=to_version,
                backwards=backwards,
                limit=limit,
                raw=raw,
            )
            title = stream
        if raw:
            from esctl.ndjson import envelope_line

            output.write_ndjson(events, envelope_line)
        else:
            out.records(events, "events", title, one_stream=not all_)


@app.command()
def export(
    ctx: typer.Context,
    category: Annotated[Optional[str], typer.Option("--category", help="Only this category.")] = None,
    from_position: Annotated[int, typer.Option("--from-position", min=1, help="First position.")] = 1,
) -> None:
    """Write events as NDJSON in position order, for import.

    Always NDJSON, on a terminal too. Each line carries version, position and
    recorded_at: import keeps recorded_at and gives the event a new position.

    Examples:
      esctl export > backup.ndjson
      esctl export --category order | esctl --db orders.db import
    """
    from esctl.cli.output import write_ndjson
    from esctl.ndjson import envelope_line

    with session(ctx).store() as store:
        write_ndjson(store.read_all(from_position=from_position, category=category, raw=True), envelope_line)


@app.command()
def streams(
    ctx: typer.Context,
    category: Annotated[Optional[str], typer.Option("--category", help="Only this category.")] = None,
    limit: Annotated[
        Optional[int], typer.Option("--limit", min=0, help="At most N streams (the first in name order).")
    ] = None,
    output_format: OutputOption = None,
) -> None:
    """List the streams: version, first and last recorded_at.

    One row per stream, in natural name order (account-2 before account-10), with its category and last position.

    Examples:
      esctl streams
      esctl streams --category order | jq -r .stream
    """
    out = session(ctx).output(output_format, listing=True)
    with session(ctx).store() as store:
        out.records(store.streams(category=category, limit=limit), "streams")


@app.command()
def info(
    ctx: typer.Context,
    stream: Annotated[
        Optional[str],
        typer.Argument(help="One stream instead of the whole store.", autocompletion=completion.streams),
    ] = None,
    output_format: OutputOption = None,
) -> None:
    """Describe the store, or one stream.

    The store: its path, size, schema version, and event counts by category and
    type. A stream: its version, counts by type, and first and last events.

    Examples:
      esctl info
      esctl info order-1
      esctl info | jq .types
    """
    with session(ctx).store() as store:
        doc = store.stream_info(stream) if stream is not None else store.info()
    session(ctx).output(output_format).document(doc, "mapping", title=stream or doc["path"])


@app.command()
def copy(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The store to copy: a path or a URL.")],
    destination: Annotated[str, typer.Argument(help="Where to: a path or URL; created when missing.")],
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Events per transaction.")] = 10_000,
    output_format: OutputOption = None,
) -> None:
    """Copy a store to another, between backends or not, losslessly.

    Positions, versions, ids, timestamps, metadata and the JSON of each event arrive
    as they are: both stores then export the same bytes. Each batch commits on its
    own; run the same copy again after an interruption and it continues where it
    stopped. A destination that holds other events is refused.

    Examples:
      esctl copy events.db postgresql://localhost/esctl
      esctl copy postgresql://localhost/esctl backup.db -o json
    """
    from esctl.store.copying import copy_events

    with (
        session(ctx).store(url=source) as origin,
        session(ctx).store(url=destination, create=True) as target,
    ):
        to_go = origin.head_position() - target.head_position()
        with output.progress(max(to_go, 0), "copying", at_least=50_000) as advance:
            doc = copy_events(origin, target, batch_size=batch_size, progress=advance)
    session(ctx).output(output_format).document(doc, "mapping", title="copied")


@app.command()
def migrate(
    ctx: typer.Context,
    no_backup: Annotated[
        bool, typer.Option("--no-backup", help="Upgrade without copying the store first.")
    ] = False,
    output_format: OutputOption = None,
) -> None:
    """Upgrade the store to this esctl's schema, in one transaction.

    A store made by an earlier esctl reads as before but refuses writes until it
    is upgraded. The store is first copied to STORE.schemaN.bak (N its schema now)
    unless --no-backup; an existing copy there is never overwritten. An upgrade that
    fails or is interrupted leaves the store as it was. On a store at this schema it
    does nothing and says so.

    Examples:
      esctl migrate
      esctl --db old.db migrate --no-backup -o json
    """
    with session(ctx).store() as store:
        doc = store.migrate(backup=not no_backup)
    title = (
        f"upgraded to schema {doc['to_schema']}"
        if doc["steps"]
        else f"up to date (schema {doc['to_schema']})"
    )
    session(ctx).output(output_format).document(doc, "migration", title=title)
