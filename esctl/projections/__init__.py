"""Projections: read models built from the event log into ordinary tables, in the
store's SQLite file, a SQLite file of their own, or the store's PostgreSQL database
(esctl.store.readmodels).

Define them in a model module (`Projection`, `Table`); run, rebuild, verify and query
them with the functions here or `esctl project ...`. Importing this package loads
neither sqlite-utils nor any CLI library.
"""

from esctl.projections.apply import ProjectionFailed
from esctl.projections.definition import Projection, Table, projections_in
from esctl.projections.runner import ProjectionNeedsRebuild
from esctl.projections.tables import ProjectionWriteError, Tables, TableWriter
from esctl.subscriptions.catchup import Failure

__all__ = [
    "Failure",
    "Projection",
    "ProjectionFailed",
    "ProjectionNeedsRebuild",
    "ProjectionWriteError",
    "Table",
    "TableWriter",
    "Tables",
    "projections_in",
]
