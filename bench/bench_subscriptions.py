"""Reacting to events: follow latency, consume throughput, an in-process consumer.

    python bench/bench_subscriptions.py            # SQLite and a throwaway PostgreSQL
    python bench/bench_subscriptions.py --quick    # a smoke run

- follow latency: `esctl follow --all` in its own process; this process appends one
  event at a time and times from the append's return (its commit) to the line
  arriving on the follower's stdout: median and p95, on SQLite and PostgreSQL.
- consume --exec true: events per second of `esctl consume G --all --exec true
  --once` against the floor, a bare loop that spawns `sh -c true` per event with
  the envelope on stdin (the process spawn is the cost either way).
- an in-process consumer (ConsumerRunner with a Python handler that succeeds)
  against a projection's catch-up over the same events (bench_rebuild's summary
  projection), events per second.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import benchlib

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from esctl import NewEvent
from esctl import store as backends
from esctl.ndjson import envelope_line, read_envelopes


@contextlib.contextmanager
def backends_at(work: str, url: str | None) -> Iterator[dict[str, Callable[[], str]]]:
    """For each backend, a function that makes a fresh, empty store and gives its
    path or URL."""
    from bench_postgres import drop_schemas, schema_url, server

    paths = (os.path.join(work, f"store-{i}.db") for i in range(10**9))

    def sqlite() -> str:
        path = next(paths)
        backends.open(path, create=True).close()
        return path

    with server(url) as pg:

        def postgres() -> str:
            target = schema_url(pg)
            backends.open(target, create=True).close()
            return target

        try:
            yield {"SQLite": sqlite, "PostgreSQL": postgres}
        finally:
            drop_schemas(pg)


def filled(make: Callable[[], str], source: str) -> str:
    target = make()
    with backends.open(target) as store, open(source, "rb") as f:
        store.import_events(read_envelopes(f))
    return target


def follow_latency(target: str, count: int) -> tuple[float, float]:
    """Median and p95 seconds from an append's commit to its line from `follow`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "esctl", "--db", target, "follow", "--all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    latencies = []
    try:
        proc.stderr.readline()  # the note: it is following
        with backends.open(target) as store:
            for i in range(count):
                store.append(f"bench-{i % 10}", [NewEvent(f"bench-{i % 10}", "Ticked", {"i": i})])
                committed = time.perf_counter()
                line = proc.stdout.readline()
                latencies.append(time.perf_counter() - committed)
                assert line, "the follower ended"
    finally:
        proc.terminate()
        proc.wait()
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.95) - 1]


def consume_rate(target: str, group: str) -> tuple[float, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    t = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "esctl",
            "--db",
            target,
            "consume",
            group,
            "--all",
            "--exec",
            "true",
            "--once",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        check=True,
    )
    return time.perf_counter() - t, len(done.stdout.splitlines())


def bare_spawns(target: str) -> tuple[float, int]:
    """The floor: read the events and spawn `sh -c true` for each, envelope on stdin."""
    t = time.perf_counter()
    n = 0
    with backends.open(target) as store:
        for row in store.read_all(raw=True):
            subprocess.run(["/bin/sh", "-c", "true"], input=envelope_line(row), check=True)
            n += 1
    return time.perf_counter() - t, n


def in_process_rate(target: str, group: str) -> tuple[float, int]:
    from esctl.subscriptions import EventFilter
    from esctl.subscriptions.consumer import ConsumerRunner, Outcome

    with backends.open(target) as store:
        db = store.read_models(create=True)
        try:
            t = time.perf_counter()
            summary = ConsumerRunner(store, db, group, EventFilter(), lambda d: Outcome(True, 0)).run(
                once=True
            )
            return time.perf_counter() - t, summary.delivered
        finally:
            db.close()


def catch_up_rate(target: str) -> tuple[float, int]:
    from bench_rebuild import projection

    from esctl.projections.reset import reset
    from esctl.projections.runner import catch_up

    p = projection()
    with backends.open(target) as store:
        db = store.read_models(create=True)
        try:
            reset(db, p.name)
            t = time.perf_counter()
            result = catch_up(store, db, p)
            return time.perf_counter() - t, result.applied
        finally:
            db.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="an existing PostgreSQL server (default: a throwaway one)")
    parser.add_argument("--events", type=benchlib.parse_size, default=20_000, help="for the in-process runs")
    parser.add_argument("--appends", type=int, default=200, help="followed appends (latency)")
    parser.add_argument("--spawns", type=int, default=300, help="events for the consume --exec runs")
    benchlib.add_common_options(parser, runs=3)
    args = parser.parse_args()
    if args.quick:
        args.events, args.appends, args.spawns, args.runs = 1_000, 20, 20, 1
    with benchlib.work_dir(args.dir) as work, backends_at(work, args.url) as makers:
        print(f"{args.runs} runs; {benchlib.machine_note()}", flush=True)
        few, many = os.path.join(work, "few.ndjson"), os.path.join(work, "many.ndjson")
        benchlib.write_events(few, args.spawns, ids=False)
        benchlib.write_events(many, args.events, ids=False)
        latency_rows, spawn_rows, inproc_rows = [], [], []
        for name, make in makers.items():
            target = make()
            medians, p95s = zip(
                *(follow_latency(target, args.appends) for _ in range(args.runs)), strict=True
            )
            latency_rows.append(
                [
                    name,
                    f"{statistics.median(medians) * 1000:.1f} ms",
                    f"{statistics.median(p95s) * 1000:.1f} ms",
                ]
            )
            target = filled(make, few)
            ours = [consume_rate(target, f"spawn-{run}") for run in range(args.runs)]
            floor = [bare_spawns(target) for _ in range(args.runs)]
            ours_s, floor_s = statistics.median(t for t, _ in ours), statistics.median(t for t, _ in floor)
            n = ours[0][1]
            spawn_rows.append(
                [name, benchlib.rate(n, ours_s), benchlib.rate(n, floor_s), benchlib.ratio(floor_s, ours_s)]
            )
            target = filled(make, many)
            inproc = [in_process_rate(target, f"inproc-{run}") for run in range(args.runs)]
            catch = [catch_up_rate(target) for _ in range(args.runs)]
            in_rate = inproc[0][1] / statistics.median(t for t, _ in inproc)
            catch_rate = catch[0][1] / statistics.median(t for t, _ in catch)
            inproc_rows.append(
                [name, f"{in_rate:,.0f}/s", f"{catch_rate:,.0f}/s", f"{in_rate / catch_rate:.2f}x"]
            )
        print()
        print(
            benchlib.table([f"follow: commit to line, {args.appends} appends", "median", "p95"], latency_rows)
        )
        print()
        print(
            benchlib.table(
                [f"consume --exec true, {args.spawns} events", "esctl", "bare spawn loop", "vs the loop"],
                spawn_rows,
            )
        )
        print()
        print(
            benchlib.table(
                [
                    f"{args.events:,} events, in process",
                    "consumer",
                    "projection catch-up",
                    "consumer / catch-up",
                ],
                inproc_rows,
            )
        )


if __name__ == "__main__":
    main()
