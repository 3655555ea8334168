"""The READMEs run exactly as written, and document every command and option.

Every ```sh and ```console block of README.md and of each sample's README runs in
bash, in document order, in a fresh directory holding a copy of `sample_streams/`.
In a sh block each command must exit as its comment promises (`# exit 3: ...`; no
promise means 0) and print what it promises (`# -> bob`: the whole output, stdout and
stderr, is that one line). In a console block each `$ command` must print exactly the lines
shown under it (stdout and stderr together, as a terminal shows them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer.main

from esctl.cli.app import app

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "sample_streams").glob("*/README.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
PROMISED_EXIT = re.compile(r"#\s*(?:piped: )?exit (\d+)\b")
PROMISED_OUTPUT = re.compile(r"#.*?->\s*(.*?)\s*$")


@dataclass
class Unit:
    """One shell command of a document, and what the document promises it does."""

    source: str
    line: int  # in the document, for failure messages
    exit_code: int | None = 0  # None: not promised (a console block promises output)
    output: str | None = None
    stops_on_ctrl_c: bool = False


def complete(buffer: str) -> bool:
    """Whether `buffer` is whole shell commands (a function, an if, a line continued)."""
    if buffer.rstrip().endswith("\\"):
        return False
    return subprocess.run(["bash", "-n"], input=buffer, capture_output=True, text=True).returncode == 0


def sh_units(text: str, first_line: int) -> list[Unit]:
    units: list[Unit] = []
    buffer, start = "", first_line
    for number, line in enumerate(text.splitlines(keepends=True), first_line):
        if not buffer and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not buffer:
            start = number
        buffer += line
        if complete(buffer):
            head = buffer.splitlines()[0]
            promised = PROMISED_EXIT.search(head)
            output = PROMISED_OUTPUT.search(head)
            stops_on_ctrl_c = "--follow" in head.partition("#")[0]
            default = 130 if stops_on_ctrl_c else 0
            units.append(
                Unit(
                    buffer,
                    start,
                    int(promised.group(1)) if promised else default,
                    output=output.group(1) + "\n" if output else None,
                    stops_on_ctrl_c=stops_on_ctrl_c,
                )
            )
            buffer = ""
    assert not buffer, f"line {start}: an incomplete shell command: {buffer!r}"
    return units


def console_units(text: str, first_line: int) -> list[Unit]:
    units: list[Unit] = []
    for number, line in enumerate(text.splitlines(), first_line):
        if line.startswith("$ "):
            units.append(Unit(line[2:] + "\n", number, exit_code=None, output=""))
        else:
            assert units, f"line {number}: output before any command"
            units[-1].output += line + "\n"  # type: ignore[operator]
    return units


def document_units(path: Path) -> list[Unit]:
    text = path.read_text()
    units: list[Unit] = []
    for match in FENCE.finditer(text):
        first_line = text.count("\n", 0, match.start(2)) + 1
        if match.group(1) == "sh":
            units += sh_units(match.group(2), first_line)
        elif match.group(1) == "console":
            units += console_units(match.group(2), first_line)
    return units


def shell_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_") and k != "PAGER"}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(home),
        NO_COLOR="1",
        LC_ALL="C.UTF-8",
    )
    return env


def fresh_directory(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    shutil.copytree(REPO / "sample_streams", work / "sample_streams")
    return work


def run_units(units: list[Unit], work: Path, env: dict[str, str]) -> list[tuple[int, str]]:
    """Run the units in one bash session (variables carry over, as in a terminal);
    return each unit's exit code and output."""
    out = work.parent / "out"
    out.mkdir()
    script = ["set -o pipefail"]
    for i, unit in enumerate(units):
        body = unit.source
        if unit.stops_on_ctrl_c:
            # A command that follows runs until Ctrl-C: it is sent one (SIGINT) after
            # a while and must stop on it; what it did by then is not what is checked.
            body = f"timeout --preserve-status -s INT 3 {body}"
        script.append(f"{{\n{body}\n}} >{out}/{i} 2>&1 </dev/null\necho $? >{out}/{i}.rc")
    subprocess.run(["bash", "-c", "\n".join(script)], cwd=work, env=env, timeout=600)
    results = []
    for i, unit in enumerate(units):
        rc_file = out / f"{i}.rc"
        assert rc_file.exists(), f"line {unit.line}: never ran (an earlier command ended the shell?)"
        results.append((int(rc_file.read_text()), (out / str(i)).read_text()))
    return results


@pytest.mark.slow
@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shell_block_runs_as_written(document: Path, tmp_path: Path) -> None:
    units = document_units(document)
    assert units, f"{document} has no shell block"
    work = fresh_directory(tmp_path)
    results = run_units(units, work, shell_env(tmp_path))
    failures = []
    for unit, (code, output) in zip(units, results, strict=True):
        if unit.exit_code is not None and code != unit.exit_code:
            failures.append(
                f"line {unit.line}: exit {code}, promised {unit.exit_code}: {unit.source}{output}"
            )
        if unit.output is not None and output != unit.output:
            failures.append(f"line {unit.line}: printed\n{output}instead of\n{unit.output}")
    assert not failures, "\n".join(failures)


def test_a_broken_promise_is_caught(tmp_path: Path) -> None:
    units = sh_units("true   # exit 3: promised wrongly\nf() {\n  false\n}\nf\necho a  # -> b\n", 1)
    units += console_units("$ echo one\ntwo\n", 7)
    assert [(u.line, u.exit_code, u.output) for u in units] == [
        (1, 3, None),
        (2, 0, None),
        (5, 0, None),
        (6, 0, "b\n"),
        (7, None, "two\n"),
    ]
    results = run_units(units, fresh_directory(tmp_path), shell_env(tmp_path))
    assert results == [(0, ""), (0, ""), (1, ""), (0, "a\n"), (0, "one\n")]


def headline_command() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"^    pip install \. && (esctl .*)$", text, re.M)
    assert match, "README.md gives the install-and-run command"
    return match.group(1)


@pytest.mark.slow
def test_the_fresh_machine_command_shows_the_aggregate(tmp_path: Path) -> None:
    work = fresh_directory(tmp_path)
    for _ in range(2):  # run again, it shows the same: the import is idempotent
        result = subprocess.run(
            ["bash", "-c", headline_command()], cwd=work, env=shell_env(tmp_path), capture_output=True
        )
        assert result.returncode == 0, result.stderr
        replayed = orjson.loads(result.stdout.splitlines()[-1])
        assert replayed["state"]["status"] == "shipped"
        assert b'"total":79.97' in result.stdout


def python_blocks(path: Path) -> list[str]:
    return [m.group(2) for m in FENCE.finditer(path.read_text()) if m.group(1) == "python"]


def test_every_python_block_compiles() -> None:
    for document in DOCUMENTS:
        for block in python_blocks(document):
            compile(block, str(document), "exec")


def test_the_library_example_runs(tmp_path: Path) -> None:
    [example] = [b for b in python_blocks(REPO / "README.md") if b.startswith("from esctl import")]
    result = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, env=shell_env(tmp_path), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("1 OrderCreated {")


def commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every command and subcommand of a (Typer's own) click group, by its path."""
    found = []
    for name, command in group.commands.items():
        found.append((f"{prefix}{name}", command))
        if hasattr(command, "commands"):
            found += commands(command, f"{prefix}{name} ")
    return found


def test_every_command_and_option_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    cli = typer.main.get_command(app)
    missing = []
    for option in cli.params:
        for name in option.opts:
            if name.startswith("--") and name not in readme:
                missing.append(f"esctl {name}")
    for path, command in commands(cli):
        if not re.search(rf"esctl (\$\w+ )?{path}\b|`{path}`", readme):
            missing.append(f"esctl {path}")
        for option in command.params:
            for name in option.opts:
                if name.startswith("--") and name != "--help" and name not in readme:
                    missing.append(f"esctl {path} {name}")
    assert not missing, "not in README.md: " + ", ".join(missing)
