"""Start-up cost of esctl commands against `python -c "import sqlite3, orjson"`.

    python bench/bench_startup.py [--runs 21]

Each command runs in a fresh interpreter, stdout piped (and `--help` once more on a
pseudo-terminal, where Typer draws Rich help); figures are medians, and
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


def timed_on_terminal(cmd: list[str]) -> float:
    """The same, with stdout and stderr on a pseudo-terminal (Rich help is drawn)."""
    import pty
    import threading

    leader, follower = pty.openpty()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)

    def drain() -> None:
        try:
            while os.read(leader, 65536):
                pass
        except OSError:  # the terminal closed with the process
            pass

    reader = threading.Thread(target=drain)
    reader.start()
    proc.wait()
    elapsed = time.perf_counter() - start
    reader.join()
    os.close(leader)
    return elapsed


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
    times["baseline (terminal)"], times["esctl --help (terminal)"] = [], []
    for _ in range(args.runs):
        for name, cmd in commands.items():  # interleaved: machine noise hits all alike
            times[name].append(timed(cmd))
        times["baseline (terminal)"].append(timed_on_terminal(commands["baseline"]))
        times["esctl --help (terminal)"].append(timed_on_terminal(commands["esctl --help"]))
    base = statistics.median(times["baseline"])
    tty_base = statistics.median(times.pop("baseline (terminal)"))
    print(f"baseline (python -c 'import sqlite3, orjson'): {base * 1000:.0f} ms (median of {args.runs})")
    for name, values in times.items():
        if name != "baseline":
            m = statistics.median(values)
            b = tty_base if name.endswith("(terminal)") else base
            print(f"{name}: {m * 1000:.0f} ms, +{(m - b) * 1000:.0f} ms over baseline")


if __name__ == "__main__":
    main()
