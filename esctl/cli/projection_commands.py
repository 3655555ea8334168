"""Projection commands: project list/run/rebuild/verify/reset and query.

The model's projections are read with the model's upcasters, so read models see
events as the current code does. Read models live where the store lives unless the
global --read-db names a SQLite file; the work itself is done by esctl.projections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from esctl.cli import output
from esctl.cli.app import EsctlSubgroup, OutputOption, app
from esctl.cli.helptext import EsctlTyper, HelpLayout
from esctl.cli.session import session
from esctl.cli.signals import sigterm_as_interrupt
from esctl.errors import InvalidInput, NotFound, VerificationFailed

if TYPE_CHECKING:
    from esctl.projections import Projection


class ProjectGroup(HelpLayout, EsctlSubgroup):
    """`esctl project`: esctl's help layout; an unknown subcommand lists the others."""


project_app = EsctlTyper(
    name="project",
    cls=ProjectGroup,
    help="""Projections (read models): list, run, rebuild, verify, reset.

    A projection of the model turns events into tables, kept where the store is
    (its file or PostgreSQL database) or in --read-db, that query can read.

    Examples:
      export ESCTL_MODEL=sample_streams/bank/model.py
      esctl project run --all
      esctl project list
    """,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(project_app, name="project")


def _projections(ctx: typer.Context, *, required: bool = True) -> list[Projection]:
    """The model's projections, each reading events through the model's upcasters."""
    from esctl.projections import projections_in

    module = session(ctx).model(required=required)
    return projections_in(module) if module is not None else []


def _chosen(ctx: typer.Context, names: list[str] | None, all_: bool) -> list[Projection]:
    from esctl.projections.definition import pick

    projections = _projections(ctx)
    if not projections:
        raise InvalidInput("the model defines no projections")
    if all_ and names:
        raise InvalidInput("give projection names or --all, not both")
    if all_:
        return projections
    if not names:
        raise InvalidInput("name the projections to run, or give --all")
    return pick(projections, names)


# --- project list ------------------------------------------------------------------


@project_app.command("list")
def list_(ctx: typer.Context, output_format: OutputOption = None) -> None:
    """Every projection: its checkpoint, head, lag and status.

    The status is live (caught up), behind, stale (its code changed since it was
    built: rebuild it) or failed (with the event and the error).

    Examples:
      export ESCTL_MODEL=sample_streams/bank/model.py
      esctl project list
      esctl project list | jq -r 'select(.status != "live") | .name'
    """
    from esctl.projections.status import status

    projections = _projections(ctx)
    if not projections:
        output.note("the model defines no projections")
    with session(ctx).store() as store:
        head = store.head_position()
        db = session(ctx).read_models(store)
        try:
            docs = [status(db, p, head) for p in projections]
        finally:
            if db is not None:
                db.close()
    session(ctx).output(output_format).records(docs, "projection_statuses")


# --- project run -------------------------------------------------------------------


@project_app.command("run")
def run(
    ctx: typer.Context,
    names: Annotated[Optional[list[str]], typer.Argument(metavar="NAME", help="Projections to run.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Run every projection in the model.")] = False,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Apply new events as they come, until Ctrl-C."),
    ] = False,
    output_format: OutputOption = None,
) -> None:
    """Catch projections up from their checkpoints.

    Each batch of events commits with the checkpoint: an event is never applied
    twice or skipped. Exit 2 when a handler fails (the error names the event and
    the handler's line; the other projections still run), 1 when a table it built
    is missing (rebuild it).

    Examples:
      export ESCTL_MODEL=sample_streams/bank/model.py
      esctl project run balances
      esctl project run --all --follow
    """
    from esctl.projections import ProjectionFailed
    from esctl.projections.runner import ProjectionNeedsRebuild
    from esctl.projections.status import status

    chosen = _chosen(ctx, names, all_)
    out = session(ctx).output(output_format)
    docs: list[dict[str, Any]] = []
    failed: list[ProjectionFailed | ProjectionNeedsRebuild] = []
    with session(ctx).store() as store:
        db = session(ctx).read_models(store, create=True)
        assert db is not None
        try:
            for projection in chosen:
                before = status(db, projection, store.head_position())
                if before["status"] == "stale":
                    output.warn(
                        f"projection {projection.name!r} is stale (its code changed since it was built):"
                        f" applying new events with the new code; esctl project rebuild {projection.name}"
                        " rebuilds it all"
                    )
                try:
                    result = _catch_up_with_progress(store, db, projection, before["lag"])
                except (ProjectionFailed, ProjectionNeedsRebuild) as exc:
                    output.error(str(exc))
                    failed.append(exc)
                    docs.append(status(db, projection, store.head_position()))
                    continue
                if result.adopted_code:
                    output.note(
                        f"projection {projection.name!r} resumed with its changed code from position"
                        f" {result.start + 1}; esctl project verify {projection.name} compares it with a rebuild"
                    )
                docs.append(
                    {
                        **status(db, projection, store.head_position()),
                        "applied": result.applied,
                        "seconds": round(result.seconds, 3),
                        "events_per_second": round(result.applied / result.seconds)
                        if result.seconds
                        else None,
                    }
                )
            out.records(docs, "projection_statuses", title="after run")
            if follow:
                remaining = [p for p in chosen if p.name not in {f.name for f in failed}]
                if remaining:
                    failed += _follow(store, db, remaining, out)
        finally:
            db.close()
    if failed:
        raise typer.Exit(failed[0].exit_code)


def _catch_up_with_progress(store: Any, db: Any, projection: Projection, lag: int) -> Any:
    from esctl.projections.runner import catch_up

    with output.progress(lag, f"running {projection.name}", at_least=50_000) as advance:
        return catch_up(store, db, projection, progress=advance)


def _follow(store: Any, db: Any, projections: list[Projection], out: Any) -> list[Any]:
    """Apply new events as they arrive until Ctrl-C (or SIGTERM); one line per batch."""
    from esctl.projections.runner import follow

    names = ", ".join(p.name for p in projections)

    def applied(result: Any) -> None:
        doc = {"name": result.name, "checkpoint": result.checkpoint, "applied": result.applied}
        out.document(doc, "follow_line")

    def failure(exc: Any) -> None:
        output.error(str(exc))

    with sigterm_as_interrupt() as stopped:
        try:
            output.note(f"following {names}: Ctrl-C stops")  # once SIGTERM is handled too
            return follow(store, db, projections, on_result=applied, on_failure=failure, on_wait=output.note)
        except KeyboardInterrupt:
            # Each batch commits or rolls back whole (follow rolled back the one being
            # applied): stopping here loses nothing.
            output.note("stopped following" + (" (terminated)" if stopped.terminated else ""))
            raise typer.Exit(stopped.exit_code) from None


# --- project rebuild -----------------------------------------------------------------


@project_app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The projection to rebuild from position 1.")],
    output_format: OutputOption = None,
) -> None:
    """Rebuild a projection into shadow tables, then swap them in.

    Queries see the old tables until the new ones are complete. Exit 2 when a
    handler fails (nothing changes), 3 when another process is rebuilding it.

    Examples:
      export ESCTL_MODEL=sample_streams/bank/model.py
      esctl project rebuild balances
      esctl project rebuild balances | jq .events_per_second
    """
    from esctl.projections.definition import pick
    from esctl.projections.rebuild import rebuild as rebuild_projection
    from esctl.projections.status import status

    (projection,) = pick(_projections(ctx), [name])
    with session(ctx).store() as store:
        db = session(ctx).read_models(store, create=True)
        assert db is not None
        try:
            with output.progress(store.head_position(), f"rebuilding {name}", at_least=1) as advance:
                result = rebuild_projection(store, db, projection, progress=advance)
            doc = {
                **status(db, projection, store.head_position()),
                "applied": result.applied,
                "seconds": round(result.seconds, 3),
                "events_per_second": round(result.applied / result.seconds) if result.seconds else None,
            }
        finally:
            db.close()
    session(ctx).output(output_format).document(doc, "projection_report", title=f"rebuilt {name}")


# --- project verify ------------------------------------------------------------------


@project_app.command("verify")
def verify(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The projection to compare with a fresh rebuild.")],
    output_format: OutputOption = None,
) -> None:
    """Compare a projection's tables with a fresh rebuild.

    The projection is rebuilt into scratch databases up to its checkpoint and
    compared row by row with its tables; a second rebuild catches handlers that
    are not deterministic (a clock, randomness, outside state).
    Exit 5 on differences, 2 when a handler fails while rebuilding or the projection
    has failed (its handler failed on an event: fix the model, then run it).

    Examples:
      export ESCTL_MODEL=sample_streams/bank/model.py
      esctl project verify balances && echo "balances matches a rebuild"
      esctl project verify balances | jq .counts
    """
    from esctl.projections.definition import pick
    from esctl.projections.verify import verify as verify_projection

    (projection,) = pick(_projections(ctx), [name])
    with session(ctx).store() as store:
        db = session(ctx).read_models(store)
        if db is None:
            raise NotFound(f"projection {name!r} has not been built (no {session(ctx).read_path})")
        try:
            report = verify_projection(store, db, projection)
        finally:
            db.close()
    if len(report.differences) < report.total:
        output.note(f"showing the first {len(report.differences)} of {report.total} differences")
    session(ctx).output(output_format).document(report.to_dict(), "verify_report")
    if report.failed:
        raise InvalidInput(
            f"projection {name!r} has failed at position {report.failure['position']}"  # type: ignore[index]
            f" ({report.failure['message']}); its tables {'match' if not report.total else 'differ from'}"  # type: ignore[index]
            f" a rebuild up to position {report.checkpoint}: fix the model, then esctl project run {name}"
        )
    if not report.ok:
        raise VerificationFailed(f"projection {name!r} differs from a rebuild: {report.summary()}")


# --- project reset -------------------------------------------------------------------


@project_app.command("reset")
def reset(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The projection whose tables and checkpoint to drop.")],
    output_format: OutputOption = None,
) -> None:
    """Drop a projection's tables and its checkpoint.

    The next run starts again from position 1. Exit 3 while another process is
    rebuilding it.

    Examples:
      export ESCTL_MODEL=sample_streams/bank/model.py
      esctl project reset balances | jq .dropped
      esctl project reset balances && esctl project run balances
    """
    from esctl.projections.reset import reset as reset_projection

    defined = {p.name for p in _projections(ctx, required=False)}
    with session(ctx).store() as store:
        db = session(ctx).read_models(store)
        try:
            dropped = reset_projection(db, name) if db is not None else None
        finally:
            if db is not None:
                db.close()
    if dropped is None:
        if name not in defined:
            raise NotFound(f"no projection named {name!r} in the model or the read models")
        output.note(f"projection {name!r} has not been built: nothing to reset")
        dropped = []
    doc = {"name": name, "dropped": dropped}
    session(ctx).output(output_format).document(doc, "mapping", title=f"reset {name}")


# --- query -------------------------------------------------------------------------


@app.command()
def query(
    ctx: typer.Context,
    sql: Annotated[
        str, typer.Argument(metavar="SQL", help="One read-only SQL statement; :name placeholders.")
    ],
    param: Annotated[
        Optional[list[str]],
        typer.Option("--param", "-p", metavar="NAME=VALUE", help="A value for :NAME (repeatable)."),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", help="Stop the query after this long (0: no limit)."),
    ] = 30.0,
    output_format: OutputOption = None,
) -> None:
    """Run one read-only SQL query against the read models.

    The query runs on a read-only connection: a write is refused (exit 2). It is
    stopped after --timeout seconds (exit 124). Piped, each row is a JSON object,
    one per line.

    Examples:
      esctl query "select * from balances where balance > :min" -p min=20
      esctl query "select count(*) as n from balances" | jq .n
    """
    from esctl import store as backends
    from esctl.projections.query import parse_params, run_query, run_store_query

    params = parse_params(param or [])
    if session(ctx).read_db is None:
        with session(ctx).store() as store:  # a missing store is "no event store at PATH" (exit 4)
            if not isinstance(store, backends.EventStore):  # PostgreSQL: SQL over its database
                result = run_store_query(store, sql, params, timeout=timeout)
                session(ctx).output(output_format, listing=True).records(
                    result.rows, "query_rows", result.columns
                )
                return
    result = run_query(session(ctx).read_path, sql, params, timeout=timeout)
    session(ctx).output(output_format, listing=True).records(result.rows, "query_rows", result.columns)
