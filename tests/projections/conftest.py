"""Fixtures for the projection tests: models written to files, stores with events,
and a read-model connection."""

from __future__ import annotations

import itertools
import sqlite3
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import esctl.model
from esctl.events import NewEvent
from esctl.store import EventStore
from esctl.store.sqlite.readmodels import SQLiteReadModels
from tests.helpers import read_models_of  # noqa: F401 - for the test modules that import it from here

ROOT = Path(__file__).resolve().parents[2]
BANK = ROOT / "sample_streams" / "bank"

# A small counter model: one row per stream, and a log table without a key.
COUNTER_MODEL = """
from esctl.projections import Projection, Table

counts = Projection(
    "counts",
    Table("counts", {"stream": str, "n": int, "total": int, "last": int}, pk="stream"),
    Table("log", {"stream": str, "type": str}),
)

@counts.on("Added", "Removed")
def changed(event, db):
    row = db["counts"].get(event.stream) or {"n": 0, "total": 0}
    sign = 1 if event.type == "Added" else -1
    db["counts"].upsert({
        "stream": event.stream,
        "n": row["n"] + 1,
        "total": row["total"] + sign * event.data.get("x", 0),
        "last": event.version,
    })
    db["log"].insert({"stream": event.stream, "type": event.type})
"""

_counter = itertools.count()


@pytest.fixture(autouse=True)
def fresh_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget models imported earlier, as a new process would."""
    monkeypatch.setattr(esctl.model, "_loaded", {})


@pytest.fixture
def write_model(tmp_path: Path) -> Callable[[str], Path]:
    """Write model source to a new file (a new name each time: a changed model is a
    new file, so no import cache can hide the change) and return its path."""

    def write(source: str, name: str | None = None) -> Path:
        path = tmp_path / f"{name or 'model'}_{next(_counter)}.py"
        path.write_text(textwrap.dedent(source))
        return path

    return write


@pytest.fixture
def load(write_model: Callable[[str], Path]) -> Callable[[str], Any]:
    """The module of a model written from source."""

    def load_source(source: str) -> Any:
        return esctl.model.load_model(str(write_model(source)))

    return load_source


@pytest.fixture
def append() -> Callable[..., None]:
    """append(store, stream, type, data=None): one event."""

    def add(store: EventStore, stream: str, event_type: str, data: dict | None = None) -> None:
        store.append(stream, [NewEvent(stream, event_type, data or {})])

    return add


@pytest.fixture
def read_conn(store: EventStore) -> SQLiteReadModels:
    """The read models in the store's own file."""
    db = SQLiteReadModels.open(store.path, create=True)
    yield db
    db.close()


@pytest.fixture
def rows() -> Callable[..., list[tuple]]:
    """rows(path, table, order="rowid"): a table's rows read with plain sqlite3."""

    def read(path: str | Path, table: str, order: str = "rowid") -> list[tuple]:
        conn = sqlite3.connect(path)
        try:
            return conn.execute(f'SELECT * FROM "{table}" ORDER BY {order}').fetchall()
        finally:
            conn.close()

    return read
