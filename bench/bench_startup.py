"""Start-up cost of esctl commands against `python -c "import sqlite3, orjson"`.

    python bench/bench_startup.py [--runs 21]

Each command runs in a fresh interpreter, stdout piped; figures are medians, and
the differences are against the baseline measured interleaved in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, check=True
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    db = os.path.join(tempfile.mkdtemp(prefix="esctl-startup-"), "events.db")
    esctl = [sys.executable, "-m", "esctl", "--db", db]
    subprocess.run([*esctl, "init"], check=True, stdout=subprocess.DEVNULL)
    commands = {
        "baseline": [sys.executable, "-c", "import sqlite3, orjson"],
        "esctl append": [*esctl, "append", "order-1", "Created", '{"total": 1}'],
        "esctl --help": [*esctl, "--help"],
        "esctl read (piped)": [*esctl, "read", "order-1", "--limit", "1"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, cmd in commands.items():  # interleaved: machine noise hits all alike
            times[name].append(timed(cmd))
    base = statistics.median(times["baseline"])
    print(f"baseline (python -c 'import sqlite3, orjson'): {base * 1000:.0f} ms (median of {args.runs})")
    for name, values in times.items():
        if name != "baseline":
            m = statistics.median(values)
            print(f"{name}: {m * 1000:.0f} ms, +{(m - base) * 1000:.0f} ms over baseline")


if __name__ == "__main__":
    main()
