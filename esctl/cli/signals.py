"""Stopping a command that runs until it is told to: Ctrl-C and SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Stopped:
    """How a following command was stopped: `terminated` by SIGTERM (else Ctrl-C)."""

    terminated = False

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process killed by it."""
        return 128 + (signal.SIGTERM if self.terminated else signal.SIGINT)


@contextmanager
def sigterm_as_interrupt() -> Iterator[Stopped]:
    """SIGTERM raises KeyboardInterrupt inside, as Ctrl-C does (so `finally`
    blocks and rollbacks run); the yielded Stopped says which it was."""
    stopped = Stopped()

    def on_term(_signum: int, _frame: Any) -> None:
        stopped.terminated = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield stopped
    finally:
        signal.signal(signal.SIGTERM, previous)
