"""Finding and importing the user's model: an ordinary Python module or file that
defines aggregates, projections, reactors and upcasters.

Where it comes from, first found wins: `--model`, `ESCTL_MODEL`, `[tool.esctl] model`
in ./pyproject.toml, `model` in ./esctl.toml. Each feature then picks its own kind of
definition out of the module with `definitions`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import tomllib
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from esctl.errors import InvalidInput
from esctl.usercode import shown_path, where

T = TypeVar("T")

_loaded: dict[str, ModuleType] = {}


def configured_model(explicit: str | None = None, cwd: str = ".") -> str | None:
    """The model spec in force, or None. `explicit` is --model (or ESCTL_MODEL)."""
    if explicit:
        return explicit
    if os.environ.get("ESCTL_MODEL"):
        return os.environ["ESCTL_MODEL"]
    for name, keys in (("pyproject.toml", ("tool", "esctl", "model")), ("esctl.toml", ("model",))):
        path = os.path.join(cwd, name)
        if not os.path.exists(path):
            continue
        try:
            with open(path, "rb") as f:
                value: Any = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"{path}: {exc}") from None
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            # A relative file path is relative to the file that names it.
            if _looks_like_path(value) and not os.path.isabs(value):
                value = os.path.join(cwd, value)
            return value
    return None


def load_model(spec: str) -> ModuleType:
    """Import a model given as a file path (`model.py`, `dir/model.py`) or a module
    name (`shop.model`). A model that fails to import raises InvalidInput naming the
    file, the line and the error."""
    if spec in _loaded:
        return _loaded[spec]
    if _looks_like_path(spec) and not os.path.isfile(spec):
        raise InvalidInput(f"model file {spec} not found")
    try:
        if _looks_like_path(spec):
            module = _import_file(spec)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(spec)
    except InvalidInput as exc:
        # A definition esctl refused while the module ran (a bad category, a handler
        # with the wrong parameters): name the model and, unless the message already
        # does, the user's line.
        located = "" if getattr(exc, "where", "") else where(exc)
        raise InvalidInput(f"model {spec}: {located}{exc}") from None
    except SyntaxError as exc:
        raise InvalidInput(
            f"model {spec}: {shown_path(exc.filename or spec)}, line {exc.lineno}: SyntaxError: {exc.msg}"
        ) from None
    except ModuleNotFoundError as exc:
        if exc.name == spec or (exc.name and spec.startswith(exc.name + ".")):
            raise InvalidInput(f"model {spec!r} not found (a module name, or a path to a .py file)") from None
        raise InvalidInput(f"model {spec}: {where(exc)}ModuleNotFoundError: {exc}") from None
    except KeyboardInterrupt:
        raise
    except SystemExit as exc:
        # sys.exit() while importing would end esctl with the model's code, silently.
        raise InvalidInput(
            f"model {spec}: {where(exc)}SystemExit({exc.code!r}) while loading: a model must not exit"
        ) from None
    except BaseException as exc:
        raise InvalidInput(f"model {spec}: {where(exc)}{type(exc).__name__}: {exc}") from None
    _loaded[spec] = module
    return module


def definitions(module: ModuleType, accept: Callable[[Any], bool]) -> list[Any]:
    """The module's top-level values that `accept` picks, in definition order, once each."""
    seen: set[int] = set()
    found = []
    for value in vars(module).values():
        if id(value) not in seen and accept(value):
            seen.add(id(value))
            found.append(value)
    return found


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or "/" in spec


def _import_file(path: str) -> ModuleType:
    path = os.path.abspath(path)
    # The path's hash keeps two model files of the same name apart in one process.
    digest = hashlib.sha1(path.encode()).hexdigest()[:8]
    name = f"esctl_model_{os.path.splitext(os.path.basename(path))[0]}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # Let the model import its sibling modules.
    sys.path.insert(0, os.path.dirname(path))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
