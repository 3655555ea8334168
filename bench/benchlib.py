"""What the store benchmarks share: the events (fixed seed), the hand-written baseline
(orjson + executemany into a plain schema), timing (medians of wall and CPU time),
a child's peak RSS, and table printing.

Only the standard library and orjson are imported here, never esctl: the baseline
worker below starts like a script a user would write, and the eventsourcing peer
imports this module from its own virtual environment.

The baseline worker, run as a child so that it pays interpreter start-up as esctl does:

    python bench/benchlib.py import FILE DB     # parse NDJSON, executemany, one transaction
    python bench/benchlib.py export DB          # select every row, write orjson lines to stdout
"""

from __future__ import annotations

# Only what the baseline worker needs is imported at the top (a hand-written script
# would import no more); the rest is imported where it is used.
import os
import random
import sqlite3
import sys
import time
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import argparse
    import tempfile
    from collections.abc import Callable, Iterable, Iterator, Sequence

# --- the events ---------------------------------------------------------------------

CATEGORIES = (
    "order",
    "invoice",
    "payment",
    "shipment",
    "customer",
    "product",
    "cart",
    "refund",
    "review",
    "account",
)
PER_STREAM = 100
# Streams written round-robin at a time: each stream's 100 events spread over
# WINDOW * 100 positions, as when many streams are live at once, without the
# whole store being one round-robin.
WINDOW = 1_000
RARE_TYPE = "Flagged"
RARE_COUNT = 10  # events of RARE_TYPE, all in the last 1% of positions
SEED = 7
_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


def stream_name(index: int) -> str:
    """The name of stream number `index`: its category is CATEGORIES[index % 10]."""
    return f"{CATEGORIES[index % len(CATEGORIES)]}-{index}"


def stream_count(events: int) -> int:
    return -(-events // PER_STREAM)


def middle_stream(events: int) -> str:
    """A stream of the store's middle, in every size: what `read STREAM` reads."""
    return stream_name(stream_count(events) // 2)


def events(count: int, *, ids: bool, seed: int = SEED, window: int = WINDOW) -> Iterator[dict[str, Any]]:
    """`count` envelopes {stream, type, data[, id]}: 100 per stream over 10 categories,
    `window` streams round-robin at a time, RARE_TYPE RARE_COUNT times in the last 1%.
    The same seed gives the same events, and the same v4 ids when `ids`; the data do
    not depend on `ids`."""
    import uuid

    data_rng, id_rng = random.Random(seed), random.Random(seed + 1)
    rare_start = count - count // 100
    rare_step = max(1, (count - rare_start) // RARE_COUNT)
    rare_left = RARE_COUNT
    index = 0
    streams = stream_count(count)
    for first in range(0, streams, window):
        group = [stream_name(s) for s in range(first, min(first + window, streams))]
        for _version in range(PER_STREAM):
            for stream in group:
                if index == count:
                    return
                event_type = "ItemAdded" if index % 5 else "ItemRemoved"
                if rare_left and index >= rare_start and (index - rare_start) % rare_step == 0:
                    event_type, rare_left = RARE_TYPE, rare_left - 1
                event: dict[str, Any] = {
                    "stream": stream,
                    "type": event_type,
                    "data": {
                        "sku": f"SKU-{data_rng.randrange(10**6):06d}",
                        "quantity": data_rng.randrange(1, 20),
                        "price": f"{data_rng.randrange(100, 100000) / 100:.2f}",
                        "note": " ".join(data_rng.choices(_WORDS, k=18)),
                        "tags": data_rng.sample(_WORDS, 3),
                    },
                }
                if ids:
                    event["id"] = str(uuid.UUID(int=id_rng.getrandbits(128), version=4))
                yield event
                index += 1


def append_batches(calls: int, *, seed: int = SEED) -> list[tuple[str, list[dict[str, Any]]]]:
    """The events of `calls` streams, stream by stream: one call's worth (100) each."""
    batches: list[tuple[str, list[dict[str, Any]]]] = []
    for event in events(calls * PER_STREAM, ids=False, seed=seed, window=1):
        if not batches or batches[-1][0] != event["stream"]:
            batches.append((event["stream"], []))
        batches[-1][1].append(event)
    return batches


def write_events(path: str, count: int, *, ids: bool) -> None:
    """The events as an NDJSON file, `esctl import`'s input."""
    dumps = orjson.dumps
    with open(path, "wb") as f:
        batch = []
        for event in events(count, ids=ids):
            batch.append(dumps(event))
            if len(batch) == 10_000:
                f.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            f.write(b"\n".join(batch) + b"\n")


_last_ms = _counter = 0


def uuid7() -> str:
    """A time-ordered UUIDv7, as a user would copy one in: the baseline's generated ids
    are of the kind esctl generates, so that both pay the same index cost."""
    global _last_ms, _counter
    ms = time.time_ns() // 1_000_000
    if ms <= _last_ms:
        _counter += 1
        if _counter > 0xFFF:
            _last_ms, _counter = _last_ms + 1, 0
        ms = _last_ms
    else:
        _last_ms, _counter = ms, 0
    value = (ms << 80) | (0x7 << 76) | (_counter << 64) | (0b10 << 62) | random.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def utc_now() -> str:
    ns = time.time_ns()
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
    return f"{seconds}.{ns // 1000 % 1_000_000:06d}Z"


# --- the baseline: a plain schema, written by hand ----------------------------------------

PLAIN_DDL = """
CREATE TABLE events (
    position    INTEGER PRIMARY KEY,
    stream      TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    type        TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    metadata    TEXT    NOT NULL,
    id          TEXT    NOT NULL UNIQUE,
    recorded_at TEXT    NOT NULL,
    UNIQUE (stream, version)
)
"""
# The same table with no index but the primary key: the floor of an insert, not a
# store anyone should keep (nothing refuses a duplicate version or id).
BARE_DDL = PLAIN_DDL.replace(" UNIQUE,", ",").replace(",\n    UNIQUE (stream, version)", "")
COLUMNS = "stream, version, position, type, data, metadata, id, recorded_at"
INSERT = f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def plain_store(
    path: str, *, synchronous: str = "FULL", cache_kib: int | None = None, ddl: str = PLAIN_DDL
) -> sqlite3.Connection:
    """A new plain-schema store: WAL, `synchronous` FULL unless told, SQLite's
    default page cache unless `cache_kib` is given."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    if cache_kib is not None:
        conn.execute(f"PRAGMA cache_size = -{cache_kib}")
    conn.execute(ddl)
    return conn


def plain_rows(source: str) -> Iterator[tuple[Any, ...]]:
    """An NDJSON file's events as rows, as a user would make them by hand: orjson per
    line, versions counted in a dict, the given id or a new UUIDv7."""
    versions: dict[str, int] = {}
    now = utc_now()
    loads, dumps = orjson.loads, orjson.dumps
    with open(source, "rb") as f:
        for position, line in enumerate(f, 1):
            e = loads(line)
            version = versions[e["stream"]] = versions.get(e["stream"], 0) + 1
            yield (
                e["stream"],
                version,
                position,
                e["type"],
                dumps(e.get("data", {})).decode(),
                dumps(e.get("metadata", {})).decode(),
                e.get("id") or uuid7(),
                now,
            )


def baseline_import(source: str, db: str) -> int:
    """Import an NDJSON file as a user would by hand: `plain_rows`, one executemany
    in one transaction."""
    conn = plain_store(db)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(INSERT, plain_rows(source))
    conn.execute("COMMIT")
    count = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
    conn.close()
    return count


def baseline_export(db: str, out: Any) -> int:
    """Every row in position order as an orjson line, data and metadata decoded and
    encoded again as a hand-written exporter does."""
    conn = sqlite3.connect(db)
    loads, dumps, count = orjson.loads, orjson.dumps, 0
    for s, v, p, t, d, m, i, r in conn.execute(f"SELECT {COLUMNS} FROM events ORDER BY position"):
        out.write(
            dumps(
                {
                    "stream": s,
                    "version": v,
                    "position": p,
                    "type": t,
                    "data": loads(d),
                    "metadata": loads(m),
                    "id": i,
                    "recorded_at": r,
                }
            )
            + b"\n"
        )
        count += 1
    conn.close()
    return count


def baseline_read_all(db: str) -> int:
    """Every row in position order, data and metadata decoded: what read_all hands back."""
    conn = sqlite3.connect(db)
    loads, count = orjson.loads, 0
    for _s, _v, _p, _t, d, m, _i, _r in conn.execute(f"SELECT {COLUMNS} FROM events ORDER BY position"):
        loads(d)
        loads(m)
        count += 1
    conn.close()
    return count


def stored_rows(db: str) -> list[tuple[Any, ...]]:
    """The rows of a store in position order, ready to insert again (SQLite's own limit)."""
    conn = sqlite3.connect(db)
    rows = conn.execute(f"SELECT {COLUMNS} FROM events ORDER BY position").fetchall()
    conn.close()
    return rows


def remove_store(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


# --- timing -----------------------------------------------------------------------


class Sample:
    """One measured run: wall seconds, CPU seconds (user + system), peak RSS in MiB of
    the child (0 for a run in this process)."""

    __slots__ = ("cpu", "rss_mib", "wall")

    def __init__(self, wall: float, cpu: float, rss_mib: float = 0.0) -> None:
        self.wall, self.cpu, self.rss_mib = wall, cpu, rss_mib


class Series:
    """Runs of one measure; figures are medians (RSS: the largest)."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def add(self, sample: Sample) -> Sample:
        self.samples.append(sample)
        return sample

    @property
    def wall(self) -> float:
        import statistics

        return statistics.median(s.wall for s in self.samples)

    @property
    def cpu(self) -> float:
        import statistics

        return statistics.median(s.cpu for s in self.samples)

    @property
    def rss_mib(self) -> float:
        return max(s.rss_mib for s in self.samples)

    def runs(self) -> str:
        return " ".join(f"{s.wall:.2f}" for s in self.samples)


# Starts the measured child and reports its wall time and rusage. On Linux a child's
# peak RSS starts from the memory of the process it was spawned from (exec keeps the
# old address space's high-water mark), so children are spawned from this small
# interpreter, never from the bench, whose own memory would be counted.
_LAUNCHER = """
import os, sys, time
report, cmd = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.posix_spawn(cmd[0], cmd, os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(report, "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {wall} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
"""


def run_child(cmd: Sequence[str], *, stdout: Any = None, stdin: Any = None) -> Sample:
    """Run one child process to its end, stdout to /dev/null unless given: its wall
    time, its own CPU time (user + system) and its peak RSS. A failure ends the bench
    with the child's stderr."""
    import subprocess
    import tempfile

    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as report:
        subprocess.run(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, report.name, *cmd],
            stdout=subprocess.DEVNULL if stdout is None else stdout,
            stderr=err,
            stdin=stdin or subprocess.DEVNULL,
            check=False,
        )
        fields = report.read().split()
        if not fields or fields[0] != "0":
            err.seek(0)
            message = err.read().decode(errors="replace").strip()[-2000:]
            raise SystemExit(f"failed ({fields[0] if fields else '?'}): {' '.join(cmd)}\n{message}")
    return Sample(float(fields[1]), float(fields[2]), int(fields[3]) / 1024)


def run_worker(cmd: Sequence[str]) -> dict[str, Any]:
    """Run a worker that prints one JSON object (its own timings) on stdout."""
    import json
    import subprocess

    proc = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL)
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.decode()[-2000:]}")
    return json.loads(proc.stdout)


def timed(fn: Callable[[], Any]) -> tuple[Sample, Any]:
    """Run `fn` in this process: wall and this process's CPU time."""
    cpu, start = time.process_time(), time.perf_counter()
    result = fn()
    return Sample(time.perf_counter() - start, time.process_time() - cpu), result


def esctl_command(db: str, *args: str) -> list[str]:
    """An esctl CLI run against the store `db`, in the interpreter running the bench."""
    return [sys.executable, "-m", "esctl", "--db", db, *args]


BASELINE_WORKER = os.path.abspath(__file__)


def baseline_command(*args: str) -> list[str]:
    return [sys.executable, BASELINE_WORKER, *args]


# --- arguments and output -------------------------------------------------------------


def add_common_options(parser: argparse.ArgumentParser, runs: int) -> None:
    parser.add_argument(
        "--runs", type=int, default=runs, help=f"timed runs per measure, median (default {runs})"
    )
    parser.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes, one run")


def work_dir(path: str | None) -> tempfile.TemporaryDirectory[str] | _Kept:
    """The work directory: the one given (kept), else a temporary one (removed)."""
    import tempfile

    if path:
        os.makedirs(path, exist_ok=True)
        return _Kept(path)
    return tempfile.TemporaryDirectory(prefix="esctl-bench-")


class _Kept:
    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> str:
        return self.path

    def __exit__(self, *exc: object) -> None:
        pass


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in headers], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def seconds(value: float) -> str:
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def rate(events: int, value: float) -> str:
    return f"{events / value:,.0f}/s" if value > 0 else "-"


def ratio(baseline: float, ours: float) -> str:
    """Speed relative to the baseline: above 1 is faster than it."""
    return f"{baseline / ours:.2f}x" if ours > 0 else "-"


def size_label(events: int) -> str:
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if events >= scale and events % (scale // 10) == 0:
            return f"{events / scale:g}{unit}"
    return str(events)


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "").replace(",", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if scale != 1 else text
    return int(float(number) * scale)


def machine_note() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} CPUs, load {load:.2f}, Python {sys.version.split()[0]},"
        f" SQLite {sqlite3.sqlite_version}, orjson {orjson.__version__}"
    )


def main(argv: list[str]) -> None:
    usage = "usage: benchlib.py import FILE DB | export DB"
    if argv[:1] == ["import"] and len(argv) == 3:
        baseline_import(argv[1], argv[2])
    elif argv[:1] == ["export"] and len(argv) == 2:
        baseline_export(argv[1], sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        raise SystemExit(usage)


if __name__ == "__main__":
    main(sys.argv[1:])
