"""`esctl follow`: events printed as they are committed, once each and in order,
filtered, from the end or from a position; stopped by Ctrl-C (130) or SIGTERM
(143) without a word. On every backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from esctl import NewEvent
from esctl import store as backends

HANG = 60  # seconds before a stuck follower is killed (it fails the test, never hangs it)


class Follower:
    """`esctl follow ...` in a process of its own, stdout and stderr piped."""

    def __init__(self, url: str, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "esctl", "--db", url, "follow", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.watchdog = threading.Timer(HANG, self.proc.kill)
        self.watchdog.start()
        # The barrier: the note it prints once it knows where it starts.
        self.note = self.proc.stderr.readline()

    def events(self, n: int) -> list[dict]:
        lines = [self.proc.stdout.readline() for _ in range(n)]
        assert all(lines), f"the follower ended early: {self.proc.stderr.read()}"
        return [json.loads(line) for line in lines]

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, str, str]:
        self.proc.send_signal(signum)
        try:
            out, err = self.proc.communicate(timeout=HANG)
        finally:
            self.watchdog.cancel()
            self.proc.kill()
        return self.proc.returncode, out, err


@pytest.fixture
def url(store_url):
    with backends.open(store_url, create=True) as store:
        store.append("order-0", [NewEvent("order-0", "Before", {})])
    return store_url


def append(url: str, stream: str, *types: str) -> None:
    with backends.open(url) as store:
        store.append(stream, [NewEvent(stream, t, {"t": t}) for t in types])


def test_follow_prints_each_new_event_once_in_order_and_ctrl_c_exits_130(url) -> None:
    follower = Follower(url, "--all")
    assert follower.note.startswith("esctl: following all events in ")
    writers = [
        threading.Thread(target=append, args=(url, f"order-{w}", *[f"T{i}" for i in range(5)]))
        for w in range(1, 5)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    append(url, "order-1", "Last")
    events = follower.events(21)
    code, out, err = follower.stop()
    assert (code, out, err) == (130, "", "")  # quiet: nothing after the note
    assert [e["position"] for e in events] == list(range(2, 23))  # from the end: not position 1
    per_stream: dict[str, list[int]] = {}
    for e in events:
        per_stream.setdefault(e["stream"], []).append(e["version"])
    assert per_stream["order-1"] == [1, 2, 3, 4, 5, 6] and per_stream["order-4"] == [1, 2, 3, 4, 5]


def test_follow_filters_and_starts_where_told(url) -> None:
    append(url, "order-1", "Placed", "Shipped")
    append(url, "user-1", "Shipped")
    follower = Follower(url, "--all", "--category", "order", "--type", "Shipped", "--from-start")
    (first,) = follower.events(1)
    assert (first["stream"], first["type"]) == ("order-1", "Shipped")
    append(url, "user-2", "Shipped")
    append(url, "order-2", "Placed", "Shipped")
    (second,) = follower.events(1)
    assert (second["stream"], second["type"], second["position"]) == ("order-2", "Shipped", 7)
    code, out, _ = follower.stop(signal.SIGTERM)
    assert (code, out) == (143, "")


def test_follow_one_stream_from_a_position(url) -> None:
    append(url, "order-1", "A", "B", "C")
    follower = Follower(url, "order-1", "--from-position", "3")
    assert [e["type"] for e in follower.events(2)] == ["B", "C"]
    append(url, "order-2", "X")
    append(url, "order-1", "D")
    assert [(e["type"], e["version"]) for e in follower.events(1)] == [("D", 4)]
    assert follower.stop()[0] == 130


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a STREAM or --all (not both)"),
        (["s-1", "--all"], "give a STREAM or --all (not both)"),
        (["s-1", "--category", "s"], "--category applies to --all"),
        (["--all", "--from-start", "--from-position", "2"], "give --from-position or --from-start, not both"),
        (["--all", "-o", "json"], "follow never ends, so it prints NDJSON"),
    ],
)
def test_follow_usage_errors_are_one_line(cli, args, message) -> None:
    result = cli("follow", *args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"esctl: error: {message}")
    assert len(result.stderr.splitlines()) == 1
