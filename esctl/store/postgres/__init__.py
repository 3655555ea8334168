"""The PostgreSQL backend: the same store on a server that many clients share.

Positions: exact, gapless, in commit order
------------------------------------------
A sequence hands out numbers before commit, so with two writers number 11 can
commit after number 12; a reader that saw 12 and keeps "after 12" as its
checkpoint never sees 11. High-water marks that wait for the gaps to close guess
how long to wait, and guess wrong under load or after a crash.

esctl takes no number it could lose. The log's head is one row, `esctl_head`, and
every transaction that inserts events locks it before its rows go in and moves it
after (the events_adding and events_added triggers do, for esctl and for a psql
session alike; esctl's writer locks it first, with SELECT ... FOR UPDATE, to number
its rows, always at READ COMMITTED so that a writer that waited sees what the one
before it committed). The row lock is held to commit, so:

- a writer reads the head only after the previous writer committed or rolled
  back: its first position is the next one, with nothing uncommitted below it;
- the positions a reader can see are always a gapless prefix of the log: a
  transaction that inserted position p waited for the one before it to end, and
  PostgreSQL makes a commit visible before it releases the commit's locks.

So `read_all(from_position=n)` never skips an event, with no wait or timeout.

The cost is that appends are serialised, as on SQLite: one writer at a time
holds the head, for the length of its transaction (one round trip for a typical
append, plus the commit's WAL flush). Readers are never blocked. bench/ measures
what this costs against unordered inserts with 8 writers; a transaction id
(xid8) cursor would let writers overlap but gives readers no gapless position,
which every esctl command and checkpoint is built on.

Everything else is as on SQLite and enforced by the database: UPDATE, DELETE and
TRUNCATE of the events are refused, versions continue each stream without a gap,
ids are unique, and streams and the counters change only with the events.
"""

from esctl.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
