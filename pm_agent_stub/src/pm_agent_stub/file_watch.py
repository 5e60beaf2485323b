"""Writes to the board's files by any process, noticed without polling: inotify (Linux).

The stub learns of commits by *other* processes (CLI `load`/`resolve`, sibling stubs) from
`PRAGMA data_version`, which only says "changed" when asked. Asking every 10 ms while
someone waits cost ~1 % of a core here (each wake-up of a sleeping thread, cold, is ~100
µs), a fifth of the budget of 1,000 idle agents. Every commit, ours or another process's,
writes the database's `-wal` file (or the database itself), so a blocking read of inotify
events on its directory says exactly when to ask, and costs nothing while nobody writes.

`FileWatch` runs one daemon thread that blocks on the inotify descriptor, and calls
`on_write()` after writes to the board's files, at most once per `settle` seconds (events
arriving meanwhile are read together): a busy board's own commits cost at most 100 calls
a second, an idle board none. Where inotify is missing (not Linux, no descriptors left, a
file system without events) `start()` returns False and the caller polls instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from pm_agent_stub.logs import get_logger

log = get_logger("pm_agent_stub.file_watch")

IN_MODIFY: Final = 0x002
IN_CLOSE_WRITE: Final = 0x008
IN_MOVED_TO: Final = 0x080
IN_CREATE: Final = 0x100
WATCHED: Final = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name


class FileWatch:
    """Calls `on_write()` (on its own thread) after any process wrote the database's files."""

    def __init__(self, db: Path, on_write: Callable[[], None], *, settle: float = 0.01) -> None:
        self.db = db
        self.on_write = on_write
        self.settle = settle
        self._names = {db.name.encode(), f"{db.name}-wal".encode()}
        self._fd = -1
        self._stop_r, self._stop_w = -1, -1
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Begin watching; False if inotify is not available here (then poll instead)."""
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            init, add = libc.inotify_init1, libc.inotify_add_watch
        except (OSError, AttributeError):
            return False
        fd = init(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            log.warning("inotify_unavailable", error=os.strerror(ctypes.get_errno()))
            return False
        if add(fd, os.fsencode(self.db.parent), WATCHED) < 0:
            log.warning(
                "inotify_unavailable", error=os.strerror(ctypes.get_errno()), path=str(self.db.parent)
            )
            os.close(fd)
            return False
        self._fd = fd
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="pm-agent-file-watch", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        if self._thread is None:
            return
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=5)
        for fd in (self._fd, self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._thread = None

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self._fd, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                log.exception("inotify_read_failed")
                return
            if self._ours(data):
                try:
                    self.on_write()
                except Exception:
                    log.exception("file_watch_callback_failed")
                time.sleep(self.settle)  # writes meanwhile queue up and are read as one batch

    def _ours(self, data: bytes) -> bool:
        """Whether a batch of events touches the database or its WAL (not other files in the folder)."""
        offset = 0
        while offset + _EVENT.size <= len(data):
            _wd, _mask, _cookie, length = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
            if name in self._names:
                return True
            offset += _EVENT.size + length
        return False
