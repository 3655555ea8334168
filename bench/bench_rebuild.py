"""Projection rebuild and catch-up speed, against a plain baseline in the same run
(issue 4's speed goals).

    python bench/bench_rebuild.py                      # 1,000,000 events over 10,000 streams
    python bench/bench_rebuild.py --events 100000      # a quick look

Rebuild: `esctl.projections.rebuild` of a projection doing one upsert per event into
a summary table keyed by stream (shadow tables, batches of 10,000, swap at the end),
against a baseline that selects the same events, decodes them with orjson and does
the same upserts with plain sqlite3 executemany in one transaction. Goal: >= 0.5x.

Catch-up: `--catch-up` new events appended to the full store, then `catch_up` from
the checkpoint, compared with the same number of events caught up on a store that
holds only them: equal times mean the cost follows the new events, not the store.
Figures are medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import orjson

from esctl.projections import Projection
from esctl.projections.rebuild import rebuild
from esctl.projections.runner import catch_up
from esctl.store import EventStore
from esctl.store.readmodels import open_read_models

INSERT = (
    "INSERT INTO events (position, stream, version, type, data, metadata, id, recorded_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

MODEL = """
from esctl.projections import Projection, Table

summary = Projection(
    "summary",
    Table(
        "summary",
        {"stream": str, "events": int, "last_type": str, "last_position": int, "quantity": int},
        pk="stream",
    ),
)


@summary.on("ItemAdded", "ItemRemoved")
def counted(event, db):
    db["summary"].upsert(
        {
            "stream": event.stream,
            "events": event.version,
            "last_type": event.type,
            "last_position": event.position,
            "quantity": event.data["quantity"],
        }
    )
"""

BASELINE_DDL = (
    "CREATE TABLE baseline (stream TEXT PRIMARY KEY, events INTEGER, last_type TEXT,"
    " last_position INTEGER, quantity INTEGER)"
)
BASELINE_UPSERT = (
    "INSERT INTO baseline (stream, events, last_type, last_position, quantity) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (stream) DO UPDATE SET events = excluded.events, last_type = excluded.last_type,"
    " last_position = excluded.last_position, quantity = excluded.quantity"
)


def projection() -> Projection:
    namespace: dict = {}
    exec(compile(MODEL, "bench_model.py", "exec"), namespace)
    return namespace["summary"]


def fill(path: str, count: int, streams: int, seed: int = 7) -> None:
    """Append `count` events (about 250 bytes of data each) round-robin over `streams`
    streams, with raw inserts into the store's own schema (triggers included)."""
    store = EventStore.open(path, create=True)
    conn = store.conn
    rng = random.Random(seed)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    head = store.head_position()
    versions = dict(conn.execute("SELECT stream, max(version) FROM events GROUP BY stream"))
    now = "2026-01-01T00:00:00.000000Z"

    def rows():
        for position in range(head + 1, head + count + 1):
            stream = f"item-{position % streams}"
            version = versions.get(stream, 0) + 1
            versions[stream] = version
            data = {
                "sku": f"SKU-{rng.randrange(10**6):06d}",
                "quantity": rng.randrange(1, 20),
                "price": f"{rng.randrange(100, 100000) / 100:.2f}",
                "note": " ".join(rng.choices(words, k=18)),
                "tags": rng.sample(words, 3),
            }
            kind = "ItemAdded" if position % 5 else "ItemRemoved"
            yield (
                position,
                stream,
                version,
                kind,
                orjson.dumps(data).decode(),
                "{}",
                _id(position, seed),
                now,
            )

    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(INSERT, rows())
    conn.execute("COMMIT")
    store.close()


def _id(position: int, seed: int) -> str:
    return f"01900000-0000-7000-{seed:04x}-{position:012x}"


def settle(path: str) -> None:
    """Fold the WAL back into the file before a measured run, so no run pays for the
    previous run's checkpoint (the WAL of a 1,000,000-upsert transaction is large)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def baseline(path: str) -> float:
    settle(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("DROP TABLE IF EXISTS baseline")
    conn.execute(BASELINE_DDL)
    loads = orjson.loads
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    cursor = conn.execute(
        "SELECT stream, version, position, type, data, metadata, id, recorded_at FROM events"
        " WHERE type IN ('ItemAdded', 'ItemRemoved') ORDER BY position"
    )

    def upserts():
        for stream, version, position, kind, data, metadata, _id, _at in cursor:
            decoded = loads(data)
            loads(metadata)
            yield (stream, version, kind, position, decoded["quantity"])

    conn.executemany(BASELINE_UPSERT, upserts())
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.execute("DROP TABLE baseline")
    conn.close()
    return elapsed


def esctl_rebuild(path: str, p: Projection) -> float:
    settle(path)
    with EventStore.open(path) as store:
        conn = open_read_models(store, None, create=True)
        start = time.perf_counter()
        result = rebuild(store, conn, p)
        elapsed = time.perf_counter() - start
        conn.close()
    assert result.checkpoint == result.head
    return elapsed


def esctl_catch_up(path: str, p: Projection) -> tuple[float, int]:
    with EventStore.open(path) as store:
        conn = open_read_models(store, None, create=True)
        start = time.perf_counter()
        result = catch_up(store, conn, p)
        elapsed = time.perf_counter() - start
        conn.close()
    return elapsed, result.applied


def cli_rebuild(path: str, model: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "esctl", "--db", path, "--model", model, "project", "rebuild", "summary"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--catch-up", type=int, default=10_000, dest="catch_up")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="Where to build the stores (default: a temp dir).")
    args = parser.parse_args()
    p = projection()
    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="esctl-bench-") as tmp:
        big, small = os.path.join(tmp, "big.db"), os.path.join(tmp, "small.db")
        model = os.path.join(tmp, "bench_model.py")
        with open(model, "w") as f:
            f.write(textwrap.dedent(MODEL))
        start = time.perf_counter()
        fill(big, args.events, args.streams)
        print(
            f"store: {args.events:,} events over {args.streams:,} streams, built in {time.perf_counter() - start:.1f} s"
        )

        base, ours = [], []
        for i in range(args.repeat):
            # Alternate the order so neither side always meets a warm cache first.
            if i % 2:
                ours.append(esctl_rebuild(big, p))
                base.append(baseline(big))
            else:
                base.append(baseline(big))
                ours.append(esctl_rebuild(big, p))
        b, o = statistics.median(base), statistics.median(ours)
        n = args.events
        print(
            f"rebuild  baseline (sqlite3 executemany): median {b:6.2f} s  {n / b:>10,.0f} events/s  runs {_fmt(base)}"
        )
        print(
            f"rebuild  esctl (shadow tables + swap):   median {o:6.2f} s  {n / o:>10,.0f} events/s  runs {_fmt(ours)}"
        )
        print(f"rebuild  esctl / baseline: {b / o:.2f}x  (goal >= 0.5x)")
        cli = cli_rebuild(big, model)
        print(f"rebuild  `esctl project rebuild` end to end (process, model import): {cli:.2f} s")

        m = args.catch_up
        on_big, on_small = [], []
        fill(small, m, args.streams, seed=9)
        esctl_catch_up(small, p)
        for r in range(args.repeat):
            fill(big, m, args.streams, seed=100 + r)
            seconds, applied = esctl_catch_up(big, p)
            assert applied == m
            on_big.append(seconds)
            fill(small, m, args.streams, seed=200 + r)
            seconds, applied = esctl_catch_up(small, p)
            assert applied == m
            on_small.append(seconds)
        cb, cs = statistics.median(on_big), statistics.median(on_small)
        print(
            f"catch-up {m:,} new events on the {n:,}-event store: median {cb * 1000:7.1f} ms"
            f"  {m / cb:>10,.0f} events/s  runs {_fmt(on_big)}"
        )
        print(
            f"catch-up {m:,} new events on a {m:,}-event store:     median {cs * 1000:7.1f} ms"
            f"  {m / cs:>10,.0f} events/s  runs {_fmt(on_small)}"
        )
        print(f"catch-up big store / small store: {cb / cs:.2f}x (1.0 = cost follows the new events only)")
        print(f"catch-up per event vs rebuild per event: {cb / m * 1e6:.1f} us vs {o / n * 1e6:.1f} us")


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
