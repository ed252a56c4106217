"""Commands run as a person runs them, at a terminal: a pseudo-terminal (``pty``) as their stdin, stdout or stderr."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from tests.conftest import scaled

SCRIPT = Path(sys.executable).with_name("broadcast")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "broadcast_cli"]
"""``broadcast``, as installed in the test's environment."""


class Terminal:
    """A pseudo-terminal of *rows* × *columns*: :attr:`slave` goes to a process, :meth:`read` shows what it printed."""

    def __init__(self, rows: int = 40, columns: int = 120) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def started(self) -> None:
        """Close the test's copy of the slave end, once the process has its own (so that reading ends with it)."""
        os.close(self.slave)

    def write(self, text: str) -> None:
        """Type *text* at the terminal."""
        os.write(self.master, text.encode())

    def read(self, process: subprocess.Popen[str], timeout: float = 60) -> str:
        """Everything the terminal shows until *process* exits and closes it; fails after *timeout* (scaled)."""
        deadline = time.monotonic() + scaled(timeout)
        shown = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                process.kill()
                text = shown.decode(errors="replace")
                raise AssertionError(f"the command did not finish; the terminal shows:\n{text}")
            ready, _, _ = select.select([self.master], [], [], min(left, 1.0))
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every copy of the slave end is closed
                break
            if not chunk:
                break
            shown += chunk
        process.wait(scaled(30))
        return shown.decode(errors="replace")

    def close(self) -> None:
        """Close the master end."""
        os.close(self.master)


def run_in_terminal(*args: str, stdout_terminal: bool = True, timeout: float = 60) -> tuple[int, str, str]:
    """Run ``broadcast ARGS`` with stderr (and stdout, unless *stdout_terminal* is false) on a terminal.

    Returns the exit status, what the terminal showed, and what stdout wrote
    when it was piped.
    """
    terminal = Terminal()
    try:
        process = subprocess.Popen(
            [*COMMAND, *args],
            stdin=subprocess.DEVNULL,
            stdout=terminal.slave if stdout_terminal else subprocess.PIPE,
            stderr=terminal.slave,
            text=True,
        )
        terminal.started()
        piped: list[str] = []
        reader = None
        if process.stdout is not None:
            reader = collect(process.stdout, piped)
        shown = terminal.read(process, timeout)
        if reader is not None and process.stdout is not None:
            reader.join(scaled(10))
            process.stdout.close()
        assert process.returncode is not None
        return process.returncode, shown, "".join(piped)
    finally:
        terminal.close()


def collect(stream: IO[str], into: list[str]) -> threading.Thread:
    """Read the lines of *stream* into *into* in a thread, as they come."""

    def read() -> None:
        for line in stream:
            into.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Wait until ``predicate()`` is true; fail after *timeout* (scaled) saying *what* was awaited."""
    deadline = time.monotonic() + scaled(timeout)
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {scaled(timeout):.0f} s waiting for {what}")
        time.sleep(0.01)
