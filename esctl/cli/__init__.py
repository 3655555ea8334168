"""The esctl command line: a thin Typer layer over the library."""


def main() -> None:
    from esctl.cli.app import app

    app(prog_name="esctl")
