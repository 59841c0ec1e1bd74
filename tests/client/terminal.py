"""Run a command in a pseudo-terminal and read its screen as a person sees it: the bytes go
through pyte, a VT100 emulator, so cursor moves, redraws and colours are applied, not
stripped."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time

import pyte

COLUMNS, LINES = 100, 40


class Terminal:
    """`args` running on a COLUMNS x LINES pseudo-terminal (its stdin, stdout and stderr)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.screen = pyte.Screen(COLUMNS, LINES)
        self._stream = pyte.ByteStream(self.screen)
        self.output = b""
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        self._master = master
        self.process = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
            env={**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), **env})
        os.close(slave)

    def text(self) -> str:
        """The screen now, one line per row, trailing blanks removed."""
        return "\n".join(line.rstrip() for line in self.screen.display).strip("\n")

    def _read(self, timeout: float) -> bool:
        """Feed what arrives within `timeout` to the screen; False once the terminal closed."""
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: every process holding the terminal has exited
            return False
        if not data:
            return False
        self.output += data
        self._stream.feed(data)
        return True

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """Read until the screen matches `pattern` (a regular expression)."""
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, self.text())) is None:
            if time.monotonic() > deadline or not self._read(0.1):
                raise AssertionError(f"{pattern!r} never appeared on the screen:\n{self.text()}")
        return found

    def finish(self, timeout: float = 120.0) -> int:
        """Read to the end; the exit status."""
        deadline = time.monotonic() + timeout
        while self._read(0.1):
            if time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"still running after {timeout} s:\n{self.text()}")
        os.close(self._master)
        return self.process.wait(timeout=10)
