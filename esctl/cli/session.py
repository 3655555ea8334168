"""One esctl invocation's session: the global options and what they open.

The root callback puts a `Session` in the Typer context; every command asks for it
with `session(ctx)` and opens the store, the read models and the model through it,
so each is found, opened and reported the same way by every command."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

import typer

from esctl.cli import output
from esctl.cli.output import OutputFormat

if TYPE_CHECKING:
    from esctl.store import EventStore
    from esctl.store.readmodels import ReadModels

DEFAULT_DB = "events.db"
_UNLOADED = object()


@dataclass
class Session:
    db: str = DEFAULT_DB
    output_format: OutputFormat = OutputFormat.auto
    model_spec: str | None = None
    read_db: str | None = None
    pager: bool = True  # --no-pager turns it off
    _model: object = field(default=_UNLOADED, repr=False)

    @property
    def read_path(self) -> str:
        """Where the read models live: --read-db, else the store's own file."""
        return self.read_db or self.db

    def output(self, local: OutputFormat | None = None, *, listing: bool = False) -> output.Output:
        """The output for this command: its own -o, else the global one. A `listing`
        goes through the pager on a terminal (unless --no-pager)."""
        return output.Output(local or self.output_format, pager=listing and self.pager)

    def model(self, *, required: bool = False) -> ModuleType | None:
        """The user's model module (loaded once), or None when none is configured."""
        if self._model is _UNLOADED:
            from esctl.model import configured_model, load_model

            spec = configured_model(self.model_spec)
            self._model = load_model(spec) if spec is not None else None
        if self._model is None and required:
            from esctl.errors import InvalidInput

            raise InvalidInput("no model: give --model PATH_OR_MODULE, ESCTL_MODEL, or [tool.esctl] model")
        return self._model  # type: ignore[return-value]

    @contextmanager
    def store(
        self, *, create: bool = False, announce: bool = True, url: str | None = None
    ) -> Iterator[EventStore]:
        """The store (--db, or `url`), closed afterwards. A store this command created is announced on
        stderr when the command succeeds (a mistyped --db shows at once), and removed
        again when it fails with nothing written, so a refused write leaves no empty
        store behind."""
        from esctl import store as backends

        store = backends.open(url or self.db, create=create)
        try:
            yield store
        except BaseException:
            store.close(discard_if_new_and_empty=True)  # batches may have committed
            raise
        store.close()
        if store.created and announce:
            output.note(f"created a new store at {store.location}")
        if store.read_only is not None:  # after the output; a failed write said so itself
            output.note(
                f"{store.location} is read-only ({store.read_only}): it was read, nothing can be written"
            )
        elif store.outdated:
            output.note(
                f"{store.location} has schema {store.schema_version}, from an earlier esctl:"
                " 'esctl migrate' upgrades it; writes are refused until then"
            )

    def read_models(self, store: EventStore, *, create: bool = False) -> ReadModels | None:
        """The read models: in --read-db (a SQLite file) when given, else where the
        store lives; None when they do not exist yet (and `create` is false)."""
        from esctl.store.readmodels import open_read_models

        return open_read_models(store, self.read_db, create=create)


def session(ctx: typer.Context) -> Session:
    obj = ctx.find_root().obj
    if not isinstance(obj, Session):  # a command invoked without the root callback
        obj = Session(db=os.environ.get("ESCTL_DB", DEFAULT_DB))
    return obj
