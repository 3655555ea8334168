"""The cost of `query`'s progress handler (its deadline and Ctrl-C checks): the same
queries through run_query with the handler and with it switched off, in this process.

    python bench/bench_query.py                 # 1,000,000 rows
    python bench/bench_query.py --rows 100000   # a quick look

Each measure is the median of --repeat runs, the two variants taking turns; times are
this process's CPU time (other work on the machine disturbs it less than wall time).
The handler runs every query.STEPS_PER_CHECK SQLite VM steps; "off" sets that to 0,
which SQLite takes as no handler, and leaves SIGINT alone (as before the handler was
added: no handler swapped around each call into SQLite). The cost of one check is
measured apart, with a check every 10 steps, so that it stands out of the noise.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time

from esctl.projections import query


def build(path: str, rows: int) -> None:
    start = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, v INTEGER)")
    conn.execute(
        "INSERT INTO t WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s LIMIT ?)"
        " SELECT i, 'k' || i, i * 7 FROM s",
        (rows,),
    )
    conn.commit()
    conn.close()
    print(f"built {rows:,} rows in {time.perf_counter() - start:.1f} s", file=sys.stderr)


_CATCH_SIGINT = query._Run._catch_sigint


def run(path: str, sql: str, steps: int) -> float:
    query.STEPS_PER_CHECK = steps
    query._Run._catch_sigint = _CATCH_SIGINT if steps else lambda self: None  # type: ignore[method-assign]
    start = time.process_time()
    for _row in query.run_query(path, sql, timeout=3600).rows:
        pass
    return time.process_time() - start


def vm_steps(sql: str) -> int:
    conn = sqlite3.connect(":memory:")
    ticks = 0

    def count() -> int:
        nonlocal ticks
        ticks += 1
        return 0

    conn.set_progress_handler(count, 100)
    conn.execute(sql).fetchall()
    conn.close()
    return ticks * 100


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows counted, scanned and streamed")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per variant (median)")
    args = parser.parse_args()
    n = args.rows
    every = query.STEPS_PER_CHECK
    cte = f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT {n}) SELECT count(*) FROM c"
    work = {
        f"count(*) over a {n:,}-row recursive CTE": cte,
        f"count(*), sum() scanning a {n:,}-row table": "SELECT count(*), sum(v) FROM t WHERE v % 3 = 1",
        f"{n:,} rows streamed out (rows iterated)": "SELECT id, k, v FROM t",
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "query.db")
        build(path, n)
        print(f"progress handler every {every:,} VM steps against none (CPU s, median of {args.repeat} runs)")
        for name, sql in work.items():
            times: dict[int, list[float]] = {0: [], every: []}
            for _ in range(args.repeat):
                for steps in times:
                    times[steps].append(run(path, sql, steps))
            off, on = statistics.median(times[0]), statistics.median(times[every])
            print(f"  {name}: off {off:.3f} s, on {on:.3f} s ({(on / off - 1) * 100:+.1f}%)")

        steps = vm_steps(cte)
        times = {0: [], 10: []}
        for _ in range(args.repeat):
            for s in times:
                times[s].append(run(path, cte, s))
        off, dense = statistics.median(times[0]), statistics.median(times[10])
        per_check = (dense - off) / (steps / 10)
        checks = steps // every
        print(
            f"  one check: {per_check * 1e6:.2f} us ({steps:,} VM steps; a check every 10 steps took"
            f" {dense:.3f} s against {off:.3f} s); every {every:,} steps: {checks:,} checks,"
            f" {checks * per_check * 1e3:.2f} ms, {checks * per_check / off * 100:.2f}% of the count,"
            f" one check per {off / checks * 1e3:.2f} ms of work"
        )
    query.STEPS_PER_CHECK = every
    query._Run._catch_sigint = _CATCH_SIGINT  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
