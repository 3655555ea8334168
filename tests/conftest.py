"""Fixtures shared by every test module: a fresh store, and the CLI against it."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from typer.testing import CliRunner

from esctl.cli.app import app
from esctl.store import EventStore

# Hypothesis for the whole suite: no check that measures wall time, so a loaded
# machine (2 cores, other jobs) cannot fail a property that holds. too_slow is the
# only timing-based health check; the deadline is the other timing limit. Every
# property still runs its examples (max_examples is left as each test sets it).
# A test that passes suppress_health_check of its own extends this list, as in
# `[*settings.default.suppress_health_check, HealthCheck.function_scoped_fixture]`.
settings.register_profile(
    "esctl", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("esctl")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Path of a store that does not exist yet."""
    return tmp_path / "events.db"


@pytest.fixture
def store(db: Path):
    with EventStore.open(db, create=True) as s:
        yield s


@pytest.fixture
def cli(db: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    """Run esctl against the test's store: cli("append", "s-1", "T", input=...)."""
    runner = CliRunner()
    for var in ("ESCTL_DB", "ESCTL_MODEL", "ESCTL_READ_DB", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)

    def run(*args: str, input: str | bytes | None = None, db_path: Path | None = None):
        return runner.invoke(app, ["--db", str(db_path or db), *args], input=input)

    return run


@pytest.fixture
def old(tmp_path: Path) -> Path:
    """A copy of the schema-1 store made by the release before schema 2
    (tests/fixtures/README.md)."""
    import shutil

    from tests.helpers import FIXTURES

    path = tmp_path / "old.db"
    shutil.copy(FIXTURES / "schema1.db", path)
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server's URL (tests/postgres.py): skipped, with the reason,
    only where no PostgreSQL is installed."""
    from tests import postgres

    if not os.environ.get(postgres.URL_ENV) and postgres.binaries() is None:
        reason = "no PostgreSQL installed: set ESCTL_TEST_POSTGRES_URL or install PostgreSQL"
        if os.environ.get(postgres.REQUIRED_ENV):  # CI: these tests must run
            pytest.fail(reason)
        pytest.skip(reason)
    with postgres.server_url() as url:
        yield url


BACKENDS = ("sqlite", "postgres")


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, db: Path) -> Iterator[str]:
    """A URL for a store that does not exist yet, once per backend: what the
    contract suites and the CLI tests that touch the store run against. After the
    test, the streams table and the counters must equal what the events say, and
    the store's own check must find nothing."""
    from esctl import store as backends
    from tests.helpers import derived

    if request.param == "sqlite":
        yield str(db)
        if db.exists():
            import sqlite3

            conn = sqlite3.connect(db)
            kept, computed = derived(conn)
            conn.close()
            assert kept == computed
            with backends.open(db) as store:
                assert store.check() == []
        return
    import psycopg

    from tests import postgres

    with postgres.fresh_schema(request.getfixturevalue("postgres_url")) as url:
        yield url
        with psycopg.connect(url) as conn:
            if conn.execute("SELECT to_regclass('events')").fetchone()[0] is not None:
                kept, computed = derived(conn)
                assert kept == computed
                with backends.open(url) as store:
                    assert store.check() == []


@pytest.fixture(autouse=True)
def sigint_handler_restored() -> Iterator[None]:
    """Every test leaves the SIGINT handler as it found it: a test that left SIGINT
    ignored would make a later Ctrl-C test wait forever."""
    before = signal.getsignal(signal.SIGINT)
    yield
    assert signal.getsignal(signal.SIGINT) is before, "the test changed the SIGINT handler"


@pytest.fixture
def open_models(store):
    """open_models(): another connection to the store's read models (where they
    live by default), closed after the test."""
    from tests.helpers import read_models_of

    opened = []

    def another():
        opened.append(read_models_of(store))
        return opened[-1]

    yield another
    for db in opened:
        db.close()
