"""Help text and shell completion.

Every help screen is checked at 80 columns in both of Typer's modes: plain (click,
for pipes) and Rich (for a terminal; switched on here as a terminal would, through
the app's rich_markup_mode). One test runs esctl on a pseudo-terminal to check that
the in-process Rich screens are the ones a terminal gets."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from esctl import NewEvent
from esctl.cli import completion
from esctl.cli.app import app
from esctl.store import EventStore

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOX = "│╭╮╰╯─"


def command_paths() -> list[tuple[str, ...]]:
    """(), every command, and every subcommand of a group."""
    paths: list[tuple[str, ...]] = []

    def walk(command: typer.core.TyperGroup | object, path: tuple[str, ...]) -> None:
        paths.append(path)
        if isinstance(command, typer.core.TyperGroup):
            for name in command.list_commands(None):  # type: ignore[arg-type]
                walk(command.commands[name], (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


PATHS = command_paths()
IDS = [" ".join(p) or "esctl" for p in PATHS]


@pytest.fixture(params=["plain", "rich"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    for var in ("FORCE_COLOR", "PY_COLORS", "GITHUB_ACTIONS", "TERMINAL_WIDTH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(app, "rich_markup_mode", "rich" if request.param == "rich" else None)
    return request.param


def screen(cli, *args: str) -> str:
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return clean(result.stdout)


def clean(text: str) -> str:
    return "\n".join(ANSI.sub("", line).rstrip() for line in text.replace("\r\n", "\n").splitlines())


def orphans(text: str) -> list[str]:
    """Lines that hold a single word of a wrapped sentence (headings, `[required]`
    and the like are not words)."""
    found = []
    for line in text.splitlines():
        if line.lstrip().startswith(("╭", "╰")):  # a panel's border and title
            continue
        words = line.strip().strip(BOX).split()
        if len(words) == 1 and not words[0].endswith(":") and not re.fullmatch(r"\[[^\]]*\]|\*", words[0]):
            found.append(line)
    return found


def examples(text: str) -> list[str]:
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Examples:"]
    assert starts, f"no Examples:\n{text}"
    return [line.strip() for line in lines[starts[-1] + 1 :] if line.strip()]


def without_examples(text: str) -> str:
    return text.split("Examples:")[0]


# --- layout -------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_help_fits_80_columns_without_orphan_words(cli, mode, path):
    text = screen(cli, *path, "--help")
    assert [line for line in text.splitlines() if len(line) > 80] == []
    assert orphans(text) == []
    assert [line for line in text.splitlines() if re.search(r"[a-z]-$", line)] == []  # split at a hyphen
    assert [line for line in text.splitlines() if re.search(r"\w\.\.\.$", line)] == []  # a cut summary


@pytest.mark.parametrize("path", [p for p in PATHS if p], ids=IDS[1:])
def test_help_ends_with_examples_of_the_command(cli, mode, path):
    text = screen(cli, *path, "--help")
    lines = examples(text)
    # Global options may come first: esctl --model m.py replay order-1
    names = re.compile(r"\besctl(?: -[-\w]+(?: [^-\s]\S*)?)* " + re.escape(" ".join(path)) + r"(?!\S)")
    assert 2 <= len([line for line in lines if names.search(line)]) <= 4, lines
    assert len(lines) <= 4
    assert text.rstrip().endswith(lines[-1])


def test_the_root_help_lists_every_exit_code_and_how_to_start(cli, mode):
    text = screen(cli, "--help")
    block = text.split("Exit codes:")[1]
    listed = {int(m.group(1)) for m in re.finditer(r"^\s*(\d{1,3})\s{2,}\S", block, re.M)}
    readme = (REPO / "README.md").read_text().split("## Exit codes")[1].split("\n## ")[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", readme, re.M)}
    assert documented <= listed
    assert {0, 1, 2, 3, 4, 5, 6, 124, 130, 141, 143} <= listed
    assert re.search(r"Getting started:\s+esctl import \S+\s+esctl --model \S+ replay \S+", text)


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_metavars_follow_one_style(cli, mode, path):
    text = without_examples(screen(cli, *path, "--help"))
    assert "<" not in text
    assert not re.search(r"\{[a-z_]+\}", text)  # Typer's {stream}
    assert not re.search(r"\b(INTEGER|TEXT|FLOAT|RANGE)\b", text)
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    words = usage.split("Usage:")[1].split()[len(path) + 1 :]
    for word in words:
        assert re.fullmatch(r"\[?[A-Z][A-Z_|=-]*\]?(\.\.\.)?|\[OPTIONS\]|COMMAND|\[ARGS\]\.\.\.", word), usage


def test_every_metavar_is_upper_case():
    def params(command):
        yield from command.params
        for sub in getattr(command, "commands", {}).values():
            yield from params(sub)

    for param in params(typer.main.get_command(app)):
        if not getattr(param, "is_flag", False):
            assert re.fullmatch(r"[A-Z][A-Z_]*(?:[|=][A-Z_-]+)?", param.metavar or ""), param


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_both_modes_show_the_same_defaults(cli, monkeypatch, path):
    monkeypatch.setenv("COLUMNS", "200")  # one line per option: no default is wrapped
    shown = {}
    for markup in (None, "rich"):
        monkeypatch.setattr(app, "rich_markup_mode", markup)
        text = screen(cli, *path, "--help")
        shown[markup] = sorted(re.findall(r"default: ([^\];]+)", text))
    assert shown[None] == shown["rich"]


def test_a_terminal_gets_the_rich_help(cli, monkeypatch):
    """The in-process Rich screens are what esctl draws on a pseudo-terminal."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(app, "rich_markup_mode", "rich")
    drawn = clean(on_terminal([sys.executable, "-m", "esctl", "help", "read"]))
    assert drawn.strip("\n") == screen(cli, "read", "--help").strip("\n")
    assert "╭─ Options" in drawn


def on_terminal(cmd: list[str]) -> str:
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "80", "TERM": "xterm"}
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait() == 0
    return b"".join(chunks).decode()


# --- esctl help -------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_help_command_prints_what_dash_dash_help_prints(cli, mode, path):
    assert screen(cli, "help", *path) == screen(cli, *path, "--help")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "esctl: error: no command 'nope': esctl --help lists them\n"),
        (["project", "nope"], "esctl: error: no command 'project nope': esctl project --help lists them\n"),
        (["read", "x"], "esctl: error: no command 'read x': esctl read has no subcommands\n"),
    ],
)
def test_help_for_an_unknown_command_is_a_one_line_error(cli, mode, args, message):
    result = cli("help", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == message


# --- completion -------------------------------------------------------------------


@pytest.fixture
def streams(store: EventStore) -> list[str]:
    names = ["account-ada", "order-1", "order-10", "order-2", "user-7"]
    for name in names:
        store.append(name, [NewEvent(name, "Happened", {})])
    return names


def complete(cli, monkeypatch, shell: str, words: str) -> list[str]:
    """What esctl answers a completing shell (the protocol its completion scripts use)."""
    monkeypatch.setenv("_ESCTL_COMPLETE", f"complete_{shell}")
    if shell == "bash":
        monkeypatch.setenv("COMP_WORDS", words)
        monkeypatch.setenv("COMP_CWORD", str(len(words.split()) - (0 if words.endswith(" ") else 1)))
    else:
        monkeypatch.setenv("_TYPER_COMPLETE_ARGS", words)
        monkeypatch.setenv("_TYPER_COMPLETE_FISH_ACTION", "get-args")
    result = cli()
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    if shell == "zsh":  # _arguments '*: :(("order-1" "order-10" ...))'
        return re.findall(r'"([^"]*)"', result.stdout)
    return [line.split("\t")[0] for line in result.stdout.splitlines() if line]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_a_stream_argument_completes_the_stores_streams(cli, monkeypatch, db, streams, shell):
    assert complete(cli, monkeypatch, shell, f"esctl --db {db} read order-") == [
        "order-1",
        "order-10",
        "order-2",
    ]
    assert complete(cli, monkeypatch, shell, f"esctl --db {db} replay ") == streams
    assert complete(cli, monkeypatch, shell, f"esctl --db {db} exec acc") == ["account-ada"]


def test_completion_reads_the_store_esctl_db_names(cli, monkeypatch, db, streams):
    monkeypatch.setenv("ESCTL_DB", str(db))
    assert complete(cli, monkeypatch, "bash", "esctl info us") == ["user-7"]


def test_completion_never_creates_a_store_nor_fails(cli, monkeypatch, tmp_path):
    missing = tmp_path / "missing.db"
    assert complete(cli, monkeypatch, "bash", f"esctl --db {missing} read o") == []
    assert not missing.exists()
    assert list(tmp_path.iterdir()) == []
    other = tmp_path / "notes.txt"
    other.write_text("not a store\n")
    assert complete(cli, monkeypatch, "bash", f"esctl --db {other} read o") == []
    assert other.read_text() == "not a store\n"


def test_completion_offers_at_most_a_limited_number_of_streams(store, db):
    for i in range(completion.LIMIT + 5):
        store.append(f"s-{i:03}", [NewEvent(f"s-{i:03}", "Happened", {})])
    names = completion.stream_names(str(db), "s-")
    assert names == [f"s-{i:03}" for i in range(completion.LIMIT)]


def test_commands_options_and_help_topics_complete(cli, monkeypatch):
    assert complete(cli, monkeypatch, "bash", "esctl rea") == ["read"]
    assert complete(cli, monkeypatch, "bash", "esctl read --from-") == ["--from-version", "--from-position"]
    assert complete(cli, monkeypatch, "bash", "esctl project re") == ["rebuild", "reset"]
    assert complete(cli, monkeypatch, "bash", "esctl help pro") == ["project"]
    assert complete(cli, monkeypatch, "bash", "esctl help project r") == ["run", "rebuild", "reset"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_the_shells_script(cli, monkeypatch, shell):
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")  # name the shell
    result = cli("--show-completion", shell)
    assert result.exit_code == 0, result.stderr
    assert f"_ESCTL_COMPLETE=complete_{shell}" in result.stdout


@pytest.mark.parametrize("markup", [None, "rich"])
def test_help_text_shows_brackets_as_written(monkeypatch, markup):
    """Rich help reads [...] as markup; esctl's help text is shown as written."""
    from typer.testing import CliRunner

    from esctl.cli.helptext import EsctlTyper

    monkeypatch.setenv("COLUMNS", "80")
    demo = EsctlTyper(rich_markup_mode=markup, add_completion=False)

    @demo.command()
    def pick(first: str = typer.Option("a", help="Keep [this] and [bold]that[/bold].")) -> None:
        """Pick [one].

        Examples:
          jq '.[0]' events.json
          esctl pick --first '[1]'
        """

    text = clean(CliRunner().invoke(demo, ["--help"]).stdout)
    for shown in ("Pick [one].", "Keep [this] and [bold]that[/bold].", "jq '.[0]' events.json"):
        assert shown in text
    assert text.rstrip().endswith("esctl pick --first '[1]'")
