"""Fixtures for the aggregate tests: the sample orders model, a store with its
events imported, and small models written to files for the CLI."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

import esctl.model
from esctl.model import load_model
from esctl.store import EventStore

ROOT = Path(__file__).resolve().parents[2]
ORDERS = ROOT / "sample_streams" / "orders"
ORDERS_MODEL = ORDERS / "model.py"
ORDERS_EVENTS = ORDERS / "events.ndjson"


@pytest.fixture
def orders() -> ModuleType:
    """The sample model module (Order, its state classes and upcaster)."""
    return load_model(str(ORDERS_MODEL))


@pytest.fixture
def orders_db(cli, db: Path) -> Path:
    """A store holding sample_streams/orders/events.ndjson."""
    result = cli("import", str(ORDERS_EVENTS))
    assert result.exit_code == 0, result.stderr
    return db


@pytest.fixture
def fresh_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget models imported by earlier CLI calls, as a new process would."""
    monkeypatch.setattr(esctl.model, "_loaded", {})


@pytest.fixture
def write_model(tmp_path: Path, fresh_models: None) -> Callable[[str, str], Path]:
    """Write a model file (dedented) and return its path; rewriting the same name
    is a code change, as in a new process."""

    def write(source: str, name: str = "model_under_test") -> Path:
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        esctl.model._loaded.clear()
        return path

    return write


@pytest.fixture
def rw_store(db: Path):
    with EventStore.open(db, create=True) as s:
        yield s


COUNTER_MODEL = """
    from esctl.aggregates import Aggregate, CommandRejected, command, evolve, upcaster


    class Counter(Aggregate):
        category = "counter"
        initial = {"count": 0, "seen": {}}

        @evolve("Added")
        def added(state, data):
            state["count"] += data["n"]
            return state

        @evolve("Labelled")
        def labelled(state, data, event):
            state["seen"][data["label"]] = event.version
            return state

        @command("add")
        def add(state, args):
            n = args.get("n", 1)
            if n <= 0:
                raise CommandRejected("n must be positive")
            return [("Added", {"n": n})]

        @command("label")
        def label(state, args, context):
            return ("Labelled", {"label": f"{args['label']}@{context.version}"})


    @upcaster("Added", from_schema=1)
    def added_amount_to_n(data):
        return {"n": data["amount"]}
"""
