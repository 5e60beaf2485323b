"""When a job started, as the worker saw it: one line `key epoch-seconds` per started job.

The peers' pickup job calls `record(key)` first thing (the clock is read before any I/O);
each worker process appends to its own file in $BENCH_PEERS_STAMPS. Our side needs no
stamp: pm_worker logs `task received` (with its timestamp) before it runs a task.
The drain's no-op job records nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO

_out: IO[str] | None = None


def record(key: str) -> None:
    now = time.time()
    global _out
    if _out is None:
        folder = Path(os.environ["BENCH_PEERS_STAMPS"])
        _out = (folder / f"{os.getpid()}.txt").open("a", buffering=1)
    _out.write(f"{key} {now:.6f}\n")


class Tail:
    """Reads what was appended to the files of a folder since the last call."""

    def __init__(self, folder: Path, pattern: str = "*") -> None:
        self.folder = folder
        self.pattern = pattern
        self._offsets: dict[Path, int] = {}
        self._partial: dict[Path, str] = {}

    def lines(self) -> list[str]:
        out: list[str] = []
        for path in sorted(self.folder.glob(self.pattern)):
            offset = self._offsets.get(path, 0)
            try:
                with path.open("rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
            except OSError:
                continue
            if not chunk:
                continue
            self._offsets[path] = offset + len(chunk)
            text = self._partial.pop(path, "") + chunk.decode(errors="replace")
            *complete, rest = text.split("\n")
            if rest:
                self._partial[path] = rest
            out.extend(complete)
        return out


class Stamps:
    """key → start time, from the stamp files of a folder."""

    def __init__(self, folder: Path) -> None:
        self.tail = Tail(folder, "*.txt")
        self.seen: dict[str, float] = {}

    def poll(self) -> dict[str, float]:
        for line in self.tail.lines():
            key, _, at = line.partition(" ")
            if at:
                self.seen.setdefault(key, float(at))
        return self.seen
