"""`python -m pm_agent_stub status --watch` in a real terminal (a pty): it draws the board,
redraws when another process changes the file, and Ctrl-C ends it with status 0."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from pm_agent_stub.testing import load_tasks, run_cli, stub_env, task


class Terminal:
    """A child process on a 160x50 pseudo-terminal; `screen` is everything it wrote so far."""

    def __init__(self, args: list[str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        self.proc = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env=stub_env({"TERM": "xterm-256color"})
        )
        os.close(slave)
        self.master = master
        self.screen = ""

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            assert time.monotonic() < deadline, (
                f"{text!r} not shown within {timeout}s:\n{self.screen[-3000:]}"
            )
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.screen += os.read(self.master, 65536).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    assert text in self.screen, self.screen[-3000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.master)


def test_watch_redraws_on_changes_and_quits_on_ctrl_c(tmp_path: Path) -> None:
    db = tmp_path / "watch.db"
    load_tasks(db, task("first-task", "x"))
    term = Terminal(
        [sys.executable, "-m", "pm_agent_stub", "status", "--watch", "--interval", "0.5", "--db", str(db)]
    )
    try:
        term.wait_for("first-task")
        term.wait_for("Recent events")
        load_tasks(db, task("second-task", "x", dependencies=["first-task"]))  # another process
        term.wait_for("second-task")
        term.wait_for("waiting on first-task")
        term.proc.send_signal(signal.SIGINT)
        assert term.proc.wait(timeout=30) == 0
    finally:
        term.close()


def test_watch_refuses_json_and_a_bad_interval(tmp_path: Path) -> None:
    db = str(tmp_path / "w.db")
    both = run_cli("status", "--watch", "--json", "--db", db)
    assert both.returncode == 2
    assert "--watch draws a live view" in both.stderr
    bad = run_cli("status", "--watch", "--interval", "0", "--db", db)
    assert bad.returncode == 2
    assert "--interval" in bad.stderr
