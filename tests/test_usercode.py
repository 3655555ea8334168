"""Telling the user's code from library code, and how its places are shown."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from esctl import usercode
from esctl.transaction import immediate


def test_paths_inside_the_current_directory_are_shown_relative(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert usercode.shown_path(str(tmp_path / "models" / "m.py")) == os.path.join("models", "m.py")
    assert usercode.shown_path("/elsewhere/m.py") == "/elsewhere/m.py"


def test_the_users_frame_skips_esctl_and_the_standard_library(tmp_path: Path, monkeypatch):
    model = tmp_path / "m.py"
    model.write_text("import json\n\ndef bad():\n    return json.loads('{')\n")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(model.read_text(), str(model), "exec"), namespace)
    with pytest.raises(ValueError) as caught:
        namespace["bad"]()
    assert usercode.where(caught.value) == "m.py, line 4: "  # not json's own frames
    assert not usercode.is_user_file(json_file())
    assert not usercode.is_user_file(usercode.__file__)


def json_file() -> str:
    import json

    return json.__file__


def test_immediate_commits_or_rolls_back(tmp_path: Path):
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    conn.execute("CREATE TABLE t (x)")
    with immediate(conn):
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError), immediate(conn):
        conn.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError
    assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
    assert not conn.in_transaction
