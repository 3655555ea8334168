"""A fingerprint of a projection's code: what esctl compares to call a read model stale.

It covers the definition (name, tables, columns, keys, indexes, filters) and the
source of every handler plus the module-level functions and classes those handlers
call in their own module, so editing a helper marks the projection stale too.
Source text is hashed rather than bytecode, so a new Python version does not force
a rebuild (a comment edit does; rebuilding is cheap and always correct).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable
from typing import Any


def fingerprint(parts: Iterable[str], functions: Iterable[Callable[..., Any]]) -> str:
    import hashlib  # here, not at the top: `import esctl.projections` stays cheap

    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    seen: set[int] = set()
    for function in functions:
        _add_code(digest, function, seen)
    return digest.hexdigest()[:16]


def _add_code(digest: Any, obj: Any, seen: set[int]) -> None:
    import inspect

    obj = inspect.unwrap(obj) if callable(obj) else obj
    if id(obj) in seen:
        return
    seen.add(id(obj))
    digest.update(_source(obj).encode())
    digest.update(b"\0")
    code = getattr(obj, "__code__", None)
    module_globals = getattr(obj, "__globals__", None)
    if code is None or module_globals is None:
        return
    for name in sorted(_names(code)):
        helper = module_globals.get(name)
        if _defined_beside(helper, obj):
            _add_code(digest, helper, seen)


def _names(code: types.CodeType) -> set[str]:
    """Global names a code object (and the functions nested in it) refers to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _defined_beside(value: Any, function: Any) -> bool:
    # Only the user's own helpers: functions and classes from the handler's module.
    return isinstance(value, (types.FunctionType, type)) and getattr(value, "__module__", None) == getattr(
        function, "__module__", None
    )


def _source(obj: Any) -> str:
    import inspect

    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        if code is None:
            return repr(obj)
        # No source (defined in a REPL or exec): fall back to the bytecode.
        return _code_text(code)


def _code_text(code: types.CodeType) -> str:
    consts = [_code_text(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts]
    return code.co_code.hex() + repr(consts) + repr(code.co_names)
