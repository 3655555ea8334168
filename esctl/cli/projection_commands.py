"""Projection commands: project list/run/rebuild/verify/reset and query (issue 4)."""
