"""Shell completion of values: stream names from the store, command names for help.

Typer answers a completing shell (`_ESCTL_COMPLETE=complete_bash esctl ...`) before
any command runs. The functions here run then: they read the store named by the
partial command line (--db, else ESCTL_DB, else ./events.db) as `esctl read`
opens it, never create one, never raise (a shell prints tracebacks verbatim),
and offer at most LIMIT names.
"""

from __future__ import annotations

from typing import Any

LIMIT = 100


def streams(ctx: Any, incomplete: str) -> list[str]:
    """STREAM arguments: the store's streams whose names start with `incomplete`."""
    try:
        from esctl.cli.session import DEFAULT_DB

        db = ctx.find_root().params.get("db") or DEFAULT_DB
        return stream_names(db, incomplete)
    except Exception:
        return []


def stream_names(db: str, prefix: str = "", limit: int = LIMIT) -> list[str]:
    """The first `limit` stream names starting with `prefix`, in order. Opens the
    store as `esctl read` does (never creating it); the errors `read` would report
    are raised."""
    from esctl import store as backends

    with backends.open(db) as store:
        return store.stream_names(prefix, limit)


def commands(ctx: Any, incomplete: str) -> list[str]:
    """`esctl help COMMAND`: the command names."""
    try:
        return _subcommands(ctx.find_root().command, ctx, incomplete)
    except Exception:
        return []


def subcommands(ctx: Any, incomplete: str) -> list[str]:
    """`esctl help COMMAND SUBCOMMAND`: the subcommands of the group COMMAND names."""
    try:
        group = ctx.find_root().command.get_command(ctx, ctx.params.get("command") or "")
        return _subcommands(group, ctx, incomplete)
    except Exception:
        return []


def _subcommands(group: Any, ctx: Any, incomplete: str) -> list[str]:
    names = group.list_commands(ctx) if hasattr(group, "list_commands") else []
    return [name for name in names if name.startswith(incomplete)]
