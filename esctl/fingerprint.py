"""A fingerprint of user code: how esctl tells that an aggregate's snapshot, or a
projection's read model, was made by other code.

It hashes the source of the given roots (an aggregate class, projection handlers,
upcasters) and of every function or class they use from the user's own modules
(followed through global names, so a helper such as `line_total` or the state
dataclass counts). Code from the standard library, installed packages and esctl
itself is left out: upgrading a dependency does not throw away snapshots or read
models. Source text is hashed rather than bytecode, so a new Python version does
not force a rebuild."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

from esctl.usercode import is_user_file

# Code does not change under a loaded class (a reload makes new objects), so one
# computation per process is enough; reading and parsing the source costs ~2 ms.
_computed: dict[tuple[tuple[Any, ...], tuple[str, ...]], str] = {}


def fingerprint(roots: Iterable[type | Callable[..., Any]], parts: Iterable[str] = ()) -> str:
    """16 hex digits over `parts` (plain text: a format tag, a definition) and the
    source of `roots` and the user code they reach."""
    roots, parts = tuple(roots), tuple(parts)
    key = (roots, parts)
    found = _computed.get(key)
    if found is None:
        import hashlib  # here, not at import: replay without snapshots never needs it

        digest = hashlib.sha256()
        for part in parts:
            digest.update(part.encode() + b"\0")
        for obj, source in _dependencies(list(roots)):
            # Names and source, not module names: the same model moved to another
            # file (another module name) keeps its fingerprint.
            digest.update(f"\0{getattr(obj, '__qualname__', '')}\0".encode())
            digest.update(source)
        found = _computed[key] = digest.hexdigest()[:16]
    return found


def _dependencies(roots: list[Any]) -> list[tuple[Any, bytes]]:
    """The roots and the user code they reach, with their source, in a stable order."""
    seen: dict[int, Any] = {}
    todo = list(roots)
    while todo:
        obj = todo.pop()
        if id(obj) in seen or not (obj in roots or _is_user_code(obj)):
            continue
        seen[id(obj)] = obj
        todo.extend(_referenced(obj))
    with_source = [(obj, _source(obj)) for obj in seen.values()]
    return sorted(with_source, key=lambda pair: (getattr(pair[0], "__qualname__", ""), pair[1]))


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
    return is_user_file(getattr(module, "__file__", None))


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
