"""The Typer application: global options, error handling, and command registration.

Every EsctlError becomes one line on stderr and its documented exit code; a closed
pipe ends quietly; no traceback reaches a user (ESCTL_DEBUG=1 shows one)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from typer.core import TyperGroup

from esctl import __version__
from esctl.cli import output
from esctl.cli.output import OutputFormat
from esctl.errors import EsctlError

if TYPE_CHECKING:
    from esctl.store import EventStore


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


@dataclass
class Settings:
    db: str
    output: OutputFormat
    model: str | None
    read_db: str | None


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
            "--db", envvar="ESCTL_DB", metavar="PATH", help="Event store file.  [default: ./events.db]"
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
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    if db == "" or read_db == "":
        raise typer.BadParameter("must not be empty", param_hint="--db" if db == "" else "--read-db")
    ctx.obj = Settings(db=db or "events.db", output=output_format, model=model, read_db=read_db)


def settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    if not isinstance(obj, Settings):  # a command invoked without the root callback
        obj = Settings(os.environ.get("ESCTL_DB", "events.db"), OutputFormat.auto, None, None)
    return obj


# Every read command accepts -o after the command too; it overrides the global one.
OutputOption = Annotated[
    Optional[OutputFormat],
    typer.Option("--output", "-o", help="Output format (overrides the global --output)."),
]


def output_for(ctx: typer.Context, local: OutputFormat | None) -> output.Output:
    return output.Output(local or settings(ctx).output)


def load_model(ctx: typer.Context, *, required: bool = False):  # type: ignore[no-untyped-def]
    """The user's model module, or None when none is configured (unless `required`)."""
    from esctl.model import configured_model
    from esctl.model import load_model as load

    spec = configured_model(settings(ctx).model)
    if spec is None:
        if required:
            from esctl.errors import InvalidInput

            raise InvalidInput("no model: give --model PATH_OR_MODULE, ESCTL_MODEL, or [tool.esctl] model")
        return None
    return load(spec)


@contextmanager
def open_store(ctx: typer.Context, *, create: bool = False) -> Iterator[EventStore]:
    """The store, closed afterwards. A store that this command created is removed
    again when the command fails with nothing written: a refused write leaves no
    empty store behind."""
    from esctl.store import EventStore

    store = EventStore.open(settings(ctx).db, create=create)
    try:
        yield store
    except BaseException:
        empty = store.created and store.head_position() == 0  # batches may have committed
        store.close()
        if empty:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(store.path + suffix)
        raise
    store.close()


# One module per command group; each registers its commands on `app` when imported.
COMMAND_MODULES = ("store_commands", "aggregate_commands", "projection_commands")


def register() -> None:
    from importlib import import_module

    for name in COMMAND_MODULES:
        import_module(f"esctl.cli.{name}")


register()
