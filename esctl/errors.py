"""Errors the library raises; each carries the CLI exit code documented in README."""

from __future__ import annotations


def shown(value: object, width: int = 60) -> str:
    """A value as an error message quotes it: as JSON (input is JSON), else its repr,
    cut to `width` characters."""
    import orjson

    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def check_utf8(text: str, what: str) -> None:
    """Names, ids, JSON and SQL are UTF-8 in the store. Bytes that are not arrive
    from the command line or the environment as lone surrogates: they are named here
    (`{what} is not valid UTF-8 (byte 0xff at character 9)`) instead of failing deep
    inside as an encoding error."""
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        bad = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
        raise InvalidInput(f"{what} is not valid UTF-8 ({bad} at character {exc.start + 1})") from None


class EsctlError(Exception):
    """Base class: a failure esctl explains to its user without a traceback."""

    exit_code = 1


class StoreError(EsctlError):
    """The environment is wrong: not an esctl store, unknown schema, unreadable file.
    Its subclasses name what the environment did (esctl.store.sqlite.failures classifies
    SQLite's errors into them)."""

    exit_code = 1


class StoreReadOnly(StoreError):
    """The store cannot be written: a read-only file system, a file or directory
    without write permission. Reading still works."""


class StoreFull(StoreError):
    """The disk (or the database's size limit) is full; the write was rolled back."""


class StoreDamaged(StoreError):
    """The store's file is corrupt, or a stored row is not what esctl wrote."""


class StoreOutdated(StoreError):
    """The store has an older schema: it reads, and `esctl migrate` upgrades it
    before anything can be written."""


class StoreBusy(StoreError):
    """Another process held the store's write lock for longer than the busy timeout."""


class InvalidInput(EsctlError):
    """Bad input from the user: malformed JSON, a bad name, a wrong field."""

    exit_code = 2


class ModelError(InvalidInput):
    """The model is wrong: a bad definition, or a handler that raised or returned
    something esctl cannot use. The message names the handler and, when known, the
    user's file and line (`where`, 'FILE, line N: ', which starts the message)."""

    def __init__(self, message: str, where: str = "") -> None:
        self.where = where
        super().__init__(f"{where}{message}")


class ConcurrencyError(EsctlError):
    """An optimistic-concurrency check failed, or an event id was reused."""

    exit_code = 3


class WrongExpectedVersion(ConcurrencyError):
    def __init__(self, stream: str, expected: object, actual: int, where: str = "") -> None:
        self.stream, self.expected, self.actual = stream, expected, actual
        super().__init__(
            f"{where}wrong expected version for stream {stream!r}: expected {expected}, actual {actual}"
        )


class DuplicateEventId(ConcurrencyError):
    def __init__(self, event_id: str, stream: str, version: int, where: str = "") -> None:
        self.event_id = event_id
        super().__init__(
            f"{where}event id {event_id} is already used by {stream!r} version {version},"
            " with a different stream, type, data or metadata"
        )


class NotFound(EsctlError):
    exit_code = 4


class VerificationFailed(EsctlError):
    """A check found differences (for example a read model that does not match a rebuild)."""

    exit_code = 5


class CommandRejected(EsctlError):
    """A command handler refused the command; nothing was written."""

    exit_code = 6


class QueryTimeout(EsctlError):
    """A query ran past its time limit and was stopped (124, as GNU timeout exits)."""

    exit_code = 124
