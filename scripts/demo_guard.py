"""What `make demo` checks before it starts anything: that no other run uses its folder, and its port.

- One run per folder. Two `make demo` on the same `.run/demo` (or the same project's board)
  shared the board file and the agent ids `documentation-local`, ...: tasks ran twice, one
  result was thrown away, both exited 0. `RunLock` takes an exclusive `flock` on
  `<folder>.lock` (next to the folder, so `--fresh` can remove the folder itself); the stub
  and the workers inherit the descriptor, so the lock is held as long as any process of the
  run lives, and the kernel drops it when the last one ends: never a stale lock to delete.
- The port: free unless something listens on it. The check binds with `SO_REUSEADDR`, as
  uvicorn does, so the TIME-WAIT sockets a stopped stub leaves for a minute (the kernel keeps
  them after the stub closed an idle browser connection) no longer refuse a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path


class RunLock:
    """An exclusive lock on `<folder>.lock`, held by this process and the children given `fd`."""

    def __init__(self, folder: Path, what: str) -> None:
        self.path = folder.with_name(folder.name + ".lock")
        self.what = what
        self.fd = -1

    def acquire(self, port: int) -> RunLock:
        """Take the lock, or SystemExit with the line saying who holds it and what to do."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip()
            os.close(fd)
            raise SystemExit(self._refusal(holder)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, port {port}, since {time.strftime('%H:%M:%S')}\n".encode())
        self.fd = fd
        return self

    def _refusal(self, holder: str) -> str:
        pid = holder.split(",", 1)[0].removeprefix("pid ").strip()
        gone = pid.isdigit() and not Path(f"/proc/{pid}").exists()
        who = f"({holder})" if holder else ""
        after = (
            f"; that run has exited but its stub or workers still run: `fuser -v {self.path}` lists them"
            if gone
            else "; wait for it to end or stop it (Ctrl-C in its terminal)"
        )
        return (
            f"demo: another `make demo` is running on {self.what} {who}{after}. Two runs at once would "
            "share its board and its workers' ids, so this one does not start"
        )

    def release(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether the stub could listen on `host:port` now (TIME-WAIT leftovers do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def a_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_taken(port: int, project_dir: Path | None) -> str:
    """The line for a taken port: what may hold it, and the setting that picks another (for make
    users too: PM_AGENT_PORT is what `make demo` and the CLI commands both read)."""
    other = a_free_port()
    demo = f"make demo PROJECT_DIR={project_dir}" if project_dir else "make demo"
    return (
        f"demo: port {port} is taken (a `make up` fleet? `make down` stops it). To use another port, "
        f"for the fleet and for `make status`/`make show` alike: `export PM_AGENT_PORT={other}`, then {demo} "
        f"(or PM_AGENT_PORT={other} on each command)"
    )
