"""A real file system that never answers, as a dead NFS or sshfs server does.

A FUSE mount whose server never replies, not even to FUSE_INIT: every `stat`, `open`
or `readdir` under it waits in the kernel until the connection is aborted. That is the
one kind of file a thread cannot be talked out of (no timeout, no O_NONBLOCK helps), so
it is what shows that the llm worker's tools can be abandoned and that the process still
exits. Needs root (mount(2)) and /dev/fuse; `available()` says whether it can be used.

    with never_answering_mount(folder / "stuck"):
        ...   # anything under folder/stuck hangs until the block ends
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MS_NOSUID, MS_NODEV = 0x2, 0x4
MNT_DETACH = 2


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def available() -> str | None:
    """None if a hung mount can be made here, else why not (for pytest.skip)."""
    if os.geteuid() != 0:
        return "needs root to mount a FUSE file system"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    return None


@contextmanager
def never_answering_mount(target: Path) -> Iterator[Path]:
    """Mount a FUSE file system at `target` that never answers; abort and unmount it on exit."""
    target.mkdir(parents=True, exist_ok=True)
    fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    libc = _libc()
    options = f"fd={fd},rootmode=40000,user_id=0,group_id=0".encode()
    if libc.mount(b"never-answers", str(target).encode(), b"fuse", MS_NOSUID | MS_NODEV, options) != 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise OSError(err, f"mount fuse at {target}: {os.strerror(err)}")
    try:
        yield target
    finally:
        os.close(fd)  # aborts the connection: every waiter gets ENOTCONN at once
        libc.umount2(str(target).encode(), MNT_DETACH)
