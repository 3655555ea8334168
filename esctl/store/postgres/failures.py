"""PostgreSQL's errors as esctl explains them: a server that cannot be reached or
went away, a lock held too long, a full disk, a role that may not write, each a
StoreError subclass naming the store (its URL without the password); anything
else (a constraint, an SQL error: a bug) is left as it is. Told apart by
SQLSTATE, never by message text."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from psycopg import errors

from esctl.errors import EsctlError, StoreBusy, StoreError, StoreFull, StoreReadOnly

LOST = (
    "the transaction was rolled back or its outcome is unknown: an append retried"
    " with the same ids does nothing twice"
)


def classify(exc: psycopg.Error, where: str) -> EsctlError | None:
    if isinstance(exc, errors.TransactionRollback):  # a deadlock or a serialization failure
        return StoreBusy(f"{where} is busy ({_first_line(exc)}): the transaction was rolled back; try again")
    if isinstance(exc, errors.LockNotAvailable):
        return StoreBusy(f"{where} is busy: another writer held its lock too long; try again")
    if isinstance(exc, errors.DiskFull | errors.OutOfMemory):
        return StoreFull(f"the server is out of space: cannot write {where}; the transaction was rolled back")
    if isinstance(exc, errors.InsufficientPrivilege | errors.ReadOnlySqlTransaction):
        return StoreReadOnly(f"{_first_line(exc)}: cannot write {where}")
    if isinstance(exc, errors.InvalidSchemaName | errors.InvalidCatalogName):
        return StoreError(
            f"{where}: {_first_line(exc)} (the URL's options=-csearch_path=... names a schema to use)"
        )
    if isinstance(exc, errors.QueryCanceled):
        return StoreError(f"{where}: {_first_line(exc)}; the transaction was rolled back")
    if isinstance(exc, errors.TooManyConnections | errors.ProgramLimitExceeded):
        return StoreError(f"{where}: {_first_line(exc)}")
    if isinstance(exc, psycopg.OperationalError | errors.AdminShutdown | errors.CrashShutdown):
        return StoreError(f"lost the connection to {where} ({_first_line(exc)}); {LOST}")
    return None


def translate(exc: BaseException, where: str) -> BaseException:
    if isinstance(exc, psycopg.Error):
        return classify(exc, where) or exc
    return exc


@contextlib.contextmanager
def translated(where: str) -> Iterator[None]:
    try:
        yield
    except psycopg.Error as exc:
        error = classify(exc, where)
        if error is None:
            raise
        raise error from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
