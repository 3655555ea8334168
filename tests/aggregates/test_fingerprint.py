"""The code fingerprint (esctl.fingerprint) covers the plain values code reads, not
only its source: a changed constant invalidates snapshots."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import orjson
import pytest

from esctl.fingerprint import fingerprint


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., ModuleType]:
    """Write a module file in its own directory and import it under a fresh name
    (a new process, as far as the fingerprint can tell)."""
    count = 0

    def make(source: str, name: str = "m", **siblings: str) -> ModuleType:
        nonlocal count
        count += 1
        folder = tmp_path / f"v{count}"
        folder.mkdir()
        for sibling, text in siblings.items():
            (folder / f"{sibling}.py").write_text(textwrap.dedent(text))
            _import(monkeypatch, folder / f"{sibling}.py", sibling)  # for `import sibling`
        path = folder / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        return _import(monkeypatch, path, f"fp_{name}_{count}")

    return make


def _import(monkeypatch: pytest.MonkeyPatch, path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, mod)
    spec.loader.exec_module(mod)
    return mod


PRICING = """
    BONUS = 10
    UNUSED = 1


    def with_bonus(n):
        return n + BONUS
"""


def test_a_module_constant_a_function_reads_is_part_of_the_fingerprint(module):
    first = module(PRICING)
    same = module(PRICING)
    changed = module(PRICING.replace("BONUS = 10", "BONUS = 1"))
    unrelated = module(PRICING.replace("UNUSED = 1", "UNUSED = 2"))
    assert fingerprint([first.with_bonus]) == fingerprint([same.with_bonus])
    assert fingerprint([first.with_bonus]) != fingerprint([changed.with_bonus])
    assert fingerprint([first.with_bonus]) == fingerprint([unrelated.with_bonus])


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("RATES = {'a': 1, 'b': (2, 3)}", "RATES = {'a': 1, 'b': (2, 4)}"),
        ("RATES = frozenset({'x', 'y'})", "RATES = frozenset({'x', 'z'})"),
        (
            "from decimal import Decimal\nRATES = [Decimal('0.10')]",
            "from decimal import Decimal\nRATES = [Decimal('0.20')]",
        ),
        (
            "import enum\nclass K(enum.Enum):\n    A = 1\n    B = 2\nRATES = K.A",
            "import enum\nclass K(enum.Enum):\n    A = 1\n    B = 2\nRATES = K.B",
        ),
    ],
)
def test_containers_decimals_and_enum_members_count_by_value(module, before, after):
    source = "{}\n\ndef rate():\n    return RATES\n"
    a, b = module(source.format(before)), module(source.format(after))
    assert fingerprint([a.rate]) != fingerprint([b.rate])


def test_constants_read_through_a_helper_a_module_attribute_or_a_default(module):
    helper = "LIMIT = 5\n\ndef cap(n):\n    return min(n, LIMIT)\n\ndef root(n):\n    return cap(n)\n"
    assert fingerprint([module(helper).root]) != fingerprint([module(helper.replace("= 5", "= 6")).root])

    through_module = "import config_fp\n\ndef root(n):\n    return n * config_fp.FACTOR\n"
    a = module(through_module, config_fp="FACTOR = 2\n")
    b = module(through_module, config_fp="FACTOR = 3\n")
    assert fingerprint([a.root]) != fingerprint([b.root])

    default = "STEP = 1\n\ndef root(n, step=STEP):\n    return n + step\n"
    assert fingerprint([module(default).root]) != fingerprint([module(default.replace("= 1", "= 2")).root])


def test_a_class_attribute_set_from_a_constant_counts(module):
    source = """
        from esctl.aggregates import Aggregate, evolve

        START = {"n": 0}


        class Tally(Aggregate):
            category = "tally"
            initial = START

            @evolve("Added")
            def added(state, data):
                return {"n": state["n"] + 1}
    """
    a, b = module(source), module(source.replace('{"n": 0}', '{"n": 100}'))
    assert fingerprint([a.Tally]) != fingerprint([b.Tally])


def test_a_set_constant_gives_the_same_fingerprint_in_every_process(tmp_path):
    """Set order depends on string hashing, which differs per process."""
    path = tmp_path / "setmod.py"
    names = ", ".join(repr(f"name-{i}") for i in range(30))
    path.write_text(f"NAMES = frozenset({{{names}}})\n\ndef known(n):\n    return n in NAMES\n")
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('setmod', {str(path)!r})\n"
        "m = importlib.util.module_from_spec(spec); sys.modules['setmod'] = m; spec.loader.exec_module(m)\n"
        "from esctl.fingerprint import fingerprint\nprint(fingerprint([m.known]))\n"
    )
    prints = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in (1, 2, 3)
    }
    assert len(prints) == 1


BONUS_MODEL = """
    from esctl.aggregates import Aggregate, evolve

    BONUS = 10


    class Counter(Aggregate):
        category = "counter"
        initial = dict

        @evolve("Added")
        def added(state, data):
            return {"total": state.get("total", 0) + data["n"] + BONUS}
"""


def test_changing_a_constant_invalidates_the_snapshot(cli, db, write_model):
    for n in (1, 2, 3):
        cli("append", "counter-1", "Added", f'{{"n": {n}}}')
    v1 = write_model(BONUS_MODEL, "bonus_model")
    assert cli("--model", str(v1), "snapshot", "counter-1", "--to-version", "2").exit_code == 0
    v2 = write_model(BONUS_MODEL.replace("BONUS = 10", "BONUS = 1"), "bonus_model")
    listed = [
        orjson.loads(line)
        for line in cli("--model", str(v2), "snapshot", "counter-1", "--list").stdout.splitlines()
    ]
    assert [(s["version"], s["valid"]) for s in listed] == [(2, False)]
    replayed = cli("--model", str(v2), "replay", "counter-1")
    assert orjson.loads(replayed.stdout)["state"] == {"total": 9}
    assert replayed.stdout == cli("--model", str(v2), "replay", "counter-1", "--no-snapshots").stdout
