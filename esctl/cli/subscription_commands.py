"""Commands that react to events as they come: follow, consume, dlq, consumers."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Annotated, Any, Optional

import typer

from esctl.cli import completion, output
from esctl.cli.app import EsctlSubgroup, OutputOption, app
from esctl.cli.helptext import EsctlTyper, HelpLayout
from esctl.cli.output import OutputFormat
from esctl.cli.session import session
from esctl.cli.signals import sigterm_as_interrupt
from esctl.errors import InvalidInput, NotFound

# The filters `follow` and `consume` share.
CategoryOption = Annotated[
    Optional[list[str]],
    typer.Option("--category", metavar="CATEGORY", help="Only this category (repeatable)."),
]
TypeOption = Annotated[
    Optional[list[str]], typer.Option("--type", metavar="TYPE", help="Only this type (repeatable).")
]


def _filter(stream: str | None, all_: bool, category: list[str] | None, event_type: list[str] | None) -> Any:
    """The events a STREAM or --all and the filters name; InvalidInput for a mix
    that means nothing."""
    from esctl.subscriptions import EventFilter

    if all_ == (stream is not None):
        raise InvalidInput("give a STREAM or --all (not both)")
    if stream is not None and category:
        raise InvalidInput("--category applies to --all (a stream has one category)")
    return EventFilter.of([stream] if stream else (), category or (), event_type or ())


@app.command()
def follow(
    ctx: typer.Context,
    stream: Annotated[
        Optional[str],
        typer.Argument(help="The stream to follow (or --all).", autocompletion=completion.streams),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Follow every stream.")] = False,
    category: CategoryOption = None,
    event_type: TypeOption = None,
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
    from esctl.subscriptions import follow as follow_events

    wanted = _filter(stream, all_, category, event_type)
    if from_start and from_position is not None:
        raise InvalidInput("give --from-position or --from-start, not both")
    out = session(ctx).output(output_format)
    if out.format is OutputFormat.json:
        raise InvalidInput("follow never ends, so it prints NDJSON (one event per line), not -o json")
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


# --- consume -----------------------------------------------------------------------------


def _backoff(text: str) -> tuple[float, float]:
    base, _, top = text.partition(":")
    try:
        values = (float(base), float(top) if top else max(60.0, float(base)))
    except ValueError:
        raise InvalidInput(f"--backoff is BASE[:MAX] in seconds, got {text!r}") from None
    return values


@app.command()
def consume(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(help="The consumer group: its checkpoint and parked events.")],
    stream: Annotated[
        Optional[str],
        typer.Argument(help="The stream to consume (or --all).", autocompletion=completion.streams),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Consume every stream.")] = False,
    category: CategoryOption = None,
    event_type: TypeOption = None,
    command: Annotated[
        str, typer.Option("--exec", metavar="COMMAND", help="Run by sh once per event, the event on stdin.")
    ] = "",
    once: Annotated[bool, typer.Option("--once", help="Stop when caught up (else follow).")] = False,
    retries: Annotated[
        int, typer.Option("--retries", min=0, metavar="N", help="Attempts after the first.")
    ] = 3,
    backoff: Annotated[
        str, typer.Option("--backoff", metavar="BASE", help="Retry delays, BASE[:MAX] s.")
    ] = "1:60",
    break_after: Annotated[
        int,
        typer.Option("--break-after", min=1, metavar="N", help="Failures that open the breaker."),
    ] = 5,
    cool_down: Annotated[
        float, typer.Option("--cool-down", min=0, metavar="SECONDS", help="Wait before a trial call.")
    ] = 30.0,
    park: Annotated[
        str, typer.Option("--park", metavar="MODE", help="event, or stream: hold the rest.")
    ] = "stream",
    timeout: Annotated[
        float, typer.Option("--timeout", min=0, metavar="SECONDS", help="Longer runs fail (0: none).")
    ] = 0.0,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Exit 3 if another runner has the group, not wait.")
    ] = False,
    lease: Annotated[
        float,
        typer.Option("--lease", min=0.1, metavar="SECONDS", help="A dead runner's hold."),
    ] = 5.0,
    published: Annotated[
        bool, typer.Option("--published", help="Only published events, in their public form.")
    ] = False,
    output_format: OutputOption = None,
) -> None:
    """Run a command, or a Subscriber, per event: durably, in order.

    The event's envelope is the command's stdin; ESCTL_EVENT_ID, ESCTL_POSITION,
    ESCTL_ATTEMPT and ESCTL_IDEMPOTENCY_KEY (the same on every attempt) are in its
    environment. Exit 0 is success; the group's checkpoint moves only then. A
    failure is retried with backoff; after the retries the event is parked
    (esctl dlq); after --break-after failures in a row the breaker stops calls
    for --cool-down seconds. One runner per group at a time. Prints one line per
    delivery; exit 1 when --once stops at an open breaker. Without --exec, the
    model's Subscriber named GROUP handles the events, with its own settings.

    Examples:
      esctl consume mailer --all --type OrderShipped --exec 'mail-order.sh' --once
      esctl consume audit --all --exec 'cat >> audit.ndjson'
      esctl --model model.py consume notifier --once
    """
    from esctl.subscriptions import EventFilter
    from esctl.subscriptions.command import ShellCommand
    from esctl.subscriptions.consumer import ConsumerRunner
    from esctl.subscriptions.resilience import Settings

    base, top = _backoff(backoff)
    settings = Settings(retries, base, top, break_after, cool_down, park, lease, wait_for_lease=not no_wait)
    wanted = _filter(stream, all_, category, event_type) if command.strip() else EventFilter()
    handler: Any = None
    if command.strip():
        encode, types = _published(ctx) if published else (None, None)
        if types is not None:
            unpublished = sorted(set(event_type or ()) - set(types))
            if unpublished:
                raise InvalidInput(
                    f"--published: the model does not publish {', '.join(unpublished)} (it publishes {', '.join(types)})"
                )
            wanted = EventFilter.of(wanted.streams, wanted.categories, event_type or types)
        handler = ShellCommand(command, timeout=timeout or None, **({"encode": encode} if encode else {}))
    elif published:
        raise InvalidInput("--published hands the public form to a command: give --exec COMMAND")
    if handler is None:  # the model's subscriber of that name, with the settings it gives
        handler = _subscriber(ctx, group, given=stream is not None or all_ or bool(category or event_type))
        _refuse_given(ctx, group, ("retries", "backoff", "break_after", "cool_down", "park", "timeout"))
        wanted, settings = (
            handler.wanted,
            replace(handler.settings, lease_seconds=lease, wait_for_lease=not no_wait),
        )
    out = session(ctx).output(output_format)
    if out.format is OutputFormat.json and not once:
        raise InvalidInput("consume follows until stopped, so it prints NDJSON, not -o json (or give --once)")
    reports: list[dict] = []

    def report(r: Any) -> None:
        doc = {"consumer": group, **r.to_dict()}
        if out.format is OutputFormat.json:
            reports.append(doc)
        else:
            out.document(doc, "consume_line")

    with session(ctx).store() as store:
        db = session(ctx).read_models(store, create=True)
        assert db is not None
        runner = ConsumerRunner(
            store,
            db,
            group,
            wanted,
            handler,
            settings,
            on_report=report,
            on_wait=output.note,
            on_start=lambda: (
                None
                if once
                else output.note(f"consumer {group!r}: following {wanted.describe()}; Ctrl-C stops")
            ),
        )
        try:
            with sigterm_as_interrupt() as stopped:
                try:
                    summary = runner.run(once=once)
                except KeyboardInterrupt:
                    raise typer.Exit(stopped.exit_code) from None
        finally:
            db.close()
    if out.format is OutputFormat.json:
        output.write_json_array(reports)
    if summary.parked:
        output.note(f"parked {summary.parked} event(s): esctl dlq list {group}")
    if summary.stopped_by_breaker is not None:
        from esctl.errors import StoreError

        raise StoreError(
            f"consumer {group!r} stopped: its circuit breaker is open after failures in a row,"
            f" a trial call in {max(summary.stopped_by_breaker - time.time(), 0):.0f} s"
        )


def _published(ctx: typer.Context) -> tuple[Any, list[str]]:
    """The model's contracts as a stdin encoder for commands, and their domain types."""
    from esctl import codec
    from esctl.store.writing import decode
    from esctl.subscriptions.published import published_in
    from esctl.upcasting import Upcasters

    module = session(ctx).model(required=True)
    contracts = published_in(module)
    if not contracts:
        raise InvalidInput("the model publishes no events (esctl.subscriptions.Published)")
    upcasters = Upcasters.from_module(module)

    def encode(row: Any) -> bytes:
        event = upcasters.event(decode(row)) if upcasters else decode(row)
        return codec.dumps(contracts[event.type].publish(event)) + b"\n"

    return encode, sorted(contracts)


def _refuse_given(ctx: typer.Context, group: str, names: tuple[str, ...]) -> None:
    """InvalidInput for options given that a model's Subscriber sets itself."""
    from typer._click.core import ParameterSource

    given = [
        f"--{name.replace('_', '-')}"
        for name in names
        if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    ]
    if given:
        raise InvalidInput(
            f"subscriber {group!r} gives its own retries, backoff, breaker and park mode in the model:"
            f" drop {', '.join(given)}"
        )


def _subscriber(ctx: typer.Context, group: str, *, given: bool) -> Any:
    from esctl.subscriptions import subscribers_in

    module = session(ctx).model()
    found = {s.name: s for s in subscribers_in(module)} if module is not None else {}
    if group not in found:
        defined = ", ".join(found) or "none"
        raise InvalidInput(
            f"give the command to run (--exec COMMAND), or --model with a Subscriber named {group!r}"
            f" (subscribers: {defined})"
        )
    if given:
        raise InvalidInput(
            f"subscriber {group!r} says which events it takes: give no STREAM, --all or filters"
        )
    return found[group]


# --- the dead-letter queue ---------------------------------------------------------------


class DlqGroup(HelpLayout, EsctlSubgroup):
    """`esctl dlq`: esctl's help layout; an unknown subcommand lists the others."""


dlq_app = EsctlTyper(
    name="dlq",
    cls=DlqGroup,
    help="""Parked events of consumers: list, show, retry, skip.

    An event is parked when its command failed on every retry (and, with --park
    stream, the later events of its stream are held behind it). retry puts them
    back in line for the group's next consume run, first and in order; skip
    gives one up. Each is recorded in the event's history.

    Examples:
      esctl dlq list
      esctl dlq retry mailer --all
    """,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(dlq_app, name="dlq")


@contextlib.contextmanager
def _consumer_state(ctx: typer.Context, store: Any) -> Iterator[tuple[Any, Any]]:
    """The read models and the consumer groups' state in them, closed afterwards."""
    from esctl.store.consumers import ConsumerStore

    db = session(ctx).read_models(store)
    if db is None:
        raise NotFound("no consumer has run on this store yet")
    with db:
        yield db, ConsumerStore(db)


def _known(state: Any, group: str) -> Any:
    consumer = state.get(group)
    if consumer is None:
        known = ", ".join(c.name for c in state.all()) or "none"
        raise NotFound(f"no consumer group {group!r} (groups: {known})")
    return consumer


@dlq_app.command("list")
def dlq_list(
    ctx: typer.Context,
    group: Annotated[Optional[str], typer.Argument(help="Only this group's.")] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Also events already re-driven or skipped.")
    ] = False,
    output_format: OutputOption = None,
) -> None:
    """Parked and held events, oldest first.

    Examples:
      esctl dlq list mailer
      esctl dlq list | jq -r 'select(.state == "parked") | .error'
    """
    from esctl.store.consumers import WAITING

    with session(ctx).store() as store, _consumer_state(ctx, store) as (_db, state):
        if group is not None:
            _known(state, group)
        rows = [p.to_dict() for p in state.parked(group, states=() if everything else WAITING)]
    session(ctx).output(output_format, listing=True).records(rows, "parked_events")


@dlq_app.command("show")
def dlq_show(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(help="The consumer group.")],
    position: Annotated[int, typer.Argument(help="The parked event's position.")],
    output_format: OutputOption = None,
) -> None:
    """One parked event, in full.

    Its error, attempts and history, and the event itself.

    Examples:
      esctl dlq show mailer 42
      esctl dlq show mailer 42 | jq -r .error
    """
    with session(ctx).store() as store, _consumer_state(ctx, store) as (_db, state):
        _known(state, group)
        parked = state.one(group, position)
        if parked is None:
            raise NotFound(f"consumer {group!r} has parked no event at position {position}")
        (event,) = store.read_all(from_position=position, to_position=position)
    session(ctx).output(output_format).document(
        {**parked.to_dict(), "event": event.to_dict()}, "parked_event"
    )


@dlq_app.command("retry")
def dlq_retry(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(help="The consumer group.")],
    position: Annotated[Optional[int], typer.Argument(help="The parked event's position (or --all).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every parked and held event of the group.")] = False,
    output_format: OutputOption = None,
) -> None:
    """Put parked events back in line.

    The group's next run delivers them first, in order. Retrying a parked event of a held stream releases the events held behind it
    too, in order.

    Examples:
      esctl dlq retry mailer 42
      esctl dlq retry mailer --all && esctl consume mailer --all --exec ... --once
    """
    from esctl.subscriptions.dlq import retry

    if all_ == (position is not None):
        raise InvalidInput("give a POSITION or --all (not both)")
    with session(ctx).store() as store, _consumer_state(ctx, store) as (db, state):
        consumer = _known(state, group)
        retried = retry(db, state, consumer, position)
    session(ctx).output(output_format).document(
        {"consumer": group, "retried": retried}, "mapping", title=f"retry {group}"
    )


@dlq_app.command("skip")
def dlq_skip(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(help="The consumer group.")],
    position: Annotated[int, typer.Argument(help="The parked event's position.")],
    output_format: OutputOption = None,
) -> None:
    """Give up a parked event.

    It is never delivered; the events held behind it go back in line.

    Examples:
      esctl dlq skip mailer 42
      esctl dlq skip mailer 42 | jq .released
    """
    from esctl.subscriptions.dlq import skip

    with session(ctx).store() as store, _consumer_state(ctx, store) as (db, state):
        consumer = _known(state, group)
        released = skip(db, state, consumer, position)
    session(ctx).output(output_format).document(
        {"consumer": group, "skipped": position, "released": released}, "mapping", title=f"skip {group}"
    )


# --- consumers -----------------------------------------------------------------------


@app.command()
def consumers(ctx: typer.Context, output_format: OutputOption = None) -> None:
    """Every subscription: projections and consumer groups.

    Kind, checkpoint, head, lag, status, parked events, breaker and who holds
    its lease (a runner now).

    Examples:
      esctl consumers
      esctl consumers | jq -r 'select(.parked > 0) | .name'
    """
    from esctl.subscriptions.listing import subscriptions

    with session(ctx).store() as store:
        head = store.head_position()
        db = session(ctx).read_models(store)
        try:
            docs = subscriptions(db, head) if db is not None else []
        finally:
            if db is not None:
                db.close()
    session(ctx).output(output_format, listing=True).records(docs, "consumer_statuses")


# --- contracts -----------------------------------------------------------------------


@app.command()
def contracts(
    ctx: typer.Context,
    check: Annotated[
        bool, typer.Option("--check", help="Run every stored event through its contract.")
    ] = False,
    output_format: OutputOption = None,
) -> None:
    """Published integration events, and whether the log keeps them.

    Lists each published contract (public name, version, domain type, fields).
    With --check, every stored event of a published type goes through its shape
    (after the model's upcasters): one that no longer gives the declared fields
    is a contract broken without a new version. Exit 5 when one is.

    Examples:
      esctl --model model.py contracts
      esctl --model model.py contracts --check && echo "the contracts hold"
    """
    from esctl.errors import VerificationFailed
    from esctl.subscriptions.published import check_contract, published_in

    published = published_in(session(ctx).model(required=True))
    if not published:
        raise InvalidInput("the model publishes no events (esctl.subscriptions.Published)")
    if not check:
        docs = [c.describe() for c in published.values()]
        session(ctx).output(output_format, listing=True).records(docs, "table", title="published")
        return
    from esctl.upcasting import Upcasters

    upcasters = Upcasters.from_module(session(ctx).model())
    checked = 0

    def counted(events: Any) -> Any:
        nonlocal checked
        for event in events:
            checked += 1
            yield event

    upcast = upcasters.event if upcasters else None
    with session(ctx).store() as store:
        problems = check_contract(published, counted(store.read_all(types=sorted(published))), upcast)
    doc = {"checked": checked, "broken": len(problems), "problems": problems[:100]}
    session(ctx).output(output_format).document(doc, "mapping", title="contracts")
    if problems:
        raise VerificationFailed(f"{len(problems)} published event(s) break their contract: {problems[0]}")
