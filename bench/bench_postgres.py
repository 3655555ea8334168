"""esctl on PostgreSQL against raw psycopg on the same server in the same run, and
against esctl on SQLite.

    python bench/bench_postgres.py                    # 200,000 events, 300 appends, 8 writers
    python bench/bench_postgres.py --url postgresql://...   # an existing server
    python bench/bench_postgres.py --quick            # a smoke run

Without --url it starts a throwaway server from the installed binaries
(tests/postgres.py) with fsync on, so that commits wait for the disk as SQLite's
synchronous=FULL does. Each contender writes into a schema of its own.

- import: `PostgresStore.import_events(read_envelopes(file))` against the fastest
  raw load of the same file a user would write: orjson per line, versions counted
  in a dict, one COPY in one transaction into an equivalent table (the same
  columns, json data, primary key on position, unique (stream, version) and id,
  the same type and category indexes; no trigger), by `write_row` (text) or by
  binary COPY, whichever is faster in the run.
- append: 100 events to a new stream per call, each call its own transaction:
  `append(stream, events, NO_STREAM)` against BEGIN, the stream's version,
  `executemany` of the 100 rows into the equivalent table (positions from an
  identity column), COMMIT.
- 8 writers: 8 processes appending 10 events per call to streams of their own,
  esctl (the head row serialises them: positions gapless in commit order)
  against the raw executemany (positions from an identity column: unordered,
  with gaps), total events per second; and esctl's 8 writers on one SQLite file.
- reads: `read_stream` of one 100-event stream and a default-fold replay of it,
  latency medians on PostgreSQL and on SQLite.
- read models: `catch_up` of bench_rebuild's summary projection from position 0
  (read models in the PostgreSQL database, a schema of their own) against what a
  user would write with psycopg: a server-side cursor over the events, orjson,
  one `executemany` upsert per event into a plain table, one transaction; and
  the same catch-up on SQLite (read models in the store's file).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Iterator

import benchlib
import orjson
import psycopg

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from esctl import NO_STREAM, NewEvent
from esctl import store as backends
from esctl.ndjson import read_envelopes
from esctl.projections.reset import reset
from esctl.projections.runner import catch_up

PLAIN = """
CREATE TABLE events (
    position    bigint  {position},
    stream      text    COLLATE "C" NOT NULL,
    version     bigint  NOT NULL,
    type        text    COLLATE "C" NOT NULL,
    data        json    NOT NULL,
    metadata    json    NOT NULL,
    id          text    NOT NULL UNIQUE,
    recorded_at text    NOT NULL,
    category    text    COLLATE "C" GENERATED ALWAYS AS (split_part(stream, '-', 1)) STORED,
    UNIQUE (stream, version)
);
CREATE INDEX ON events (type, position);
CREATE INDEX ON events (category, position);
"""
COLUMNS = "stream, version, position, type, data, metadata, id, recorded_at"
APPEND_COLUMNS = "stream, version, type, data, metadata, id, recorded_at"


@contextlib.contextmanager
def server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.postgres import throwaway_server

    with throwaway_server(fsync=True) as started:
        yield started


_schemas = iter(range(1, 10**9))
_made: list[str] = []  # dropped at the end: a server given with --url keeps none of them


def drop_schemas(server_url: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        for name in _made:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    _made.clear()


def schema_url(server_url: str, *, plain: str | None = None) -> str:
    """A new schema, and a URL that uses it; with `plain`, the equivalent table in it."""
    from tests.postgres import with_search_path

    name = f"bench_{os.getpid()}_{next(_schemas)}"
    _made.append(name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        conn.execute(f"CREATE SCHEMA {name}")
        if plain is not None:
            conn.execute(f"SET search_path = {name}")
            conn.execute(PLAIN.format(position=plain))
    return with_search_path(server_url, name)


# --- import ---------------------------------------------------------------------------


def esctl_import(url: str, source: str) -> float:
    start = time.perf_counter()
    with backends.open(url, create=True) as store, open(source, "rb") as f:
        store.import_events(read_envelopes(f))
    return time.perf_counter() - start


def raw_copy(url: str, source: str, *, binary: bool) -> float:
    start = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY events ({COLUMNS}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")) as copy:
            if binary:
                copy.set_types(["text", "int8", "int8", "text", "json", "json", "text", "text"])
            for row in benchlib.plain_rows(source):
                copy.write_row(row)
        conn.commit()
    return time.perf_counter() - start


# --- appends --------------------------------------------------------------------------


def esctl_appends(url: str, batches: list[tuple[str, list[dict]]]) -> float:
    with backends.open(url, create=True) as store:
        start = time.perf_counter()
        for stream, batch in batches:
            store.append(stream, [NewEvent(stream, e["type"], e["data"]) for e in batch], NO_STREAM)
        return time.perf_counter() - start


def raw_appends(url: str, batches: list[tuple[str, list[dict]]]) -> float:
    insert = f"INSERT INTO events ({APPEND_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
    with psycopg.connect(url) as conn:
        start = time.perf_counter()
        for stream, batch in batches:
            with conn.cursor() as cur:
                (version,) = cur.execute(
                    "SELECT coalesce(max(version), 0) FROM events WHERE stream = %s", (stream,)
                ).fetchone()
                now = benchlib.utc_now()
                cur.executemany(
                    insert,
                    [
                        (
                            stream,
                            version + i,
                            e["type"],
                            orjson.dumps(e["data"]).decode(),
                            "{}",
                            benchlib.uuid7(),
                            now,
                        )
                        for i, e in enumerate(batch, 1)
                    ],
                )
            conn.commit()
        return time.perf_counter() - start


def _writer(kind: str, url: str, index: int, calls: int, start, done) -> None:
    batches = [(f"w{index}-{n}", [{"type": "E", "data": {"n": k}} for k in range(10)]) for n in range(calls)]
    start.wait()
    (esctl_appends if kind == "esctl" else raw_appends)(url, batches)
    done.put(index)


def concurrent(kind: str, url: str, writers: int, calls: int) -> float:
    """Total events per second of `writers` processes appending at once."""
    ctx = mp.get_context("spawn")
    start, done = ctx.Barrier(writers + 1), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(kind, url, i, calls, start, done)) for i in range(writers)]
    for p in procs:
        p.start()
    start.wait()
    began = time.perf_counter()
    for _ in procs:
        done.get()
    elapsed = time.perf_counter() - began
    for p in procs:
        p.join()
    return writers * calls * 10 / elapsed


# --- reads ----------------------------------------------------------------------------


def read_latencies(url: str, stream: str, repeats: int) -> tuple[float, float]:
    """Median seconds of read_stream and of a default-fold replay of `stream`."""
    from esctl.aggregates import Replayer

    with backends.open(url) as store:
        reads, replays = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            sum(1 for _ in store.read_stream(stream))
            reads.append(time.perf_counter() - t)
            t = time.perf_counter()
            Replayer(store, snapshots=False).replay(stream)
            replays.append(time.perf_counter() - t)
    return statistics.median(reads), statistics.median(replays)


# --- read models ------------------------------------------------------------------------

RAW_SUMMARY = """
CREATE TABLE IF NOT EXISTS raw_summary (stream text PRIMARY KEY, events bigint, last_type text,
    last_position bigint, quantity bigint)
"""
RAW_UPSERT = (
    "INSERT INTO raw_summary (stream, events, last_type, last_position, quantity) VALUES (%s, %s, %s, %s, %s)"
    " ON CONFLICT (stream) DO UPDATE SET events = excluded.events, last_type = excluded.last_type,"
    " last_position = excluded.last_position, quantity = excluded.quantity"
)


def esctl_catch_up(url: str) -> tuple[float, int]:
    """Seconds of a catch-up from position 0 (the read models reset first)."""
    from bench_rebuild import projection

    p = projection()
    with backends.open(url) as store:
        db = store.read_models(create=True)
        try:
            reset(db, p.name)
            t = time.perf_counter()
            result = catch_up(store, db, p)
            elapsed = time.perf_counter() - t
        finally:
            db.close()
    return elapsed, result.applied


def raw_catch_up(url: str) -> float:
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_summary")
        conn.execute(RAW_SUMMARY)
        conn.commit()
        t = time.perf_counter()
        with conn.cursor(name="events") as events, conn.cursor() as upserts:
            events.execute(
                "SELECT stream, version, type, position, data::text FROM events"
                " WHERE type IN ('ItemAdded', 'ItemRemoved') ORDER BY position"
            )
            while rows := events.fetchmany(2_000):
                upserts.executemany(
                    RAW_UPSERT, [(s, v, ty, p, orjson.loads(d)["quantity"]) for s, v, ty, p, d in rows]
                )
        conn.commit()
        return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="an existing PostgreSQL server (default: a throwaway one)")
    parser.add_argument("--events", type=benchlib.parse_size, default=200_000)
    parser.add_argument("--calls", type=int, default=300, help="appends of 100 events (default 300)")
    parser.add_argument("--writers", type=int, default=8)
    benchlib.add_common_options(parser, runs=3)
    args = parser.parse_args()
    if args.quick:
        args.events, args.calls, args.runs = 2_000, 20, 1
    with benchlib.work_dir(args.dir) as work, server(args.url) as url:
        try:
            measure(args, work, url)
        finally:
            drop_schemas(url)


def measure(args: argparse.Namespace, work: str, url: str) -> None:
    n = args.events
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
    source = os.path.join(work, f"events-{n}.ndjson")
    benchlib.write_events(source, n, ids=False)
    print(f"{n:,} events; PostgreSQL {version}; {args.runs} runs; {benchlib.machine_note()}", flush=True)

    ours, text, binary = [], [], []
    for run in range(args.runs):
        contenders = [
            (ours, lambda: esctl_import(schema_url(url), source)),
            (text, lambda: raw_copy(schema_url(url, plain="PRIMARY KEY"), source, binary=False)),
            (binary, lambda: raw_copy(schema_url(url, plain="PRIMARY KEY"), source, binary=True)),
        ]
        for series, fn in contenders[::-1] if run % 2 else contenders:
            series.append(fn())
    fastest = min(statistics.median(text), statistics.median(binary))
    imported = statistics.median(ours)
    print()
    print(
        benchlib.table(
            ["import", "seconds", "events/s", "vs raw COPY"],
            [
                [
                    "esctl import_events",
                    benchlib.seconds(imported),
                    benchlib.rate(n, imported),
                    benchlib.ratio(fastest, imported),
                ],
                [
                    "raw COPY, write_row",
                    benchlib.seconds(statistics.median(text)),
                    benchlib.rate(n, statistics.median(text)),
                    "",
                ],
                [
                    "raw COPY, binary",
                    benchlib.seconds(statistics.median(binary)),
                    benchlib.rate(n, statistics.median(binary)),
                    "",
                ],
            ],
        )
    )

    batches = benchlib.append_batches(args.calls)
    ours_a, raw_a = [], []
    for run in range(args.runs):
        contenders = [
            (ours_a, lambda: esctl_appends(schema_url(url), batches)),
            (
                raw_a,
                lambda: raw_appends(
                    schema_url(url, plain="GENERATED ALWAYS AS IDENTITY PRIMARY KEY"), batches
                ),
            ),
        ]
        for series, fn in contenders[::-1] if run % 2 else contenders:
            series.append(fn())
    per_ours = statistics.median(ours_a) / args.calls
    per_raw = statistics.median(raw_a) / args.calls
    print()
    print(
        benchlib.table(
            ["append of 100 events", "ms per call", "vs raw executemany"],
            [
                ["esctl append", f"{per_ours * 1000:.2f}", benchlib.ratio(per_raw, per_ours)],
                ["raw executemany", f"{per_raw * 1000:.2f}", ""],
            ],
        )
    )

    calls = max(args.calls // 2, 10)
    rates: dict[str, list[float]] = {"esctl": [], "raw": [], "sqlite": []}
    for run in range(args.runs):
        order = ["raw", "sqlite", "esctl"] if run % 2 else ["esctl", "sqlite", "raw"]
        for kind in order:
            if kind == "raw":
                target = schema_url(url, plain="GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
            else:
                target = schema_url(url) if kind == "esctl" else os.path.join(work, f"writers-{run}.db")
                backends.open(target, create=True).close()
            rates[kind].append(concurrent("raw" if kind == "raw" else "esctl", target, args.writers, calls))
    print()
    print(
        benchlib.table(
            [f"{args.writers} writers, 10 events a call", "events/s", "vs unordered"],
            [
                [
                    "esctl (head row: gapless, commit order)",
                    f"{statistics.median(rates['esctl']):,.0f}",
                    f"{statistics.median(rates['esctl']) / statistics.median(rates['raw']):.2f}x",
                ],
                [
                    "raw inserts (identity: gaps, any order)",
                    f"{statistics.median(rates['raw']):,.0f}",
                    "",
                ],
                [
                    "esctl on one SQLite file (synchronous=FULL)",
                    f"{statistics.median(rates['sqlite']):,.0f}",
                    f"{statistics.median(rates['sqlite']) / statistics.median(rates['raw']):.2f}x",
                ],
            ],
        )
    )

    pg = schema_url(url)
    lite = os.path.join(work, "reads.db")
    benchlib.remove_store(lite)
    for target in (pg, lite):
        with backends.open(target, create=True) as store, open(source, "rb") as f:
            store.import_events(read_envelopes(f))
    stream = benchlib.middle_stream(n)
    repeats = 20 if args.quick else 200
    pg_read, pg_replay = read_latencies(pg, stream, repeats)
    lite_read, lite_replay = read_latencies(lite, stream, repeats)
    print()
    print(
        benchlib.table(
            [
                f"one stream of 100 events, median of {repeats}",
                "PostgreSQL",
                "SQLite",
                "SQLite / PostgreSQL",
            ],
            [
                [
                    "read_stream",
                    f"{pg_read * 1000:.2f} ms",
                    f"{lite_read * 1000:.2f} ms",
                    f"{lite_read / pg_read:.2f}x",
                ],
                [
                    "replay (default fold)",
                    f"{pg_replay * 1000:.2f} ms",
                    f"{lite_replay * 1000:.2f} ms",
                    f"{lite_replay / pg_replay:.2f}x",
                ],
            ],
        )
    )

    runs: dict[str, list[float]] = {"pg": [], "raw": [], "sqlite": []}
    applied = 0
    for run in range(args.runs):
        for kind in ["raw", "sqlite", "pg"] if run % 2 else ["pg", "sqlite", "raw"]:
            if kind == "raw":
                runs[kind].append(raw_catch_up(pg))
            else:
                elapsed, applied = esctl_catch_up(pg if kind == "pg" else lite)
                runs[kind].append(elapsed)
    raw_s, pg_s, lite_s = (statistics.median(runs[k]) for k in ("raw", "pg", "sqlite"))
    print()
    print(
        benchlib.table(
            [
                f"catch-up of a projection ({applied:,} events applied)",
                "seconds",
                "events/s",
                "vs raw psycopg",
            ],
            [
                [
                    "esctl on PostgreSQL",
                    benchlib.seconds(pg_s),
                    benchlib.rate(applied, pg_s),
                    benchlib.ratio(raw_s, pg_s),
                ],
                [
                    "raw psycopg: cursor + executemany",
                    benchlib.seconds(raw_s),
                    benchlib.rate(applied, raw_s),
                    "",
                ],
                [
                    "esctl on SQLite",
                    benchlib.seconds(lite_s),
                    benchlib.rate(applied, lite_s),
                    benchlib.ratio(raw_s, lite_s),
                ],
            ],
        )
    )


if __name__ == "__main__":
    main()
