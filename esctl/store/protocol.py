"""What every backend provides: the event store's interface, as typing Protocols.

The SQLite backend (`esctl.store.sqlite.EventStore`) is the first to satisfy it;
everything outside `esctl/store/` depends on these methods only, never on a
backend's connection. tests/store_contract.py checks the behaviour behind them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from esctl.events import ExpectedVersion, NewEvent
    from esctl.store.readmodels import ReadModels
    from esctl.store.results import AppendResult, ImportSummary, StreamSummary
    from esctl.store.rows import StoredRow
    from esctl.store.snapshot import Snapshot


@runtime_checkable
class SnapshotStore(Protocol):
    """Aggregates' states at versions, kept beside the events."""

    def latest(self, stream: str, fingerprint: str, max_version: int) -> Snapshot | None: ...

    def list(self, stream: str) -> list[Snapshot]: ...

    def save(
        self,
        stream: str,
        version: int,
        aggregate: str,
        fingerprint: str,
        state: str,
        *,
        wait_seconds: float | None = None,
    ) -> Snapshot: ...


@runtime_checkable
class EventStoreBackend(Protocol):
    """An append-only event store: versions gapless per stream, positions global,
    gapless and in commit order, atomic batches, idempotent ids."""

    path: str  # what opens it again: a file's path, or a URL
    location: str  # how messages name it (a URL without its password)
    created: bool
    read_only: str | None
    schema_version: int
    snapshots: SnapshotStore

    # writing
    def append(
        self, stream: str, events: Iterable[NewEvent], expected_version: ExpectedVersion | str = ...
    ) -> AppendResult: ...

    def import_events(
        self,
        events: Iterable[tuple[str, NewEvent]],
        *,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ImportSummary: ...

    def import_stored(self, rows: Sequence[StoredRow]) -> None: ...

    def migrate(self, *, backup: bool = True) -> dict[str, Any]: ...

    # reading
    def head_position(self) -> int: ...

    def stream_version(self, stream: str) -> int: ...

    def read_stream(
        self,
        stream: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        raw: bool = False,
    ) -> Iterator[Any]: ...

    def read_stream_data(
        self, stream: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Iterator[tuple[int, str, str]]: ...

    def read_all(
        self,
        *,
        from_position: int = 1,
        to_position: int | None = None,
        category: str | None = None,
        types: Iterable[str] = (),
        limit: int | None = None,
        raw: bool = False,
    ) -> Iterator[Any]: ...

    def first_version_of_type(self, stream: str, event_type: str) -> int | None: ...

    def first_version_after(self, stream: str, instant: str) -> int | None: ...

    def streams(
        self, *, category: str | None = None, limit: int | None = None
    ) -> Iterator[StreamSummary]: ...

    def stream_names(self, prefix: str = "", limit: int | None = None) -> list[str]: ...

    def info(self) -> dict[str, Any]: ...

    def check(self) -> list[str]: ...

    def stream_info(self, stream: str) -> dict[str, Any]: ...

    # the change feed: a token that moves when another connection commits
    def change_token(self) -> int: ...

    def wait_for_change(self, token: int, timeout: float) -> int: ...

    # where projections' tables and checkpoints live by default (esctl.store.readmodels)
    def read_models(self, *, create: bool) -> ReadModels | None:
        """The read models beside the events, on a connection of their own; None
        when there are none yet and `create` is false."""

    def close(self, *, discard_if_new_and_empty: bool = False) -> None: ...
