"""Commands that react to events, on every backend: `follow` (each event once, in
order, filtered, from where told; Ctrl-C 130 and SIGTERM 143 without a word),
`consume` (a command per event with its envelope and keys; retries, parking;
kill -9 at chosen points; one runner per group), `dlq` and `consumers`."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

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


# --- consume, dlq, consumers ---------------------------------------------------------

# Applies each event once by its idempotency key, and logs every run of it.
IDEMPOTENT = (
    'key="$ESCTL_IDEMPOTENCY_KEY"; grep -qxF "$key" applied 2>/dev/null || echo "$key" >> applied;'
    ' echo "$ESCTL_POSITION $ESCTL_ATTEMPT" >> ran'
)


def run(url: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    return subprocess.run(
        [sys.executable, "-m", "esctl", "--db", url, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=HANG,
    )


def test_consume_runs_the_command_per_event_with_its_envelope_and_keys(url, tmp_path) -> None:
    append(url, "order-1", "Placed", "Paid")
    command = 'cat > "env-$ESCTL_POSITION.json"; env | grep ^ESCTL_ | sort > "env-$ESCTL_POSITION.txt"'
    done = run(url, "consume", "mailer", "order-1", "--exec", command, "--once", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(d["position"], d["outcome"], d["attempt"]) for d in lines] == [(2, "ok", 1), (3, "ok", 1)]
    envelope = json.loads((tmp_path / "env-2.json").read_text())
    assert (envelope["stream"], envelope["version"], envelope["type"]) == ("order-1", 1, "Placed")
    env = dict(line.split("=", 1) for line in (tmp_path / "env-2.txt").read_text().splitlines())
    assert env["ESCTL_EVENT_ID"] == envelope["id"] and env["ESCTL_POSITION"] == "2"
    assert env["ESCTL_ATTEMPT"] == "1" and env["ESCTL_IDEMPOTENCY_KEY"] == f"mailer:{envelope['id']}"
    again = run(url, "consume", "mailer", "order-1", "--exec", command, "--once", cwd=tmp_path)
    assert (again.returncode, again.stdout) == (0, "")  # nothing new: nothing run


def test_a_failing_command_is_retried_then_parked_and_dlq_re_drives_it(url, tmp_path) -> None:
    append(url, "order-1", "Placed", "Paid", "Shipped")
    (tmp_path / "broken").write_text("")
    command = (
        'if [ -e broken ] && [ "$ESCTL_TYPE" = Paid ]; then echo "smtp down" >&2; exit 7; fi; ' + IDEMPOTENT
    )
    args = ["consume", "mailer", "order-1", "--exec", command, "--once", "--retries", "2", "--backoff", "0:0"]
    first = run(url, *args, cwd=tmp_path)
    outcomes = [(d["position"], d["outcome"]) for d in map(json.loads, first.stdout.splitlines())]
    assert outcomes == [(2, "ok"), (3, "failed"), (3, "failed"), (3, "parked"), (4, "held")]
    assert first.returncode == 0
    assert first.stderr.count("smtp down") == 3  # the command's stderr passes through
    assert first.stderr.endswith("esctl: parked 1 event(s): esctl dlq list mailer\n")
    listed = [json.loads(line) for line in run(url, "dlq", "list", "mailer").stdout.splitlines()]
    assert [(p["position"], p["state"], p["attempts"], p["exit_code"]) for p in listed] == [
        (3, "parked", 3, 7),
        (4, "held", 0, None),
    ]
    shown = json.loads(run(url, "dlq", "show", "mailer", "3").stdout)
    assert shown["error"] == "smtp down" and shown["event"]["type"] == "Paid"
    status = {d["name"]: d for d in map(json.loads, run(url, "consumers").stdout.splitlines())}
    assert (status["mailer"]["kind"], status["mailer"]["parked"], status["mailer"]["lag"]) == (
        "consumer",
        2,
        0,
    )
    (tmp_path / "broken").unlink()
    retried = run(url, "dlq", "retry", "mailer", "3")
    assert json.loads(retried.stdout) == {"consumer": "mailer", "retried": [3, 4]}
    second = run(url, *args, cwd=tmp_path)
    assert [(d["position"], d["outcome"]) for d in map(json.loads, second.stdout.splitlines())] == [
        (3, "ok"),
        (4, "ok"),
    ]
    assert [line.split()[0] for line in (tmp_path / "ran").read_text().splitlines()] == ["2", "3", "4"]
    assert run(url, "dlq", "list", "mailer").stdout == ""


def test_dlq_errors_name_what_is_missing(url) -> None:
    assert run(url, "consume", "g", "--all", "--exec", "true", "--once").returncode == 0
    for args, message in [
        (["dlq", "show", "nope", "1"], "esctl: error: no consumer group 'nope' (groups: g)\n"),
        (["dlq", "skip", "g", "1"], "esctl: error: consumer 'g' has parked no event at position 1\n"),
        (["dlq", "retry", "g"], "esctl: error: give a POSITION or --all (not both)\n"),
    ]:
        done = run(url, *args)
        assert (done.stdout, done.stderr) == ("", message)
        assert done.returncode == (2 if "give a" in message else 4)


@pytest.mark.slow
def test_a_consumer_killed_with_minus_9_loses_nothing_and_applies_nothing_twice(url, tmp_path) -> None:
    """20 kills at chosen points (after the k-th run of the command since the
    start): each event's command succeeds at least once, the checkpoint never
    passes an event whose command did not succeed, and no key is applied twice."""
    from esctl.store.consumers import ConsumerStore

    for i in range(60):  # more than 20 kills can reach, at 2 runs each
        append(url, f"order-{i % 4}", f"E{i}")
    rng = random.Random(20)
    ran = tmp_path / "ran"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    with backends.open(url) as store:
        ids = {e.position: e.id for e in store.read_all()}
    for _trial in range(20):
        seen = len(ran.read_text().splitlines()) if ran.exists() else 0
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "esctl",
                "--db",
                url,
                "consume",
                "g",
                "--all",
                "--exec",
                IDEMPOTENT,
                "--lease",
                "0.5",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        target = seen + rng.randint(1, 2)
        deadline = time.monotonic() + HANG
        while (not ran.exists() or len(ran.read_text().splitlines()) < target) and proc.poll() is None:
            assert time.monotonic() < deadline, "the consumer made no progress"
            time.sleep(0.005)  # polling the file: the barrier
        proc.kill()
        proc.wait()
        applied = (
            set((tmp_path / "applied").read_text().splitlines()) if (tmp_path / "applied").exists() else set()
        )
        with backends.open(url) as store:
            db = store.read_models(create=True)
            checkpoint = ConsumerStore(db).get("g").checkpoint
            db.close()
        assert all(f"g:{ids[p]}" in applied for p in range(1, checkpoint + 1)), checkpoint
    done = run(url, "consume", "g", "--all", "--exec", IDEMPOTENT, "--once", "--lease", "0.5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    keys = (tmp_path / "applied").read_text().splitlines()
    assert sorted(keys) == sorted(f"g:{ids[p]}" for p in range(1, 62))  # each once
    assert len(keys) == len(set(keys))


def test_a_second_runner_waits_and_takes_over_from_a_killed_one(url, tmp_path) -> None:
    append(url, "order-1", "A")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    cmd = [
        sys.executable,
        "-m",
        "esctl",
        "--db",
        url,
        "consume",
        "g",
        "order-1",
        "--exec",
        IDEMPOTENT,
        "--lease",
        "0.5",
    ]
    first = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    second = None
    try:
        assert json.loads(first.stdout.readline())["outcome"] == "ok"  # it holds the group
        second = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        note = second.stderr.readline()
        assert "is being run by" in note and note.endswith("waiting for it\n")
        first.kill()
        first.wait()
        append(url, "order-1", "B")
        taken = json.loads(second.stdout.readline())  # within the lease time, it goes on
        assert (taken["position"], taken["outcome"]) == (3, "ok")
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill()
                proc.wait()
    keys = (tmp_path / "applied").read_text().splitlines()
    assert len(keys) == 2 == len(set(keys))


def test_ctrl_c_stops_a_waiting_consumer_with_130_and_loses_nothing(url, tmp_path) -> None:
    append(url, "order-1", "A")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "esctl", "--db", url, "consume", "g", "--all", "--exec", IDEMPOTENT],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    from esctl.store.consumers import ConsumerStore

    def checkpoint() -> int:
        with backends.open(url) as store:
            db = store.read_models(create=False)
            try:
                return ConsumerStore(db).get("g").checkpoint
            finally:
                db.close()

    try:
        assert proc.stderr.readline().startswith("esctl: consumer 'g': following all events")
        assert [json.loads(proc.stdout.readline())["position"] for _ in range(2)] == [1, 2]
        deadline = time.monotonic() + HANG
        while checkpoint() < 2:  # the barrier: its batch is saved, it waits for more
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=HANG)
    finally:
        proc.kill()
    assert (proc.returncode, out, err) == (130, "", "")  # quiet, as follow
    assert checkpoint() == 2
    assert len((tmp_path / "applied").read_text().splitlines()) == 2
