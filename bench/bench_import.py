"""Bulk import and export of N events through the esctl CLI, against plain baselines
measured in the same run (issue 2's speed and memory goals).

    python bench/bench_import.py                 # 1,000,000 events: 10,000 streams x 100
    python bench/bench_import.py --streams 1000  # 100,000 events, for a quick look

Baselines: import = parse the same file with orjson and insert the same rows into the
same schema with one executemany in one transaction; export = select the rows and
write orjson lines. Figures are medians of --repeat runs; peak memory is the child
process's max RSS.
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
import time

import orjson

from esctl.events import utc_now
from esctl.ids import uuid7
from esctl.store import schema


def make_file(path: str, streams: int, per_stream: int) -> int:
    rng = random.Random(7)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    with open(path, "wb") as f:
        for _ in range(per_stream):
            lines = []
            for s in range(streams):
                data = {
                    "sku": f"SKU-{rng.randrange(10**6):06d}",
                    "quantity": rng.randrange(1, 20),
                    "price": f"{rng.randrange(100, 100000) / 100:.2f}",
                    "note": " ".join(rng.choices(words, k=18)),
                    "tags": rng.sample(words, 3),
                }
                lines.append(
                    orjson.dumps({"stream": f"item-{s}", "type": "ItemAdded", "data": data, "id": uuid7()})
                )
            f.write(b"\n".join(lines) + b"\n")
    return streams * per_stream


def baseline_import(db: str, path: str) -> float:
    conn = sqlite3.connect(db, isolation_level=None)
    for statement in schema._statements(schema.DDL):
        conn.execute(statement)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    versions: dict[str, int] = {}
    now = utc_now()

    def rows():
        with open(path, "rb") as f:
            for position, line in enumerate(f, 1):
                e = orjson.loads(line)
                v = versions[e["stream"]] = versions.get(e["stream"], 0) + 1
                yield (
                    position,
                    e["stream"],
                    v,
                    e["type"],
                    orjson.dumps(e["data"]).decode(),
                    orjson.dumps(e.get("metadata", {})).decode(),
                    e["id"],
                    now,
                )

    conn.executemany(
        "INSERT INTO events (position, stream, version, type, data, metadata, id, recorded_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def baseline_export(db: str) -> float:
    start = time.perf_counter()
    conn = sqlite3.connect(db)
    with open(os.devnull, "wb") as out:
        cursor = conn.execute(
            "SELECT stream, version, position, type, data, metadata, id, recorded_at FROM events ORDER BY position"
        )
        for s, v, p, t, d, m, i, r in cursor:
            out.write(
                orjson.dumps(
                    {
                        "stream": s,
                        "version": v,
                        "position": p,
                        "type": t,
                        "data": orjson.loads(d),
                        "metadata": orjson.loads(m),
                        "id": i,
                        "recorded_at": r,
                    }
                )
                + b"\n"
            )
    conn.close()
    return time.perf_counter() - start


def run_cli(args: list[str], stdout=subprocess.DEVNULL) -> float:
    """Wall seconds of one esctl run in a fresh child process."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "esctl", *args], check=True, stdout=stdout)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--per-stream", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    args = parser.parse_args()

    work = args.dir or tempfile.mkdtemp(prefix="esctl-bench-")
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "events.ndjson")
    n = make_file(path, args.streams, args.per_stream)
    print(
        f"{n:,} events, {os.path.getsize(path) / n:.0f} bytes a line, file {os.path.getsize(path) / 2**20:.0f} MiB"
    )

    base_imp, esctl_imp, base_exp, esctl_exp = [], [], [], []
    for i in range(args.repeat):
        for suffix in ("", "-wal", "-shm"):
            for name in ("base.db", "esctl.db"):
                if os.path.exists(os.path.join(work, name + suffix)):
                    os.remove(os.path.join(work, name + suffix))
        base_imp.append(baseline_import(os.path.join(work, "base.db"), path))
        esctl_imp.append(run_cli(["--db", os.path.join(work, "esctl.db"), "import", path]))
        base_exp.append(baseline_export(os.path.join(work, "esctl.db")))
        with open(os.devnull, "wb") as devnull:
            esctl_exp.append(run_cli(["--db", os.path.join(work, "esctl.db"), "export"], stdout=devnull))
        print(
            f"run {i + 1}: import base {base_imp[-1]:.2f}s esctl {esctl_imp[-1]:.2f}s;"
            f" export base {base_exp[-1]:.2f}s esctl {esctl_exp[-1]:.2f}s",
            flush=True,
        )

    peaks_imp = _peak(["import", path], work)
    peaks_exp = _peak(["export"], work, reuse=True)

    def report(name: str, base: list[float], ours: list[float]) -> None:
        b, o = statistics.median(base), statistics.median(ours)
        print(
            f"{name}: baseline {n / b:,.0f} events/s, esctl {n / o:,.0f} events/s, ratio {b / o:.2f}x"
            f" (medians of {len(base)})"
        )

    report("import", base_imp, esctl_imp)
    report("export", base_exp, esctl_exp)
    print(f"peak RSS: import {peaks_imp:.0f} MiB, export {peaks_exp:.0f} MiB")


def _peak(cli_args: list[str], work: str, reuse: bool = False) -> float:
    """Peak RSS in MiB of one esctl run (wait4 reports the child's own maximum)."""
    db = os.path.join(work, "peak.db")
    if not reuse:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
    proc = subprocess.Popen([sys.executable, "-m", "esctl", "--db", db, *cli_args], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"esctl {cli_args} failed")
    return usage.ru_maxrss / 1024


if __name__ == "__main__":
    main()
