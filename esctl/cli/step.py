"""`replay --step`: the interactive step-through on a terminal.

One event is applied per key press and its changes are shown; going back costs
nothing because every step seen is kept. The screen itself is drawn by render."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from esctl.aggregates import Replayer, Step

_NEXT = {b" ", b"\r", b"\n", b"n", b"j", b"l", b"\x1b[C", b"\x1b[B", b"\x1bOC", b"\x1bOB"}
_BACK = {b"b", b"p", b"k", b"h", b"\x1b[D", b"\x1b[A", b"\x1bOD", b"\x1bOA"}
_QUIT = {b"q", b"Q", b"\x1b", b"\x04"}  # Ctrl-C arrives as KeyboardInterrupt (ISIG stays on)
_FIRST = {b"g", b"\x1b[H", b"\x1bOH"}
_LAST = {b"G", b"\x1b[F", b"\x1bOF"}


def split_keys(buffer: bytes) -> list[bytes]:
    """Split what one read returned into key presses: keys held down or pasted
    arrive together ("nn", two arrows). An escape sequence is one key: ESC [ params
    final (CSI), ESC O x (SS3); a lone ESC is the Escape key."""
    keys = []
    i = 0
    while i < len(buffer):
        if buffer[i] != 0x1B or i + 1 == len(buffer):
            keys.append(buffer[i : i + 1])
            i += 1
        elif buffer[i + 1] == ord("["):
            end = i + 2
            while end < len(buffer) and not 0x40 <= buffer[end] <= 0x7E:  # parameter bytes
                end += 1
            keys.append(buffer[i : end + 1])
            i = end + 1
        elif buffer[i + 1] == ord("O") and i + 2 < len(buffer):
            keys.append(buffer[i : i + 3])
            i += 3
        else:  # ESC then another key: Escape, then that key
            keys.append(buffer[i : i + 1])
            i += 1
    return keys


def step_through(replayer: Replayer, stream: str, target: int) -> None:
    """Apply one event per key press and show what it changed. space/→ next,
    b/← back, g first, G last, q quit."""
    import termios
    import tty

    from esctl.cli import render

    steps = replayer.steps(stream, target)
    taken: list[Step] = []  # steps seen so far, so that going back costs nothing
    initial = replayer.initial_plain()
    index = 0
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        while True:
            shown = taken[index - 1] if index else None
            render.step_screen(stream, replayer.name, index, target, shown, shown.state if shown else initial)
            keys = split_keys(os.read(fd, 64))
            if not keys or any(key in _QUIT for key in keys):  # b"": stdin closed
                break
            for key in keys:
                if key in _NEXT or key in _LAST:
                    goal = target if key in _LAST else index + 1
                    while len(taken) < min(goal, target):
                        taken.append(next(steps))
                    index = min(goal, target)
                elif key in _BACK:
                    index = max(0, index - 1)
                elif key in _FIRST:
                    index = 0
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        steps.close()
