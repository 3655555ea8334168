"""How esctl's help reads: reflowed docstrings, examples last, one metavar style.

Docstrings stay hard-wrapped in the source. Typer draws help two ways, and neither
reflows them: Rich help (on a terminal) keeps every newline after the first
paragraph, so a wrapped sentence leaves words alone on lines; click's plain help
rewraps prose but also rewraps tables and examples unless a paragraph starts with
a `\\b` line, which Rich in turn would show as an empty line. So the help is
rendered here, once, for the mode the process draws in:

- a prose paragraph becomes one line, which either renderer wraps to the terminal;
- a block (a heading line followed by indented lines: `Examples:`, `Exit codes:`)
  keeps its lines;
- the blocks that end a docstring become the epilog, shown after the options, so
  every command's help ends with its examples.

Metavars follow one style, upper case: an argument is named after its parameter
(STREAM) unless it says otherwise, an integer option takes N, any other option its
long name (--category CATEGORY); Typer's type labels (`<str>`, `{stream}` in the
usage line) are not shown.
"""

from __future__ import annotations

import copy
import inspect
import re
from typing import Any

import typer
from typer._click import Context
from typer._click.types import IntParamType, ParamType
from typer.core import HAS_RICH, TyperArgument, TyperCommand, TyperGroup, TyperOption

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def render(doc: str | None, *, rich: bool) -> tuple[str | None, str | None]:
    """(help, epilog) of a docstring, for Rich help when `rich`, else for plain help."""
    if not doc:
        return doc, None
    paragraphs = _paragraphs(doc)
    split = len(paragraphs)
    while split > 1 and _is_block(paragraphs[split - 1]):
        split -= 1
    body, blocks = paragraphs[:split], paragraphs[split:]
    return _join(body, rich=rich, first_block_at=1), (_join(blocks, rich=rich) if blocks else None)


def render_epilog(text: str, *, rich: bool) -> str:
    """An epilog given as such: every paragraph of it shown after the options."""
    return _join(_paragraphs(text), rich=rich)


def escape_markup(text: str) -> str:
    """Text shown as written by Rich help, which reads `[...]` as markup."""
    return text.replace("[", "\\[")


def _paragraphs(doc: str) -> list[str]:
    return [p.strip("\n") for p in _PARAGRAPH_BREAK.split(inspect.cleandoc(doc)) if p.strip()]


def _is_block(paragraph: str) -> bool:
    """A heading and indented lines (or only indented lines): kept line by line."""
    lines = paragraph.splitlines()
    return any(line[:1].isspace() for line in lines[1:]) or lines[0][:1].isspace()


def _join(paragraphs: list[str], *, rich: bool, first_block_at: int = 0) -> str:
    out = []
    for i, paragraph in enumerate(paragraphs):
        if not _is_block(paragraph):
            text = " ".join(line.strip() for line in paragraph.splitlines())
        elif not rich:
            text = "\b\n" + paragraph  # click: do not rewrap this paragraph
        elif i == first_block_at:
            # Typer dedents the text it hands Rich by the indent its lines after the
            # first share: a leading empty line makes that the heading's (none).
            text = "\n" + paragraph
        else:
            text = paragraph
        out.append(escape_markup(text) if rich else text)
    return "\n\n".join(out)


def _unlabelled(param_type: ParamType) -> ParamType:
    """The same type, without the label (`<str>`) Rich help prints beside an
    argument's metavar."""
    quiet = copy.copy(param_type)
    quiet.get_metavar = lambda param, ctx: ""  # type: ignore[method-assign]
    return quiet


class HelpLayout:
    """Mixin for Typer's command and group classes: esctl's help (see the module)."""

    help: str | None
    epilog: str | None
    params: list[Any]
    rich_markup_mode: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rich = self.rich_markup_mode == "rich" and HAS_RICH  # else Typer draws plain help
        given = render_epilog(self.epilog, rich=rich) if self.epilog else None
        self.help, epilog = render(self.help, rich=rich)
        self.epilog = "\n\n".join(filter(None, (epilog, given))) or None
        for param in self.params:
            if isinstance(param, TyperArgument):
                param.metavar = param.metavar or (param.name or "").upper()
                param.type = _unlabelled(param.type)
            elif isinstance(param, TyperOption) and not param.is_flag and param.metavar is None:
                long_name = max(param.opts, key=len).lstrip("-")
                param.metavar = "N" if isinstance(param.type, IntParamType) else long_name.upper()
            if rich and param.help:
                param.help = escape_markup(param.help)


class EsctlCommand(HelpLayout, TyperCommand):
    """Every esctl command: esctl's help layout, and a usage line in its style."""

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        """The usage line names arguments as the help does: STREAM, [DATA], [NAME]..."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                piece = param.metavar if param.required else f"[{param.metavar}]"
                pieces.append(piece + ("..." if param.nargs != 1 else ""))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class HelpGroup(HelpLayout, TyperGroup):
    """A command group (esctl project) drawn with esctl's help layout."""


class EsctlTyper(typer.Typer):
    """A Typer whose commands draw esctl's help (EsctlCommand unless told otherwise)."""

    def command(
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Any:
        return super().command(name, cls=cls or EsctlCommand, **kwargs)
