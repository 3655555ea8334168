"""A fingerprint of user code: how esctl tells that an aggregate's snapshot, or a
projection's read model, was made by other code.

It hashes the source of the given roots (an aggregate class, projection handlers,
upcasters) and of every function or class they use from the user's own modules
(followed through global names, so a helper such as `line_total` or the state
dataclass counts). Plain values the code reads through global names (a module-level
`BONUS = 10`, a tuple of statuses, an enum member, also through `config.BONUS`),
default argument values and plain class attributes are hashed by value: changing a
constant changes what the code computes. Code from the standard library, installed
packages and esctl itself is left out: upgrading a dependency does not throw away
snapshots or read models. Source text is hashed rather than bytecode, so a new
Python version does not force a rebuild.

A module-level dict or list the code mutates (a cache) is hashed as it is when the
fingerprint is first taken in a process: keep such state out of the model."""

from __future__ import annotations

import enum
import sys
import types
from collections.abc import Callable, Iterable
from decimal import Decimal
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
        code, constants = _dependencies(list(roots))
        for obj, source in code:
            # Names and source, not module names: the same model moved to another
            # file (another module name) keeps its fingerprint.
            digest.update(f"\0{getattr(obj, '__qualname__', '')}\0".encode())
            digest.update(source)
        # Only when there are any, so code that reads no constant keeps the
        # fingerprint it had before constants counted.
        for name, text in constants:
            digest.update(f"\0const {name}={text}".encode())
        found = _computed[key] = digest.hexdigest()[:16]
    return found


def _dependencies(roots: list[Any]) -> tuple[list[tuple[Any, bytes]], list[tuple[str, str]]]:
    """The roots and the user code they reach, with their source, in a stable order;
    and the plain values that code reads, as sorted (name, repr) pairs."""
    seen: dict[int, Any] = {}
    constants: set[tuple[str, str]] = set()
    todo = list(roots)
    while todo:
        obj = todo.pop()
        if id(obj) in seen or not (obj in roots or _is_user_code(obj)):
            continue
        seen[id(obj)] = obj
        todo.extend(_referenced(obj, constants))
    with_source = [(obj, _source(obj)) for obj in seen.values()]
    code = sorted(with_source, key=lambda pair: (getattr(pair[0], "__qualname__", ""), pair[1]))
    return code, sorted(constants)


def _referenced(obj: Any, constants: set[tuple[str, str]]) -> list[Any]:
    """The code `obj` uses; the plain values it reads go into `constants`."""
    found: list[Any] = []
    if isinstance(obj, type):
        for attr, value in vars(obj).items():
            fn = _function(value)
            if fn is not None:
                found.extend(_referenced(fn, constants))
            elif isinstance(value, type):  # e.g. `initial = OrderState`
                found.append(value)
            elif not _is_dunder(attr):  # `snapshot_every = EVERY`: the source shows only the name
                _add_constant(constants, f"{obj.__qualname__}.{attr}", value)
        found.extend(obj.__bases__)
        return found
    fn = _function(obj)
    if fn is None:
        return found
    code = fn.__code__
    names = _global_names(code)
    namespace = fn.__globals__
    for name in names:
        if name not in namespace or _is_dunder(name):
            continue
        value = namespace[name]
        if isinstance(value, types.ModuleType):
            # `config.BONUS`: attribute names are in co_names too.
            if is_user_file(getattr(value, "__file__", None)):
                found.extend(_module_attributes(value, names, constants))
        elif not _add_constant(constants, name, value):
            found.append(value)
    for i, default in enumerate(fn.__defaults__ or ()):
        _add_constant(constants, f"{fn.__qualname__}:default{i}", default)
    for name, default in (fn.__kwdefaults__ or {}).items():
        _add_constant(constants, f"{fn.__qualname__}:{name}", default)
    for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if not _add_constant(constants, f"{fn.__qualname__}:{name}", value):
            found.append(value)
    return found


def _module_attributes(
    module: types.ModuleType, names: set[str], constants: set[tuple[str, str]]
) -> list[Any]:
    found = []
    attributes = vars(module)
    for name in names:
        if name in attributes and not _is_dunder(name):
            value = attributes[name]
            if not _add_constant(constants, name, value):
                found.append(value)
    return found


def _add_constant(constants: set[tuple[str, str]], name: str, value: Any) -> bool:
    """Record a plain value under `name`; False when the value is not plain."""
    text = _plain_repr(value)
    if text is None:
        return False
    constants.add((name, text))
    return True


_PLAIN_SCALARS = (type(None), bool, int, float, complex, str, bytes, Decimal)


def _plain_repr(value: Any, depth: int = 0) -> str | None:
    """A repr that is the same in every process, for plain values; else None."""
    if depth > 20:
        return None
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{kind.__qualname__}.{value.name}={_plain_repr(value.value, depth + 1)}"
    if kind in (tuple, list):
        items = [_plain_repr(v, depth + 1) for v in value]
        return None if None in items else f"{kind.__name__}({', '.join(items)})"  # type: ignore[arg-type]
    if kind in (set, frozenset):
        # Sorted: a set's order depends on string hashing, which differs per process.
        items = [_plain_repr(v, depth + 1) for v in value]
        return None if None in items else f"{kind.__name__}({', '.join(sorted(items))})"  # type: ignore[arg-type]
    if kind is dict:
        pairs = [(_plain_repr(k, depth + 1), _plain_repr(v, depth + 1)) for k, v in value.items()]
        if any(k is None or v is None for k, v in pairs):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    return None


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


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
