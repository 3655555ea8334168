"""Handing an event to a shell command: the envelope as JSON on its stdin, what it
needs to know in its environment, exit 0 for success."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable

from esctl.ndjson import envelope_line
from esctl.store.rows import StoredRow
from esctl.subscriptions.consumer import Delivery, Outcome

ERROR_LINES = 20  # of the command's stderr kept with a failure
GRACE = 2.0  # seconds between SIGTERM and SIGKILL


class ShellCommand:
    """`sh -c COMMAND` per event, in a process group of its own: a timeout, or a
    Ctrl-C or SIGTERM to esctl, sends SIGTERM to the whole group (what it started
    too), then SIGKILL to what is left after GRACE seconds. Its stdout goes to
    esctl's stderr (esctl's stdout is the consumer's report); its stderr passes
    through as well, and the last lines are kept with a failure."""

    def __init__(
        self,
        command: str,
        *,
        timeout: float | None = None,
        encode: Callable[[StoredRow], bytes] = envelope_line,
    ) -> None:
        self.command = command
        self.timeout = timeout
        self.encode = encode  # the stdin it gets: the envelope, or a published form

    def __call__(self, delivery: Delivery) -> Outcome:
        row = delivery.row
        env = {
            **os.environ,
            "ESCTL_GROUP": delivery.group,
            "ESCTL_EVENT_ID": row.id,
            "ESCTL_POSITION": str(row.position),
            "ESCTL_STREAM": row.stream,
            "ESCTL_VERSION": str(row.version),
            "ESCTL_TYPE": row.type,
            "ESCTL_ATTEMPT": str(delivery.attempt),
            "ESCTL_IDEMPOTENCY_KEY": delivery.idempotency_key,
        }
        stdin = self.encode(row)  # before the command starts: a contract it breaks fails the attempt
        try:
            stdout: int = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):  # a stderr that is no file (a test's capture)
            stdout = subprocess.PIPE
        proc = subprocess.Popen(
            ["/bin/sh", "-c", self.command],
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(stdin, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _end(proc)
            return Outcome(False, None, f"timed out after {self.timeout:g} s (--timeout)")
        except BaseException:  # Ctrl-C, SIGTERM: the command goes with esctl
            _end(proc)
            raise
        if out:
            sys.stderr.write(out.decode("utf-8", "replace"))
        text = err.decode("utf-8", "replace")
        if text:
            sys.stderr.write(text)
            sys.stderr.flush()
        if proc.returncode == 0:
            return Outcome(True, 0)
        tail = "\n".join(deque(text.splitlines(), maxlen=ERROR_LINES))
        code = proc.returncode
        reason = f"killed by signal {-code}" if code < 0 else f"exit {code}"
        return Outcome(False, code, tail or reason)


def _end(proc: subprocess.Popen[bytes]) -> None:
    """End the command's whole process group, politely first, and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=GRACE)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # what the shell started may outlive it
    proc.wait()
