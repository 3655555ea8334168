"""The Typer application: global options, error handling, and command registration.

Every EsctlError becomes one line on stderr and its documented exit code; a closed
pipe ends quietly; no traceback reaches a user (ESCTL_DEBUG=1 shows one)."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from esctl import __version__
from esctl.cli import output
from esctl.cli.output import OutputFormat
from esctl.cli.session import DEFAULT_DB, Session
from esctl.errors import EsctlError


class EsctlGroup(TyperGroup):
    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except EsctlError as exc:
            output.error(str(exc))
            for note in getattr(exc, "__notes__", ()):
                output.note(note)
            raise typer.Exit(exc.exit_code) from None
        except BrokenPipeError:
            # `esctl read --all | head -1`: the reader left; stop quietly.
            devnull = os.open(os.devnull, os.O_WRONLY)
            with contextlib.suppress(OSError, ValueError):
                os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(141) from None
        except KeyboardInterrupt:
            output.note("interrupted")
            raise typer.Exit(130) from None
        except OverflowError as exc:  # a number SQLite cannot hold, from the command line
            output.error(f"a number is out of range (at most 2**63-1): {exc}")
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("ESCTL_DEBUG"):
                raise
            if _is_usage_error(exc):
                raise
            output.error(f"unexpected {type(exc).__name__}: {exc} (set ESCTL_DEBUG=1 for a traceback)")
            raise typer.Exit(1) from None


def _is_usage_error(exc: Exception) -> bool:
    from typer._click.exceptions import ClickException

    return isinstance(exc, ClickException)


app = typer.Typer(
    cls=EsctlGroup,
    name="esctl",
    help="An append-only event store in one SQLite file: append, replay, project, inspect.",
    no_args_is_help=True,
    # Rich help and usage errors for a person; plain, unboxed text for pipes and logs.
    rich_markup_mode="rich" if sys.stdout.isatty() and sys.stderr.isatty() else None,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
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
            "--db", envvar="ESCTL_DB", metavar="PATH", help=f"Event store file.  [default: ./{DEFAULT_DB}]"
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat,
        typer.Option("--output", "-o", help="Output format; auto: tables on a terminal, JSON when piped."),
    ] = OutputFormat.auto,
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model",
            envvar="ESCTL_MODEL",
            metavar="PATH_OR_MODULE",
            help="Model module or file (aggregates, projections, upcasters).",
        ),
    ] = None,
    read_db: Annotated[
        Optional[str],
        typer.Option(
            "--read-db",
            metavar="PATH",
            envvar="ESCTL_READ_DB",
            help="Separate file for read-model tables.  [default: the store]",
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
    typer.Option("--output", "-o", help="Output format (overrides the global --output)."),
]


# One module per command group; each registers its commands on `app` when imported.
COMMAND_MODULES = ("store_commands", "aggregate_commands", "projection_commands")


def register() -> None:
    from importlib import import_module

    for name in COMMAND_MODULES:
        import_module(f"esctl.cli.{name}")


register()
