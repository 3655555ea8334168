"""esctl help [COMMAND [SUBCOMMAND]]: the help `--help` prints, by another name."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from esctl.cli import completion
from esctl.cli.app import app
from esctl.errors import InvalidInput


@app.command("help")
def help_(
    ctx: typer.Context,
    command: Annotated[
        Optional[str],
        typer.Argument(help="A command; none: esctl's own help.", autocompletion=completion.commands),
    ] = None,
    subcommand: Annotated[
        Optional[str],
        typer.Argument(
            help="A subcommand of a group (esctl help project run).", autocompletion=completion.subcommands
        ),
    ] = None,
) -> None:
    """Show a command's help: esctl help read prints esctl read --help.

    Examples:
      esctl help
      esctl help append
      esctl help project run
    """
    target, asked = ctx.find_root(), []
    for name in (command, subcommand):
        if name is None:
            break
        asked.append(name)
        if not isinstance(target.command, TyperGroup):
            raise InvalidInput(f"no command {' '.join(asked)!r}: {target.command_path} has no subcommands")
        found = target.command.get_command(target, name)
        if found is None:
            raise InvalidInput(f"no command {' '.join(asked)!r}: {target.command_path} --help lists them")
        # As `esctl COMMAND --help` would: a context per command on the way, parsing nothing.
        target = found.make_context(name, [], parent=target, resilient_parsing=True)
    typer.echo(target.get_help(), color=target.color)
