"""Replay of one long stream through an aggregate, against a bare loop in the same run
(issue 3's speed and memory goals).

    python bench/bench_replay.py                    # 1,000,000 events in one stream
    python bench/bench_replay.py --events 100000    # a quick look

Measured, as medians of --repeat runs in this process:
- baseline: select the stream's rows (type, data), decode each with orjson and call
  the same handler function in a bare loop;
- esctl: `Replayer(store, Counter, snapshots=False).replay(stream)`, which streams
  (version, type, data) rows and dispatches by type;
- esctl, whole rows: the same with one handler that takes the whole event, so every
  row comes whole through store.read_stream (as when upcasters apply);
- snapshot: the same replay starting from a snapshot 1,000 events behind the head.
Peak memory is Python's tracemalloc peak during one replay (separate, untimed runs),
so it shows whether events are streamed or held.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from esctl.aggregates import Aggregate, Replayer, evolve
from esctl.events import NewEvent
from esctl.store import EventStore

STREAM = "bench-1"


class Counter(Aggregate):
    """A simple aggregate: a counter and a dict update per event."""

    category = "bench"

    def initial() -> dict[str, Any]:
        return {"count": 0, "by_key": {}}

    @evolve("Ticked")
    def ticked(state: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        state["count"] += 1
        state["by_key"][data["key"]] = data["value"]
        return state


class CounterWithEnvelope(Counter):
    """The same fold, plus a handler that wants the whole event: replay then reads
    whole rows through store.read_stream (the path upcasters also take)."""

    @evolve("Stamped")
    def stamped(state: dict[str, Any], data: dict[str, Any], event: Any) -> dict[str, Any]:
        return state


def events(count: int) -> Iterator[tuple[str, NewEvent]]:
    for i in range(count):
        yield "", NewEvent(STREAM, "Ticked", {"key": f"k{i % 100}", "value": i, "note": "tick"})


def build(path: str, count: int) -> None:
    if os.path.exists(path):
        with EventStore.open(path) as store:
            if store.stream_version(STREAM) == count:
                return
        raise SystemExit(f"{path} exists with another event count: remove it or choose another --db")
    start = time.perf_counter()
    with EventStore.open(path, create=True) as store:
        store.import_events(events(count))
    print(f"built {count:,} events in {time.perf_counter() - start:.1f} s", file=sys.stderr)


def baseline(store: EventStore) -> dict[str, Any]:
    handlers: dict[str, Callable[..., Any]] = {"Ticked": Counter.ticked}
    state: dict[str, Any] = {"count": 0, "by_key": {}}
    loads = orjson.loads
    cursor = store.conn.execute("SELECT type, data FROM events WHERE stream = ? ORDER BY version", (STREAM,))
    for event_type, data in cursor:
        state = handlers[event_type](state, loads(data))
    return state


def esctl_replay(store: EventStore) -> dict[str, Any]:
    return Replayer(store, Counter, snapshots=False).replay(STREAM).state


def esctl_whole_rows(store: EventStore) -> dict[str, Any]:
    return Replayer(store, CounterWithEnvelope, snapshots=False).replay(STREAM).state


def snapshot_replay(store: EventStore) -> dict[str, Any]:
    replayed = Replayer(store, Counter).replay(STREAM)
    assert replayed.from_snapshot is not None
    return replayed.state


def timed(fn: Callable[[EventStore], Any], store: EventStore, repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(store)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def peak_memory(fn: Callable[[EventStore], Any], store: EventStore) -> int:
    tracemalloc.start()
    fn(store)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the stream")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measure (median)")
    parser.add_argument("--behind", type=int, default=1_000, help="snapshot this many events behind the head")
    parser.add_argument("--db", help="store file to build or reuse  [default: a temporary file]")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or os.path.join(tmp, "replay.db")
        build(path, args.events)
        with EventStore.open(path) as store:
            if _has_snapshots(store):  # a reused file: start without snapshots
                store.conn.execute("DELETE FROM esctl_snapshots")
            base_time, base_state = timed(baseline, store, args.repeat)
            esctl_time, esctl_state = timed(esctl_replay, store, args.repeat)
            assert esctl_state == base_state, "esctl and the baseline disagree"
            whole_time, whole_state = timed(esctl_whole_rows, store, args.repeat)
            assert whole_state == base_state, "the whole-row replay disagrees"

            Replayer(store, Counter).snapshot(STREAM, args.events - args.behind)
            snap_time, snap_state = timed(snapshot_replay, store, args.repeat)
            assert snap_state == base_state, "the snapshot replay disagrees"

            base_peak = peak_memory(baseline, store)
            esctl_peak = peak_memory(esctl_replay, store)
            snap_peak = peak_memory(snapshot_replay, store)

    n = args.events
    print(f"replay of one {n:,}-event stream (median of {args.repeat} runs)")
    print(f"  baseline (select, orjson, handler loop): {base_time:8.3f} s  {n / base_time:>12,.0f} events/s")
    print(
        f"  esctl Replayer, no snapshot:             {esctl_time:8.3f} s  {n / esctl_time:>12,.0f} events/s"
    )
    print(f"  esctl / baseline speed:                  {base_time / esctl_time:8.2f}x  (goal >= 0.5x)")
    print(
        f"  esctl, whole rows (a 3-parameter handler): {whole_time:6.3f} s  {n / whole_time:>12,.0f} events/s"
        f"  ({base_time / whole_time:.2f}x)"
    )
    print(f"  from a snapshot {args.behind:,} behind head:      {snap_time * 1000:8.2f} ms")
    print(f"  snapshot speed-up over from start:       {esctl_time / snap_time:8.0f}x  (goal >= 100x)")
    print(
        "  peak traced memory: baseline"
        f" {base_peak / 1e6:.2f} MB, esctl {esctl_peak / 1e6:.2f} MB, from snapshot {snap_peak / 1e6:.2f} MB"
    )


def _has_snapshots(store: EventStore) -> bool:
    return bool(store.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'esctl_snapshots'").fetchone())


if __name__ == "__main__":
    main()
