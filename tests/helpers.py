"""Small helpers shared by test modules."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_digest(path: Path) -> str:
    """The bytes of a store and its WAL: 'unchanged' means exactly this."""
    h = hashlib.sha256()
    for p in (path, Path(str(path) + "-wal")):
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()
