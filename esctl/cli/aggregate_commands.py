"""Aggregate commands: replay, diff, versions, exec, snapshot, upcast (issue 3)."""
