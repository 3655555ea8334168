"""Bulk import, export and read-all through esctl, against a hand-written baseline
measured in the same run, and SQLite's own limit on this machine.

    python bench/bench_import.py                      # 200,000 events (2,000 streams x 100)
    python bench/bench_import.py --events 1M          # 1,000,000 events
    python bench/bench_import.py --quick              # a smoke run

The baseline is what a user would write by hand (bench/benchlib.py): orjson per
line and one `executemany` in one transaction into a plain schema (position INTEGER
PRIMARY KEY, unique (stream, version), unique id, no triggers), WAL,
synchronous=FULL, SQLite's default page cache, the same ids: the file's v4 ids, or
generated UUIDv7 as esctl generates them.

- CLI: `esctl import FILE`, `esctl export` and `esctl read --all` (stdout to
  /dev/null) are whole child processes, and so is the baseline (`python
  bench/benchlib.py import|export`): both pay interpreter start-up. The baseline
  exports its own plain store of the same rows.
- Library: `EventStore.import_events(read_envelopes(file))` and iterating
  `read_all()` against the same baseline functions, both in this process.
- SQLite's limit: the rows of the baseline's store, made beforehand, inserted again
  with one executemany in this process: into the plain schema at the baseline's
  settings and with each setting that speeds it up (the fastest is the limit),
  without its unique indexes (a floor), and into a new esctl store (what esctl's
  schema costs apart from its Python).

Figures are medians of --runs runs (the contenders take turns first); CPU is user +
system time of the child (or of this process); peak RSS is each child's own maximum.
Speed ratios are baseline time / esctl time: above 1 is faster than the baseline.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from typing import TypeVar

import benchlib
from benchlib import Sample, Series, plain_store, ratio, seconds

from esctl import EventStore
from esctl.ndjson import read_envelopes

T = TypeVar("T")
CACHE_KIB = 65_536  # the page cache an esctl store opens with


def esctl_import(source: str, db: str) -> int:
    with EventStore.open(db, create=True) as store, open(source, "rb") as f:
        return store.import_events(read_envelopes(f)).imported


def esctl_read_all(db: str) -> int:
    with EventStore.open(db) as store:
        return sum(1 for _ in store.read_all())


def head(db: str) -> int:
    with EventStore.open(db) as store:
        return store.head_position()


def cli_import(source: str, db: str) -> Sample:
    return benchlib.run_child(benchlib.esctl_command(db, "import", source))


def baseline_cli_import(source: str, db: str) -> Sample:
    return benchlib.run_child(benchlib.baseline_command("import", source, db))


def library_import(source: str, db: str) -> Sample:
    return benchlib.timed(lambda: esctl_import(source, db))[0]


def baseline_library_import(source: str, db: str) -> Sample:
    return benchlib.timed(lambda: benchlib.baseline_import(source, db))[0]


IMPORTS = (
    (("cli", cli_import), ("base cli", baseline_cli_import)),
    (("lib", library_import), ("base lib", baseline_library_import)),
)


def turns(pair: Sequence[T], run: int) -> Sequence[T]:
    """The contenders of a pair, taking turns going first (caches, checkpoints)."""
    return pair[::-1] if run % 2 else pair


def insert_rows(db: str, rows: list[tuple], **settings: object) -> Sample:
    """One executemany of ready rows into a new plain store, creation and close
    (its checkpoint) included."""
    benchlib.remove_store(db)

    def insert() -> None:
        conn = plain_store(db, **settings)  # type: ignore[arg-type]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(benchlib.INSERT, rows)
        conn.execute("COMMIT")
        conn.close()

    return benchlib.timed(insert)[0]


def insert_into_esctl_store(db: str, rows: list[tuple]) -> Sample | None:
    """The same executemany into a new esctl store (its schema, triggers and settings):
    what esctl's schema costs apart from its Python. None where the store refuses raw
    rows."""
    benchlib.remove_store(db)

    def insert() -> None:
        with EventStore.open(db, create=True) as store:
            store.conn.execute("BEGIN IMMEDIATE")
            store.conn.executemany(benchlib.INSERT, rows)
            store.conn.execute("COMMIT")

    try:
        return benchlib.timed(insert)[0]
    except sqlite3.Error as exc:
        print(f"ready rows into an esctl store: skipped ({exc})", file=sys.stderr)
        return None


# Inserts of the same ready rows, fastest first; the limit is the fastest one that
# still makes a store (the unique indexes refuse a reused version or id).
FLOOR = "no index but the key (a floor, not a store)"
LIMIT = "plain schema, 64 MiB cache, synchronous=OFF: the limit"
LIMITS = {
    FLOOR: {"cache_kib": CACHE_KIB, "synchronous": "OFF", "ddl": benchlib.BARE_DDL},
    LIMIT: {"cache_kib": CACHE_KIB, "synchronous": "OFF"},
    "plain schema, 64 MiB cache (esctl's), FULL": {"cache_kib": CACHE_KIB},
    "plain schema, the baseline's settings": {},
}
ESCTL_SCHEMA = "esctl's schema (triggers), esctl's settings"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=benchlib.parse_size, default=200_000, help="events (default 200k)")
    parser.add_argument(
        "--no-limit", action="store_true", help="skip SQLite's limit (holds the rows in memory)"
    )
    benchlib.add_common_options(parser, runs=3)
    args = parser.parse_args()
    if args.quick:
        args.events, args.runs = 2_000, 1
    n = args.events

    with benchlib.work_dir(args.dir) as work:
        files = {
            ids: os.path.join(work, f"events-{'ids' if ids else 'noids'}-{n}.ndjson") for ids in (True, False)
        }
        for ids, path in files.items():
            if not os.path.exists(path):
                benchlib.write_events(path, n, ids=ids)
        size = os.path.getsize(files[True])
        print(
            f"{n:,} events ({benchlib.stream_count(n):,} streams x {benchlib.PER_STREAM}), {size / n:.0f} bytes"
            f" a line, {size / 2**20:.0f} MiB; {args.runs} runs; {benchlib.machine_note()}",
            flush=True,
        )

        def db(name: str) -> str:
            return os.path.join(work, name + ".db")

        s: dict[str, Series] = {}

        def measure(key: str, sample: Sample) -> None:
            s.setdefault(key, Series()).add(sample)

        ours, base = db("cli-ids"), db("base-cli-ids")  # the stores that export and read
        for run in range(args.runs):
            for ids, source in files.items():
                kind = "ids" if ids else "gen"
                for pair in IMPORTS:
                    for key, fn in turns(pair, run):
                        path = db(f"{key}-{kind}".replace(" ", "-"))
                        benchlib.remove_store(path)
                        measure(f"{key} {kind}", fn(source, path))
                for key in ("cli", "lib"):
                    stored = head(db(f"{key}-{kind}"))
                    if stored != n:
                        raise SystemExit(f"{key} import ({kind}): {stored} events stored, not {n}")

            reads = (
                ("export", lambda: benchlib.run_child(benchlib.esctl_command(ours, "export"))),
                ("read --all", lambda: benchlib.run_child(benchlib.esctl_command(ours, "read", "--all"))),
                ("base export", lambda: benchlib.run_child(benchlib.baseline_command("export", base))),
                ("lib read_all", lambda: benchlib.timed(lambda: esctl_read_all(ours))[0]),
                ("base read_all", lambda: benchlib.timed(lambda: benchlib.baseline_read_all(base))[0]),
            )
            for key, fn in turns(reads, run):
                measure(key, fn())
            print(
                f"run {run + 1}: import {s['cli ids'].samples[-1].wall:.2f} s (baseline"
                f" {s['base cli ids'].samples[-1].wall:.2f} s), export {s['export'].samples[-1].wall:.2f} s"
                f" (baseline {s['base export'].samples[-1].wall:.2f} s)",
                file=sys.stderr,
                flush=True,
            )

        limits: dict[str, Series] = {}
        if not args.no_limit:
            rows = benchlib.stored_rows(db("base-cli-ids"))
            for _ in range(args.runs):
                for label, settings in LIMITS.items():
                    limits.setdefault(label, Series()).add(insert_rows(db("limit"), rows, **settings))
                into_esctl = insert_into_esctl_store(db("limit"), rows)
                if into_esctl is not None:
                    limits.setdefault(ESCTL_SCHEMA, Series()).add(into_esctl)
            del rows
            benchlib.remove_store(db("limit"))

    def row(what: str, ours: Series, base: Series, goal: str) -> list[str]:
        return [
            what,
            seconds(ours.wall),
            seconds(ours.cpu),
            benchlib.rate(n, ours.wall),
            seconds(base.wall),
            seconds(base.cpu),
            ratio(base.wall, ours.wall),
            ratio(base.cpu, ours.cpu),
            goal,
        ]

    print()
    print(f"esctl against the hand-written baseline, {n:,} events (medians of {args.runs})")
    print(
        benchlib.table(
            ["what", "esctl", "CPU", "events/s", "baseline", "CPU", "speed", "CPU", "goal"],
            [
                row("CLI import, v4 ids given", s["cli ids"], s["base cli ids"], ">= 0.8x"),
                row("CLI import, ids generated", s["cli gen"], s["base cli gen"], ">= 0.8x"),
                row("library import, v4 ids given", s["lib ids"], s["base lib ids"], ">= 0.9x"),
                row("library import, ids generated", s["lib gen"], s["base lib gen"], ">= 0.9x"),
                row("CLI export > /dev/null", s["export"], s["base export"], ">= 0.85x"),
                row("CLI read --all > /dev/null", s["read --all"], s["base export"], ">= 0.85x"),
                row("library read_all (decoded)", s["lib read_all"], s["base read_all"], ""),
            ],
        )
    )
    print(
        "baseline: orjson + executemany into the plain schema (import); select + orjson lines"
        " (export, read --all); select + orjson.loads of data and metadata (read_all)"
    )

    print()
    print("peak RSS of the child processes (largest of the runs)")
    print(
        benchlib.table(
            ["what", "esctl", "baseline", "goal at 1M"],
            [
                [
                    "import, v4 ids given",
                    f"{s['cli ids'].rss_mib:.0f} MiB",
                    f"{s['base cli ids'].rss_mib:.0f} MiB",
                    "< 150 MiB",
                ],
                [
                    "import, ids generated",
                    f"{s['cli gen'].rss_mib:.0f} MiB",
                    f"{s['base cli gen'].rss_mib:.0f} MiB",
                    "< 150 MiB",
                ],
                [
                    "export",
                    f"{s['export'].rss_mib:.0f} MiB",
                    f"{s['base export'].rss_mib:.0f} MiB",
                    "< 150 MiB",
                ],
                ["read --all", f"{s['read --all'].rss_mib:.0f} MiB", "", ""],
            ],
        )
    )

    if limits:
        limit = limits[LIMIT].wall

        def rung(label: str, series: Series) -> list[str]:
            return [
                label,
                seconds(series.wall),
                seconds(series.cpu),
                benchlib.rate(n, series.wall),
                f"{series.wall / limit:.2f}",
            ]

        print()
        print(f"SQLite's own limit: the same {n:,} rows (v4 ids given), ready beforehand, one executemany")
        print(
            benchlib.table(
                ["what", "wall", "CPU", "events/s", "x limit"],
                [
                    *(rung(label, series) for label, series in limits.items()),
                    rung("baseline in process: + orjson parse, re-serialise", s["base lib ids"]),
                    rung("esctl library import", s["lib ids"]),
                    rung("esctl CLI import", s["cli ids"]),
                ],
            )
        )
        print(
            f"esctl CLI import runs at {limit / s['cli ids'].wall:.0%} of the limit's speed,"
            f" the library import at {limit / s['lib ids'].wall:.0%}"
        )


if __name__ == "__main__":
    main()
