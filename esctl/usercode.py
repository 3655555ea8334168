"""Telling the user's code from everything else (esctl, the standard library,
installed packages): for error messages that point at the user's line, and for
fingerprints that hash only the user's code."""

from __future__ import annotations

import functools
import os
import traceback

ESCTL_DIR = os.path.dirname(os.path.abspath(__file__))


@functools.cache
def _library_dirs() -> tuple[str, ...]:
    import sysconfig

    paths = sysconfig.get_paths()
    # Not sys.prefix: a virtual environment created inside the project would make
    # the whole project look like library code.
    found = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    return tuple(os.path.abspath(p) + os.sep for p in found)


def is_user_file(path: str | None) -> bool:
    """A real source file outside esctl, the standard library and installed packages."""
    if not path or path.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return False
    path = os.path.abspath(path)
    return not path.startswith(ESCTL_DIR + os.sep) and not path.startswith(_library_dirs())


def user_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of the exception's traceback that is in the user's code."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if is_user_file(f.filename)]
    return frames[-1] if frames else None


def where(exc: BaseException) -> str:
    """'FILE, line N: ' for the user's line that raised, or '' when there is none."""
    frame = user_frame(exc)
    return f"{shown_path(frame.filename)}, line {frame.lineno}: " if frame else ""


def shown_path(path: str) -> str:
    """A path as messages show it: relative to the current directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if relative.startswith(os.pardir) else relative


def defined_at(fn: object) -> str:
    """'FILE, line N: ' of a function's definition, or ''."""
    code = getattr(fn, "__code__", None)
    return f"{shown_path(code.co_filename)}, line {code.co_firstlineno}: " if code else ""
