"""The API reference's output folder: whose it is, which pages are ours, and who writes now.

A folder of pages is owned by one source: its manifest (``.api-docs.json``, next to the
pages) names the source, the task that last wrote it and every page it wrote. So:

- a task documenting another source into a folder that already holds one is refused
  with a blocker naming both (two tasks never overwrite each other's reference);
- a rerun removes the pages it wrote last time that no longer exist (a module deleted
  or renamed), and only those: a file the manifest does not list is the user's, kept;
- two tasks on the same folder at once take turns (``flock`` on the folder's handle,
  which works across processes and containers sharing the mount).

Everything goes through the folder's handle (:mod:`documentation_worker.safefs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from documentation_worker.safefs import is_file_in, remove_file, write_file

__all__ = ["MANIFEST", "Manifest", "folder_lock", "read_manifest", "remove_stale", "write_manifest"]

MANIFEST = ".api-docs.json"
#: A manifest is a few KiB; a bigger file there is not ours and is not read.
MANIFEST_LIMIT = 4 << 20
LOCK_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Manifest:
    """What one folder of API pages holds and who wrote it."""

    source: str  # the documented path, relative to the workspace
    package: str
    task_id: str
    pages: tuple[str, ...] = field(default=())


def read_manifest(folder_fd: int) -> Manifest | None:
    """The folder's manifest; None when there is none, or it is not one this worker wrote."""
    if not is_file_in(folder_fd, MANIFEST):
        return None
    try:
        fd = os.open(MANIFEST, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=folder_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        raw = handle.read(MANIFEST_LIMIT + 1)
    try:
        data: Any = json.loads(raw) if len(raw) <= MANIFEST_LIMIT else {}
        pages = tuple(p for p in data["pages"] if _is_page_name(p))
        return Manifest(str(data["source"]), str(data["package"]), str(data["task_id"]), pages)
    except (ValueError, TypeError, KeyError):
        return None


def write_manifest(folder_fd: int, manifest: Manifest) -> None:
    """Write the manifest atomically (a temp file renamed over it)."""
    data = {**asdict(manifest), "pages": sorted(manifest.pages)}
    write_file(folder_fd, MANIFEST, json.dumps(data, indent=1) + "\n")


def _is_page_name(name: object) -> bool:
    """A page this worker writes: ``*.md``, a plain file name (never a path, never hidden)."""
    return (
        isinstance(name, str)
        and name.endswith(".md")
        and "/" not in name
        and "\0" not in name
        and not name.startswith(".")
    )


def remove_stale(folder_fd: int, earlier: tuple[str, ...], now: set[str]) -> list[str]:
    """Remove the pages an earlier run wrote that this one did not; the names removed."""
    removed = []
    for name in sorted(set(earlier) - now):
        if _is_page_name(name) and remove_file(folder_fd, name):
            removed.append(name)
    return removed


@contextlib.asynccontextmanager
async def folder_lock(
    folder_fd: int, *, stopping: Callable[[], bool], waiting: Callable[[], None]
) -> AsyncIterator[None]:
    """Hold an exclusive ``flock`` on the folder while writing; poll (``waiting`` once) while another holds it."""
    told = False
    while True:
        try:
            fcntl.flock(folder_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
        if stopping():
            raise asyncio.CancelledError("worker stopping while waiting for the output folder")
        if not told:
            waiting()
            told = True
        await asyncio.sleep(LOCK_POLL_SECONDS)
    try:
        yield
    finally:
        fcntl.flock(folder_fd, fcntl.LOCK_UN)
