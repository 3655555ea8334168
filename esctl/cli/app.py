"""The Typer application: global options, error handling, and command registration.

Every EsctlError becomes one line on stderr and its documented exit code; a closed
pipe ends quietly; no traceback reaches a user (ESCTL_DEBUG=1 shows one)."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Annotated, NoReturn, Optional

import typer
from typer.core import TyperGroup

from esctl import __version__
from esctl.cli import output
from esctl.cli.helptext import EsctlTyper, HelpLayout
from esctl.cli.output import OutputFormat
from esctl.cli.session import DEFAULT_DB, Session
from esctl.errors import EsctlError, InvalidInput, check_utf8


class EsctlSubgroup(TyperGroup):
    """A command group (`esctl`, `esctl project`): an unknown command is a usage
    error that lists the group's commands."""

    def resolve_command(self, ctx, args):  # type: ignore[no-untyped-def]
        from typer._click.exceptions import UsageError

        name = args[0] if args else ""
        if (
            name
            and not name.startswith("-")
            and not ctx.resilient_parsing
            and self.get_command(ctx, name) is None
        ):
            commands = ", ".join(self.list_commands(ctx))
            raise UsageError(f"no such command {name!r} (commands: {commands})", ctx)
        return super().resolve_command(ctx, args)

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        from typer._click.exceptions import UsageError

        try:
            return super().invoke(ctx)
        except UsageError as exc:
            # Some parse errors carry no context: remember which command was parsed,
            # for the hint line.
            if exc.ctx is None and ctx.invoked_subcommand and not hasattr(exc, "command_path"):
                exc.command_path = f"{ctx.command_path} {ctx.invoked_subcommand}"  # type: ignore[attr-defined]
            raise


class EsctlGroup(EsctlSubgroup):
    """The root group: every failure leaves as one `esctl: error: ...` line (at most
    one hint or note after it) and its documented exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[no-untyped-def]
        from typer._click.exceptions import ClickException

        args = sys.argv[1:] if args is None else list(args)
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        _refuse_non_utf8(args)
        try:
            # Not standalone: Click's own error printing (a Usage:/Error: block,
            # boxed by Rich on a terminal) is replaced by ours below.
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ClickException as exc:
            sys.exit(_click_error(exc))
        except typer.Abort:  # a prompt's Ctrl-C or end of input
            output.note("interrupted")
            sys.exit(130)
        # Not standalone, Typer returns an Exit's code, or the command's result (None).
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except EsctlError as exc:
            _error(exc, exc.exit_code)
        except BrokenPipeError:
            # `esctl read --all | head -1`: the reader left; stop quietly.
            devnull = os.open(os.devnull, os.O_WRONLY)
            with contextlib.suppress(OSError, ValueError):
                os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(141) from None
        except KeyboardInterrupt as exc:
            output.note("interrupted")
            for note in getattr(exc, "__notes__", ()):  # e.g. which import batches were committed
                output.note(note)
            raise typer.Exit(130) from None
        except OverflowError as exc:  # a number SQLite cannot hold, from the command line
            output.error(f"a number is out of range (at most 2**63-1): {exc}")
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:
            if _is_usage_error(exc) or os.environ.get("ESCTL_DEBUG"):
                raise
            explained = _environment_error(exc)
            if explained is not None:
                _error(explained, explained.exit_code)
            output.error(
                f"unexpected {type(exc).__name__}: {exc} (a bug in esctl; ESCTL_DEBUG=1 shows the traceback)"
            )
            raise typer.Exit(1) from None


def _error(exc: BaseException, code: int) -> NoReturn:
    output.error(str(exc))
    for note in getattr(exc, "__notes__", ()):
        output.note(note)
    raise typer.Exit(code) from None


def _is_usage_error(exc: Exception) -> bool:
    from typer._click.exceptions import ClickException

    return isinstance(exc, ClickException)


def _environment_error(exc: Exception) -> EsctlError | None:
    """An SQLite or OS failure that got past the library's explanations (a read-model
    database, a full disk under stdout), explained; None for anything else."""
    import sqlite3

    if isinstance(exc, sqlite3.Error):
        from esctl.store.sqlite.failures import classify

        return classify(exc, None)
    psycopg = sys.modules.get("psycopg")  # loaded only for a PostgreSQL store
    if psycopg is not None and isinstance(exc, psycopg.Error):
        from esctl.store.postgres.failures import classify as classify_postgres

        return classify_postgres(exc, "the PostgreSQL store")
    if isinstance(exc, OSError):
        import errno

        from esctl.errors import StoreError

        if exc.filename:
            return StoreError(f"{exc.strerror or exc}: {exc.filename}")
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):  # only writes fail so
            return StoreError(f"cannot write the output: {exc.strerror}")
        return StoreError(f"I/O error: {exc.strerror or exc}")
    return None


def _refuse_non_utf8(args: list[str]) -> None:
    """Names, ids, filters, JSON and SQL are UTF-8 in the store, and so are paths in
    its output: an argument (or ESCTL_* path) with other bytes is refused up front
    (Python keeps such bytes as lone surrogates that would fail deep inside)."""
    given = [("argument {}", a) for a in args]
    given += [
        (f"{v} ({{}})", os.environ[v])
        for v in ("ESCTL_DB", "ESCTL_MODEL", "ESCTL_READ_DB")
        if v in os.environ
    ]
    for what, value in given:
        try:
            check_utf8(value, "")
        except InvalidInput:
            try:  # shown as the bytes given: 's\xffx'
                check_utf8(value, what.format(repr(os.fsencode(value))[1:]))
            except InvalidInput as exc:
                output.error(str(exc))
                sys.exit(2)


def _click_error(exc) -> int:  # type: ignore[no-untyped-def]
    """Print a Click error the esctl way; its exit code (2 for usage errors)."""
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    if isinstance(exc, NoArgsIsHelpError):
        # The group's help, as `esctl` alone has always printed it (Rich drew it already).
        if exc.format_message():
            exc.show()
        return exc.exit_code
    output.error(_usage_message(exc) if isinstance(exc, UsageError) else exc.format_message())
    if isinstance(exc, UsageError):
        path = exc.ctx.command_path if exc.ctx is not None else getattr(exc, "command_path", "esctl")
        output.note(f"see '{path} --help'")
    return exc.exit_code


def _usage_message(exc) -> str:  # type: ignore[no-untyped-def]
    """One line naming the parameter: `--limit: -1 is not in the range x>=0`,
    `missing argument STREAM`, `no such option --bogus (did you mean --all?)`."""
    from typer._click.exceptions import BadParameter, MissingParameter, NoSuchOption

    if isinstance(exc, MissingParameter):
        kind = exc.param_type or (exc.param.param_type_name if exc.param else "parameter")
        return f"missing {kind} {_param_name(exc)}"
    if isinstance(exc, BadParameter):
        return f"{_param_name(exc)}: {_sentence(exc.message)}"
    if isinstance(exc, NoSuchOption):
        message = f"no such option {exc.option_name}"
        if exc.possibilities:
            message += f" (did you mean {' or '.join(sorted(exc.possibilities))}?)"
        return message
    return _sentence(exc.message)


def _param_name(exc) -> str:  # type: ignore[no-untyped-def]
    """How the user wrote the parameter: its long option, or an argument's metavar."""
    hint = exc.param_hint
    if hint is not None:
        return hint if isinstance(hint, str) else hint[0]
    param = exc.param
    if param is None:
        return "a parameter"
    if param.opts and param.param_type_name == "option":
        return max(param.opts, key=len)
    return (param.metavar or param.name or "").upper() or "an argument"


def _sentence(message: str) -> str:
    """Click's sentence as the rest of an esctl error line: no capital, no full stop."""
    message = message.strip().rstrip(".")
    if message[:1].isupper() and message[1:2].islower():
        message = message[0].lower() + message[1:]
    return message


class RootGroup(HelpLayout, EsctlGroup):
    """The `esctl` group: EsctlGroup's error handling, drawn with esctl's help layout."""


# The first paragraph is the summary; the blocks at the end show after the commands.
ROOT_HELP = """An append-only event store in one SQLite file, or in PostgreSQL.

Append events, replay streams into aggregates, build read models, inspect every
version. The store is ./events.db unless --db or ESCTL_DB names another file (or a
PostgreSQL database, postgresql://...). Output is tables on a terminal and JSON or
NDJSON when piped.

esctl help COMMAND shows a command's options and examples.

Run esctl --install-completion once to complete in bash, zsh or fish.

Getting started:
  esctl import sample_streams/orders/events.ndjson
  esctl --model sample_streams/orders/model.py replay order-1

Exit codes:
  0    success
  1    unexpected or environment error (not an esctl store, newer schema)
  2    usage or invalid input, a model or handler that fails; nothing written
  3    conflict: wrong expected version, an event id reused; nothing written
  4    not found: no store at the path, no such stream or version
  5    a check found differences (project verify)
  6    the aggregate rejected the command (exec); nothing written
  124  the query ran out of time (query --timeout)
  130  interrupted (Ctrl-C)
  141  the reader of stdout went away (esctl read --all | head -1)
  143  terminated (SIGTERM) while following (follow, project run --follow)
"""

# Rich help and usage errors for a person; plain, unboxed text for pipes and logs.
RICH_HELP = sys.stdout.isatty() and sys.stderr.isatty()

app = EsctlTyper(
    cls=RootGroup,
    name="esctl",
    help=ROOT_HELP,
    no_args_is_help=True,
    rich_markup_mode="rich" if RICH_HELP else None,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"esctl {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    db: Annotated[
        Optional[str],
        typer.Option(
            "--db",
            envvar="ESCTL_DB",
            metavar="PATH|URL",
            help="The store: a file, or a postgresql:// URL.",
        ),
    ] = DEFAULT_DB,
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--output",
            "-o",
            metavar="FORMAT",
            help="Output format: auto (tables on a terminal, JSON piped), table, json or ndjson.",
        ),
    ] = OutputFormat.auto,
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model",
            envvar="ESCTL_MODEL",
            metavar="PATH_OR_MODULE",
            help="The model, a file or module.",
        ),
    ] = None,
    read_db: Annotated[
        Optional[str],
        typer.Option(
            "--read-db",
            metavar="PATH",
            envvar="ESCTL_READ_DB",
            show_default="the store",
            help="File for read models.",
        ),
    ] = None,
    no_pager: Annotated[
        bool,
        typer.Option(
            "--no-pager", help="Print listings straight to the terminal (else $ESCTL_PAGER, $PAGER, less)."
        ),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    if db == "" or read_db == "":
        raise typer.BadParameter("must not be empty", param_hint="--db" if db == "" else "--read-db")
    ctx.obj = Session(
        db=db or DEFAULT_DB,
        output_format=output_format,
        model_spec=model,
        read_db=read_db,
        pager=not no_pager,
    )


# Every read command accepts -o after the command too; it overrides the global one.
OutputOption = Annotated[
    Optional[OutputFormat],
    typer.Option(
        "--output",
        "-o",
        metavar="FORMAT",
        help="Output format: auto, table, json or ndjson (overrides esctl -o).",
    ),
]


# One module per command group; each registers its commands on `app` when imported.
COMMAND_MODULES = (
    "store_commands",
    "aggregate_commands",
    "projection_commands",
    "subscription_commands",
    "help_command",
)


def register() -> None:
    from importlib import import_module

    for name in COMMAND_MODULES:
        import_module(f"esctl.cli.{name}")


register()
