"""A fingerprint of an aggregate's code, so a snapshot taken by other code is ignored.

It hashes the source of the aggregate class, of the upcasters of its event types,
and of every function or class they use from the user's own modules (followed
through global names, so a helper such as `line_total` or the state dataclass
counts). Code from the standard library, installed packages and esctl itself is
left out: upgrading a dependency does not throw away snapshots."""

from __future__ import annotations

import functools
import os
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

FORMAT = b"esctl-snapshot-1"  # bump when the snapshot encoding changes

_ESCTL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@functools.cache
def _library_dirs() -> tuple[str, ...]:
    import sysconfig

    paths = sysconfig.get_paths()
    found = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")} | {sys.prefix, sys.base_prefix}
    return tuple(os.path.abspath(p) for p in found)


# Code does not change under a loaded class (a reload makes new objects), so one
# computation per process is enough; reading and parsing the source costs ~2 ms.
_computed: dict[tuple[Any, ...], str] = {}


def fingerprint(aggregate: type, extra: Iterable[Callable[..., Any]] = ()) -> str:
    key = (aggregate, *extra)
    found = _computed.get(key)
    if found is None:
        import hashlib  # here, not at import: replay without snapshots never needs it

        digest = hashlib.sha256(FORMAT)
        for obj in _dependencies(list(key)):
            digest.update(f"\0{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}\0".encode())
            digest.update(_source(obj))
        found = _computed[key] = digest.hexdigest()[:16]
    return found


def _dependencies(roots: list[Any]) -> list[Any]:
    """The roots and the user code they reach, in a stable order."""
    seen: dict[int, Any] = {}
    todo = list(roots)
    while todo:
        obj = todo.pop()
        if id(obj) in seen or not (obj in roots or _is_user_code(obj)):
            continue
        seen[id(obj)] = obj
        todo.extend(_referenced(obj))
    return sorted(seen.values(), key=lambda o: (getattr(o, "__module__", ""), getattr(o, "__qualname__", "")))


def _referenced(obj: Any) -> list[Any]:
    found: list[Any] = []
    if isinstance(obj, type):
        for value in vars(obj).values():
            fn = _function(value)
            if fn is not None:
                found.extend(_referenced(fn))
            elif isinstance(value, type):  # e.g. `initial = OrderState`
                found.append(value)
        found.extend(obj.__bases__)
        return found
    fn = _function(obj)
    if fn is None:
        return found
    namespace = fn.__globals__
    for name in _global_names(fn.__code__):
        if name in namespace:
            found.append(namespace[name])
    return found


def _function(value: Any) -> types.FunctionType | None:
    value = getattr(value, "__func__", value)  # staticmethod, classmethod
    return value if isinstance(value, types.FunctionType) else None


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _is_user_code(obj: Any) -> bool:
    if not isinstance(obj, (type, types.FunctionType)):
        return False
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    path = getattr(module, "__file__", None)
    if not path:
        return False
    path = os.path.abspath(path)
    return not path.startswith(_ESCTL_DIR + os.sep) and not path.startswith(_library_dirs())


def _source(obj: Any) -> bytes:
    import inspect
    import marshal

    try:
        return inspect.getsource(obj).encode()
    except (OSError, TypeError):
        # Defined where no source file is kept (a REPL, exec): hash the bytecode instead.
        fn = _function(obj)
        if fn is not None:
            return marshal.dumps(fn.__code__)
        if isinstance(obj, type):
            return b"".join(_source(v) for v in vars(obj).values() if _function(v))
        return repr(obj).encode()
