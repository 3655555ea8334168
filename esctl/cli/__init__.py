"""The esctl command line: a thin Typer layer over the library."""

import os
import sys


def main() -> None:
    # A closed standard stream (`esctl read s-1 >&-`, `esctl import <&-`) reads as
    # empty and writes to nowhere, instead of failing deep inside a command.
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, mode))  # noqa: SIM115 - lives as long as the process

    try:
        from esctl.cli.app import app

        app(prog_name="esctl")
    except KeyboardInterrupt:  # before the app handles it: while starting up
        sys.stderr.write("esctl: interrupted\n")
        sys.exit(130)
