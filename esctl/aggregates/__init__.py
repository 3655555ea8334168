"""Aggregates: state as a fold over a stream's history.

Define them in a model module (see `definition`), then replay, step through,
diff, snapshot and command them from Python or from `esctl`:

    from esctl.aggregates import Aggregate, evolve, command, Replayer, execute
"""

from esctl.aggregates.changes import changed_paths, diff
from esctl.aggregates.default_fold import DefaultFold, merge
from esctl.aggregates.definition import Aggregate, CommandContext, Emitted, command, evolve
from esctl.aggregates.errors import UnknownEventType
from esctl.aggregates.execute import Executed, execute
from esctl.aggregates.lookup import aggregate_for, aggregates_in
from esctl.aggregates.plain import to_plain
from esctl.aggregates.replay import Replayed, Replayer, Step
from esctl.errors import CommandRejected, ModelError
from esctl.store.snapshot import Snapshot
from esctl.store.sqlite.snapshots import Snapshots
from esctl.upcasting import Upcasters, upcaster

__all__ = [
    "Aggregate",
    "CommandContext",
    "CommandRejected",
    "DefaultFold",
    "Emitted",
    "Executed",
    "ModelError",
    "Replayed",
    "Replayer",
    "Snapshot",
    "Snapshots",
    "Step",
    "UnknownEventType",
    "Upcasters",
    "aggregate_for",
    "aggregates_in",
    "changed_paths",
    "command",
    "diff",
    "evolve",
    "execute",
    "merge",
    "to_plain",
    "upcaster",
]
