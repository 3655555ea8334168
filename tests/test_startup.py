"""Start-up policy: heavy modules load only where they are used.

Timing lives in bench/bench_startup.py; these tests pin the cause of slowness
instead: which modules each entry point imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = {"typer", "click", "rich", "sqlite_utils", "pydantic", "psycopg"}

# Runs in a fresh interpreter: argv[1] is the esctl command line as JSON (null: only
# `import esctl`); reports the heavy modules that ended up loaded.
PROBE = """
import json, sys
args, heavy = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
if args is None:
    import esctl
else:
    sys.argv = ["esctl", *args]
    from esctl.cli import main
    try:
        main()
    except SystemExit:
        pass
sys.stderr.write("LOADED " + json.dumps(sorted({m.split(".")[0] for m in sys.modules} & heavy)) + "\\n")
"""


def loaded_by(args: list[str] | None) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(sorted(HEAVY))],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("LOADED ")]
    assert line, proc.stderr
    return json.loads(line[0][len("LOADED ") :])


def test_the_library_imports_no_cli_or_rendering_module():
    assert loaded_by(None) == []


def test_a_piped_append_loads_neither_rich_nor_sqlite_utils(tmp_path: Path):
    loaded = loaded_by(["--db", str(tmp_path / "e.db"), "append", "s-1", "T", '{"a": 1}'])
    assert "rich" not in loaded
    assert "sqlite_utils" not in loaded
    assert "pydantic" not in loaded
    assert "psycopg" not in loaded  # the PostgreSQL driver loads only for postgresql:// URLs


def test_help_does_not_load_sqlite_utils(tmp_path: Path):
    loaded = loaded_by(["--help"])
    assert "sqlite_utils" not in loaded
    assert "psycopg" not in loaded
    assert "pydantic" not in loaded


def test_a_postgresql_url_loads_the_driver(tmp_path: Path):
    # The same probe sees psycopg once a postgresql:// URL is used (the connection
    # fails: no server listens in this directory).
    loaded = loaded_by(["--db", f"postgresql://x@/x?host={tmp_path}&port=1", "info"])
    assert "psycopg" in loaded
