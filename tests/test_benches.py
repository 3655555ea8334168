"""The benchmarks still run: each bench/ script on tiny sizes, in a child process.

Only that they finish and print their tables is checked, never a figure: timing
belongs to the benches themselves (a loaded machine would fail any timed assert)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

# script, arguments for a tiny run, text its stdout must hold
RUNS = [
    ("bench_import.py", ["--quick"], ["CLI import, v4 ids given", "peak RSS", "SQLite's own limit"]),
    (
        "bench_append.py",
        ["--quick"],
        ["esctl EventStore.append", "hand-written executemany", "eventsourcing"],
    ),
    ("bench_growth.py", ["--quick"], ["read --all --type Flagged --limit 10", "wall time", "3k/1k"]),
    ("bench_query.py", ["--rows", "1000", "--repeat", "1"], ["one check"]),
    (
        "bench_rebuild.py",
        ["--events", "2000", "--streams", "20", "--catch-up", "100", "--repeat", "1"],
        ["rebuild  esctl / baseline", "catch-up"],
    ),
    ("bench_replay.py", ["--events", "2000", "--repeat", "1", "--behind", "100"], ["snapshot speed-up"]),
    ("bench_startup.py", ["--runs", "1"], ["esctl append"]),
]


@pytest.mark.slow
@pytest.mark.parametrize(("script", "args", "expected"), RUNS, ids=[run[0] for run in RUNS])
def test_bench_runs(script: str, args: list[str], expected: list[str], tmp_path: Path) -> None:
    if "--quick" in args:
        args = [*args, "--dir", str(tmp_path)]
    _runs(script, args, expected, tmp_path)


def _runs(script: str, args: list[str], expected: list[str], tmp_path: Path) -> None:
    """The bench finishes without a traceback and prints what `expected` names."""
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for text in expected:
        assert text in proc.stdout, proc.stdout


def test_events_are_fixed_by_the_seed() -> None:
    """The baseline and esctl must see the same events and ids: the generator is
    deterministic, and the data do not depend on whether ids are given."""
    sys.path.insert(0, str(BENCH))
    try:
        import benchlib
    finally:
        sys.path.remove(str(BENCH))
    with_ids = list(benchlib.events(3_000, ids=True))
    assert with_ids == list(benchlib.events(3_000, ids=True))
    without = list(benchlib.events(3_000, ids=False))
    assert [{k: v for k, v in e.items() if k != "id"} for e in with_ids] == without
    assert len({e["id"] for e in with_ids}) == 3_000
    streams = {e["stream"] for e in without}
    assert len(streams) == 30
    assert {benchlib.stream_name(i).split("-")[0] for i in range(30)} == set(benchlib.CATEGORIES)
    assert all(sum(e["stream"] == s for e in without) == benchlib.PER_STREAM for s in streams)
    rare = [i for i, e in enumerate(without) if e["type"] == benchlib.RARE_TYPE]
    assert len(rare) == benchlib.RARE_COUNT
    assert min(rare) >= 3_000 - 30


@pytest.mark.slow
def test_the_postgresql_bench_runs(postgres_url: str, tmp_path: Path) -> None:
    _runs(
        "bench_postgres.py",
        ["--quick", "--url", postgres_url, "--dir", str(tmp_path)],
        [
            "esctl import_events",
            "raw COPY, binary",
            "esctl append",
            "vs unordered",
            "replay (default fold)",
            "catch-up of a projection",
        ],
        tmp_path,
    )


@pytest.mark.slow
def test_the_subscriptions_bench_runs(postgres_url: str, tmp_path: Path) -> None:
    _runs(
        "bench_subscriptions.py",
        ["--quick", "--url", postgres_url, "--dir", str(tmp_path)],
        ["follow: commit to line", "consume --exec true", "bare spawn loop", "projection catch-up"],
        tmp_path,
    )
