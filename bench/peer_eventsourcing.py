"""The peer of bench_append.py: Python `eventsourcing`'s SQLite application recorder
appending the same events, 100 to one stream per call. Runs in bench/.venv-peer
(eventsourcing and orjson, installed by bench_append.py), never in esctl's venv.

    bench/.venv-peer/bin/python bench/peer_eventsourcing.py DB CALLS

Each call is one `insert_events` of 100 StoredEvent objects (originator id = the
stream name, version, topic = the event type, state = the data as orjson bytes)
built inside the timed loop, as an application's mapper would hand them over. The
recorder is the one an eventsourcing Application uses on SQLite: WAL, one
transaction per call, positions from the rowid. Prints one JSON object: wall and
CPU seconds of the loop, and what was measured.
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version

import benchlib
import orjson
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore


def main() -> None:
    db, calls = sys.argv[1], int(sys.argv[2])
    batches = benchlib.append_batches(calls)
    datastore = SQLiteDatastore(db, originator_id_type="text")
    recorder = SQLiteApplicationRecorder(datastore)
    recorder.create_table()
    with datastore.transaction(commit=False) as cursor:
        cursor.execute("PRAGMA synchronous")
        synchronous = cursor.fetchone()[0]

    dumps = orjson.dumps
    cpu, start = time.process_time(), time.perf_counter()
    for stream, batch in batches:
        recorder.insert_events(
            [
                StoredEvent(stream, version, event["type"], dumps(event["data"]))
                for version, event in enumerate(batch, 1)
            ]
        )
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu

    stored = recorder.max_notification_id()
    datastore.close()
    json.dump(
        {
            "wall": wall,
            "cpu": cpu,
            "events": stored,
            "version": version("eventsourcing"),
            "synchronous": synchronous,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
