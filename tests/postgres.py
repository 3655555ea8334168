"""A PostgreSQL server for the tests: ESCTL_TEST_POSTGRES_URL when it is set,
else a throwaway one started from the installed binaries (initdb and pg_ctl into
a temporary directory, as the `postgres` user when the tests run as root, which
PostgreSQL refuses to run as), listening on a Unix socket in that directory only.
Tests that need it skip, naming the reason, only where no PostgreSQL is installed;
under `.ci/run` (ESCTL_REQUIRE_POSTGRES=1) they fail instead."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

URL_ENV = "ESCTL_TEST_POSTGRES_URL"
REQUIRED_ENV = "ESCTL_REQUIRE_POSTGRES"  # set by .ci/run: fail instead of skipping
PORT = 54329  # the socket lives in a directory of its own, so the port never clashes


def binaries() -> Path | None:
    """The directory holding initdb and pg_ctl, or None."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    return None


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextlib.contextmanager
def throwaway_server(*, fsync: bool = False) -> Iterator[str]:
    """Start a server, yield its libpq URL, stop it and remove its files. Without
    `fsync` (the tests) commits do not wait for the disk; bench/ turns it on."""
    bin_dir = binaries()
    if bin_dir is None:
        raise FileNotFoundError("no PostgreSQL installed (initdb not found)")
    root = Path(tempfile.mkdtemp(prefix="esctl-pg-"))
    data, socket_dir = root / "data", root / "socket"
    socket_dir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(socket_dir, "postgres")
        root.chmod(0o755)
    run = lambda *cmd: subprocess.run(_as_server_user(list(cmd)), check=True, capture_output=True)  # noqa: E731
    try:
        run(
            str(bin_dir / "initdb"), "-D", str(data), "-U", "esctl", "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        options = f"-k {socket_dir} -p {PORT} -c listen_addresses='' -c fsync={'on' if fsync else 'off'}"
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
        try:
            yield f"postgresql://esctl@/postgres?host={socket_dir}&port={PORT}"
        finally:
            subprocess.run(
                _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                capture_output=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def server_url() -> Iterator[str]:
    """ESCTL_TEST_POSTGRES_URL, else a throwaway server's URL."""
    given = os.environ.get(URL_ENV)
    if given:
        yield given
        return
    with throwaway_server() as url:
        yield url


_schemas = itertools.count(1)


def with_search_path(url: str, schema: str) -> str:
    """`url` with a libpq option that makes `schema` the connection's only schema."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def fresh_schema(server: str) -> Iterator[str]:
    """A URL whose tables live in a new, empty schema of the server's database
    (cheaper than a database per test); the schema is dropped afterwards, with
    the read models' schemas named after it (`<schema>_<projection>`)."""
    import psycopg

    name = f"esctl_test_{os.getpid()}_{next(_schemas)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield with_search_path(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            made = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = %s OR starts_with(nspname, %s)",
                (name, name + "_"),
            ).fetchall()
            for (schema,) in made:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def read_models_probe(store: object) -> object:
    """The read models of a PostgreSQL store, whose SQL outside a handler (a
    test's) finds every projection's tables by plain name, as `esctl query` does."""
    from esctl.store.postgres.readmodels import PostgresReadModels, search_path

    class Probe(PostgresReadModels):
        def execute(self, sql, params=()):  # type: ignore[no-untyped-def]
            if self._armed is None and not self.in_transaction:
                self.conn.execute("SELECT set_config('search_path', %s, false)", (search_path(self.conn),))
            return super().execute(sql, params)

    return Probe.open(store, create=True)  # type: ignore[arg-type]
