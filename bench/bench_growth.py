"""How esctl's everyday commands grow with the store: the same commands on stores of
10k, 100k, 1M and 5M events, each as a whole CLI process.

    python bench/bench_growth.py                          # 10k, 100k, 1M and 5M events
    python bench/bench_growth.py --sizes 10k,100k,1M      # without the 5M store
    python bench/bench_growth.py --quick                  # a smoke run

The stores hold the events of bench/benchlib.py: 100 per stream, 10 categories,
RARE_TYPE 10 times in the last 1% of positions, ids generated. They are built once
with the library's import (commits every 100,000 events) and kept under bench/data/
(or --data), one file per size and schema version; a store of an older schema is
copied and upgraded with `esctl migrate` where that command exists, else rebuilt.
`append` adds one event per run to the stream bench-appends of the kept store.

Each command runs once untimed (its output checked, the file in the OS cache), then
--runs times, the commands taking turns; figures are medians of the child's CPU time
(user + system) and of wall time, start-up included. The goal: each command at the
largest size within 1.5x of its time at the smallest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

import benchlib
from benchlib import Series

from esctl import EventStore, NewEvent

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATOR = 1  # bump when benchlib.events changes, so kept stores are rebuilt
CATEGORY = benchlib.CATEGORIES[3]
APPEND_STREAM = "bench-appends"
GOAL = 1.5
BUILD_BATCH = 100_000


def installed_schema() -> int:
    """The schema version this esctl creates: the user_version of a new store."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.db")
        EventStore.open(path, create=True).close()
        conn = sqlite3.connect(path)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.close()
    return version


def has_migrate() -> bool:
    return (
        subprocess.run(
            [sys.executable, "-m", "esctl", "migrate", "--help"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
        ).returncode
        == 0
    )


def store_file(data: str, size: int, schema: int) -> str:
    return os.path.join(data, f"growth-{benchlib.size_label(size)}-schema{schema}-g{GENERATOR}.db")


def move_store(source: str, target: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(source + suffix):
            os.replace(source + suffix, target + suffix)


def build(path: str, size: int) -> float:
    """Import the events into a new store at `path` (built aside, then moved there)."""
    building = path + ".building"
    benchlib.remove_store(building)
    start = time.perf_counter()
    with EventStore.open(building, create=True) as store:
        store.import_events(
            (("", NewEvent(e["stream"], e["type"], e["data"])) for e in benchlib.events(size, ids=False)),
            batch_size=BUILD_BATCH,
        )
    elapsed = time.perf_counter() - start
    move_store(building, path)
    return elapsed


def migrated(data: str, size: int, schema: int, path: str) -> float | None:
    """Seconds to upgrade a kept store of an older schema into `path` with `esctl
    migrate`, or None when there is none or the upgrade does not succeed."""
    for older in range(schema - 1, 0, -1):
        source = store_file(data, size, older)
        if not os.path.exists(source):
            continue
        work = path + ".migrating"
        benchlib.remove_store(work)
        for suffix in ("", "-wal"):
            if os.path.exists(source + suffix):
                shutil.copyfile(source + suffix, work + suffix)
        start = time.perf_counter()
        done = subprocess.run(
            benchlib.esctl_command(work, "migrate"), capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        elapsed = time.perf_counter() - start
        conn = sqlite3.connect(work)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.close()
        if done.returncode == 0 and version == schema:
            move_store(work, path)
            return elapsed
        print(f"esctl migrate of {source} did not succeed: {done.stderr.strip()[-300:]}", file=sys.stderr)
        benchlib.remove_store(work)
    return None


def commands(size: int) -> dict[str, tuple[list[str], int | None]]:
    """Each command, its arguments and the output lines it must print (None: any)."""
    stream = benchlib.middle_stream(size)
    rare = min(benchlib.RARE_COUNT, size // 100)
    in_category = len(range(benchlib.CATEGORIES.index(CATEGORY), benchlib.stream_count(size), 10))
    return {
        "info": (["info"], None),
        "info STREAM": (["info", stream], None),
        f"streams --category {CATEGORY} --limit 5": (
            ["streams", "--category", CATEGORY, "--limit", "5"],
            min(5, in_category),
        ),
        f"read --all --type {benchlib.RARE_TYPE} --limit 10": (
            ["read", "--all", "--type", benchlib.RARE_TYPE, "--limit", "10"],
            rare,
        ),
        f"read --all --category {CATEGORY} --limit 10": (
            ["read", "--all", "--category", CATEGORY, "--limit", "10"],
            min(10, in_category * benchlib.PER_STREAM),
        ),
        "read STREAM": (["read", stream], benchlib.PER_STREAM),
        "append": (["append", APPEND_STREAM, "Appended", '{"n": 1}'], None),
    }


def check_output(path: str, name: str, args: list[str], lines: int | None) -> None:
    done = subprocess.run(benchlib.esctl_command(path, *args), capture_output=True, stdin=subprocess.DEVNULL)
    if done.returncode:
        raise SystemExit(f"esctl {' '.join(args)} failed on {path}: {done.stderr.decode().strip()}")
    if lines is not None and len(done.stdout.splitlines()) != lines:
        raise SystemExit(f"{name} printed {len(done.stdout.splitlines())} lines on {path}, not {lines}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        default="10k,100k,1M,5M",
        help="store sizes in events, comma-separated, smallest first (default 10k,100k,1M,5M)",
    )
    parser.add_argument("--data", default=None, help="where the stores are kept (default bench/data)")
    benchlib.add_common_options(parser, runs=5)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.runs = "1000,3000", 1
    sizes = sorted(benchlib.parse_size(s) for s in args.sizes.split(","))

    # A smoke run keeps nothing: its stores go to a temporary directory.
    with benchlib.work_dir(args.dir) as scratch:
        data = args.data or (scratch if args.quick else os.path.join(HERE, "data"))
        os.makedirs(data, exist_ok=True)
        schema = installed_schema()
        can_migrate = has_migrate()
        print(
            f"stores of {', '.join(benchlib.size_label(s) for s in sizes)} events, schema {schema}"
            f" (esctl migrate: {'yes' if can_migrate else 'no'}); {args.runs} runs; {benchlib.machine_note()}",
            flush=True,
        )
        paths: dict[int, str] = {}
        for size in sizes:
            path = paths[size] = store_file(data, size, schema)
            if os.path.exists(path):
                how = "kept"
            else:
                upgraded = migrated(data, size, schema, path) if can_migrate else None
                if upgraded is not None:
                    how = f"migrated from an older schema in {upgraded:.1f} s"
                else:
                    how = f"built in {build(path, size):.1f} s"
            megabytes = (
                sum(os.path.getsize(path + x) for x in ("", "-wal") if os.path.exists(path + x)) / 2**20
            )
            print(
                f"  {benchlib.size_label(size):>5}: {path}, {megabytes:,.0f} MiB, {how}",
                flush=True,
            )

        series: dict[tuple[str, int], Series] = {}
        names = list(commands(sizes[0]))
        for size in sizes:
            todo = commands(size)
            for name, (cli_args, lines) in todo.items():
                check_output(paths[size], name, cli_args, lines)
            for run in range(args.runs):
                order = names[run % len(names) :] + names[: run % len(names)]
                for name in order:
                    sample = benchlib.run_child(benchlib.esctl_command(paths[size], *todo[name][0]))
                    series.setdefault((name, size), Series()).add(sample)
            print(f"  measured {benchlib.size_label(size)}", file=sys.stderr, flush=True)

    first, last = sizes[0], sizes[-1]
    span = f"{benchlib.size_label(last)}/{benchlib.size_label(first)}"
    for title, measure in (("CPU time (user + sys) of the child", "cpu"), ("wall time", "wall")):
        rows = []
        for name in names:
            values = [getattr(series[(name, size)], measure) for size in sizes]
            growth = values[-1] / values[0] if values[0] > 0 else float("inf")
            rows.append(
                [
                    name,
                    *(f"{v * 1000:,.0f} ms" for v in values),
                    f"{growth:.2f}x",
                    "yes" if growth <= GOAL else "NO",
                ]
            )
        print()
        print(f"{title}, median of {args.runs} (stores of N events)")
        print(
            benchlib.table(
                ["command", *(benchlib.size_label(s) for s in sizes), span, f"<= {GOAL}x"],
                rows,
            )
        )
    print(
        f"STREAM: a stream of the store's middle, 100 events ({benchlib.middle_stream(last)} at"
        f" {benchlib.size_label(last)}); append: one event to {APPEND_STREAM}"
    )


if __name__ == "__main__":
    main()
