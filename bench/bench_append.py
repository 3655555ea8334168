"""Library appends: 100 events to one stream per call, against Python `eventsourcing`'s
SQLite recorder and a hand-written executemany, on the same events in the same run.

    python bench/bench_append.py                 # 1,000 calls: 100,000 events
    python bench/bench_append.py --calls 200     # a quicker look
    python bench/bench_append.py --quick         # a smoke run

Each call writes a new stream (the streams of bench/benchlib.py, stream by stream)
in its own transaction, committed to disk (WAL, synchronous=FULL):

- esctl: `EventStore.append(stream, [100 NewEvent], NO_STREAM)`, ids generated;
- eventsourcing: `SQLiteApplicationRecorder.insert_events([100 StoredEvent])`
  (bench/peer_eventsourcing.py), run in bench/.venv-peer, which this bench creates
  with pip the first time; if eventsourcing cannot be installed, the peer is
  skipped with a message;
- hand-written: BEGIN IMMEDIATE, the stream's version, one executemany into the
  plain schema, COMMIT.

Every contender runs in its own child process on a new store, timing only its loop
(building its inputs from the same event dicts, serialising them and writing);
figures are medians of --runs runs, the contenders taking turns going first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import benchlib
import orjson
from benchlib import Sample, Series

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_VENV = os.path.join(HERE, ".venv-peer")
PEER_PYTHON = os.path.join(PEER_VENV, "bin", "python")
PEER_REQUIREMENTS = ["eventsourcing>=9.4,<10", "orjson>=3.10"]
PEER_SCRIPT = os.path.join(HERE, "peer_eventsourcing.py")


def esctl_worker(db: str, calls: int) -> dict[str, float]:
    from esctl import NO_STREAM, EventStore, NewEvent

    batches = benchlib.append_batches(calls)
    with EventStore.open(db, create=True) as store:
        cpu, start = time.process_time(), time.perf_counter()
        for stream, batch in batches:
            store.append(stream, [NewEvent(stream, e["type"], e["data"]) for e in batch], NO_STREAM)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        events = store.head_position()
    return {"wall": wall, "cpu": cpu, "events": events}


def raw_worker(db: str, calls: int) -> dict[str, float]:
    batches = benchlib.append_batches(calls)
    conn = benchlib.plain_store(db)
    insert = "INSERT INTO events (stream, version, type, data, metadata, id, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
    dumps, uuid7 = orjson.dumps, benchlib.uuid7
    cpu, start = time.process_time(), time.perf_counter()
    for stream, batch in batches:
        conn.execute("BEGIN IMMEDIATE")
        version = conn.execute(
            "SELECT coalesce(max(version), 0) FROM events WHERE stream = ?", (stream,)
        ).fetchone()[0]
        if version:
            raise SystemExit(f"{stream} exists")
        now = benchlib.utc_now()
        conn.executemany(
            insert,
            [
                (stream, version + i, e["type"], dumps(e["data"]).decode(), "{}", uuid7(), now)
                for i, e in enumerate(batch, 1)
            ],
        )
        conn.execute("COMMIT")
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    events = conn.execute("SELECT max(position) FROM events").fetchone()[0]
    conn.close()
    return {"wall": wall, "cpu": cpu, "events": events}


WORKERS = {"esctl": esctl_worker, "raw": raw_worker}


def peer_python() -> str | None:
    """The peer's interpreter, creating bench/.venv-peer if needed; None (and why, on
    stderr) when eventsourcing cannot be installed."""
    check = [PEER_PYTHON, "-c", "import eventsourcing.sqlite, orjson"]
    if os.path.exists(PEER_PYTHON) and subprocess.run(check, capture_output=True).returncode == 0:
        return PEER_PYTHON
    print(f"creating {os.path.relpath(PEER_VENV)} with {' '.join(PEER_REQUIREMENTS)} ...", file=sys.stderr)
    steps = (
        [sys.executable, "-m", "venv", "--clear", PEER_VENV],
        [PEER_PYTHON, "-m", "pip", "install", "-q", *PEER_REQUIREMENTS],
        check,
    )
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode:
            why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no message"]
            print(f"eventsourcing peer skipped: `{' '.join(step)}` failed: {why[0]}", file=sys.stderr)
            return None
    return PEER_PYTHON


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--calls", type=benchlib.parse_size, default=1_000, help="appends (streams), 100 events each"
    )
    parser.add_argument("--no-peer", action="store_true", help="skip eventsourcing")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    benchlib.add_common_options(parser, runs=3)
    args = parser.parse_args()
    if args.worker:
        json.dump(WORKERS[args.worker](args.db, args.calls), sys.stdout)
        return
    if args.quick:
        args.calls, args.runs = 20, 1

    contenders = {
        "esctl EventStore.append": [sys.executable, __file__, "--worker", "esctl"],
        "hand-written executemany": [sys.executable, __file__, "--worker", "raw"],
    }
    peer = None if args.no_peer else peer_python()
    if peer:
        contenders["eventsourcing SQLiteApplicationRecorder"] = [peer, PEER_SCRIPT]
    n = args.calls * benchlib.PER_STREAM
    print(
        f"{args.calls:,} appends of {benchlib.PER_STREAM} events ({n:,} events), each to a new stream;"
        f" {args.runs} runs; {benchlib.machine_note()}",
        flush=True,
    )

    series = {name: Series() for name in contenders}
    about: dict[str, str] = {}
    with benchlib.work_dir(args.dir) as work:
        db = os.path.join(work, "append.db")
        names = list(contenders)
        for run in range(args.runs):
            for name in names[run % len(names) :] + names[: run % len(names)]:
                benchlib.remove_store(db)
                if contenders[name][0] == peer:
                    result = benchlib.run_worker([*contenders[name], db, str(args.calls)])
                    about[name] = (
                        f"eventsourcing {result['version']}, PRAGMA synchronous = {result['synchronous']}"
                    )
                else:
                    result = benchlib.run_worker([*contenders[name], "--db", db, "--calls", str(args.calls)])
                if result["events"] != n:
                    raise SystemExit(f"{name}: {result['events']} events stored, not {n}")
                series[name].add(Sample(result["wall"], result["cpu"]))
            benchlib.remove_store(db)

    esctl = series["esctl EventStore.append"]
    rows = []
    for name, s in series.items():
        rows.append(
            [
                name,
                benchlib.seconds(s.wall),
                benchlib.seconds(s.cpu),
                f"{args.calls / s.wall:,.0f}/s",
                benchlib.rate(n, s.wall),
                f"{s.wall / args.calls * 1000:.2f} ms",
                benchlib.ratio(s.wall, esctl.wall),
                s.runs(),
            ]
        )
    print()
    print(f"appends of {benchlib.PER_STREAM} events to one stream per call (medians of {args.runs})")
    print(
        benchlib.table(
            ["contender", "wall", "CPU", "calls", "events", "per call", "esctl speed", "runs (wall s)"], rows
        )
    )
    print(
        "esctl speed: the contender's time / esctl's (above 1: esctl is faster); goal: ahead of eventsourcing"
    )
    for name, text in about.items():
        print(f"{name}: {text}")
    if peer is None and not args.no_peer:
        print("eventsourcing: skipped (not installable here, see above)")


if __name__ == "__main__":
    main()
