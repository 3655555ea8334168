"""`replay --step` in a real terminal (a pseudo-terminal driven by pexpect)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pexpect
import pytest

from tests.helpers import HANG

from .conftest import ORDERS_MODEL

ESCTL = shutil.which("esctl", path=os.path.dirname(sys.executable))


@pytest.fixture
def session(orders_db: Path):
    env = {**os.environ, "ESCTL_DB": str(orders_db), "ESCTL_MODEL": str(ORDERS_MODEL), "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(
        ESCTL, ["replay", "order-1", "--step"], env=env, dimensions=(50, 120), encoding="utf-8", timeout=HANG
    )
    yield child
    child.close(force=True)


@pytest.mark.skipif(ESCTL is None, reason="the esctl script is not installed beside this Python")
def test_step_through_applies_one_event_per_key_and_goes_back(session):
    child = session
    child.expect("step 0/3")
    child.expect("initial state")
    child.send(" ")
    child.expect("step 1/3")
    child.expect("OrderCreated")
    child.expect("lines.0")  # the changes table
    child.send("n")
    child.expect("step 2/3")
    child.expect("OrderConfirmed")
    child.expect('"confirmed"')
    child.send("b")
    child.expect("step 1/3")
    child.send("G")
    child.expect("step 3/3")
    child.expect("OrderShipped")
    child.expect("end of stream")
    child.send(" ")  # past the end: stays on the last event
    child.expect("step 3/3")
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@pytest.mark.skipif(ESCTL is None, reason="the esctl script is not installed beside this Python")
def test_step_through_restores_the_terminal_on_ctrl_c(session):
    child = session
    child.expect("step 0/3")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130


@pytest.mark.skipif(ESCTL is None, reason="the esctl script is not installed beside this Python")
def test_keys_that_arrive_together_each_count(session):
    child = session
    child.expect("step 0/3")
    child.send("nn")  # one write: a held key, or tmux send-keys -l nn
    child.expect("step 2/3")
    child.send("\x1b[D\x1b[D\x1b[C")  # left, left, right: arrows in one read
    child.expect("step 1/3")
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@pytest.mark.parametrize(
    ("buffer", "keys"),
    [
        (b"n", [b"n"]),
        (b"nn", [b"n", b"n"]),
        (b"\x1b[C\x1b[D", [b"\x1b[C", b"\x1b[D"]),
        (b"\x1bOCn", [b"\x1bOC", b"n"]),
        (b"\x1b", [b"\x1b"]),
        (b"\x1bq", [b"\x1b", b"q"]),
        (b"\x1b[1;5C ", [b"\x1b[1;5C", b" "]),
    ],
)
def test_a_read_is_split_into_keys(buffer, keys):
    from esctl.cli.step import split_keys as _keys

    assert _keys(buffer) == keys
