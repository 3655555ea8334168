"""Code health the suite enforces: the layering (import-linter's contracts in
pyproject.toml: the core never imports the CLI or a screen library, the store
imports no feature package) and a ruff-clean tree, with the pinned ruff."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
# Entry points: they exist to start the CLI.
ENTRY = {"esctl", "esctl.cli", "esctl.__main__"}


def test_the_layering_contracts_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlinter.cli import lint_imports

    monkeypatch.chdir(ROOT)
    assert lint_imports() == 0  # its report names the import chain that breaks a contract


def test_every_core_module_is_under_the_no_screen_contract() -> None:
    (contract,) = [
        c
        for c in CONFIG["contracts"]
        if "esctl.cli" in c["forbidden_modules"] and "rich" in c["forbidden_modules"]
    ]
    top_level = {
        f"esctl.{p.stem if p.is_file() else p.name}"
        for p in (ROOT / "esctl").iterdir()
        if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.name != "__init__.py"
    }
    assert top_level - ENTRY == set(contract["source_modules"])


def test_the_code_is_ruff_clean() -> None:
    import subprocess
    import sys

    for args in (["check", "."], ["format", "--check", "."]):
        proc = subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
