"""The workspace through directory handles: nothing read or written through a symbolic link.

Anyone who can write to the shared workspace (a testing task's command can) can plant a
link or swap a folder for one between the worker's check and its use. So a checked path
is opened once, one component at a time with ``O_NOFOLLOW`` from the workspace's own
handle, and everything after that is relative to the handle: a later swap changes
nothing the worker touches. Temporary files get unguessable names and are created with
``O_CREAT | O_EXCL | O_NOFOLLOW``, so a planted name cannot redirect a write.

Calls relative to a handle report a refusal with the bare name (``PermissionError: 'api'``),
which anyone looking it up later resolves against their own cwd: so a `PermissionError`
leaves here carrying the full path (:func:`full_path_error`), for the blocker that names
the folder, its owner and the fix (:mod:`pm_worker.permissions`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path, PurePath

__all__ = [
    "UnsafePath",
    "full_path_error",
    "is_file_in",
    "open_dir",
    "opened_dir",
    "remove_file",
    "write_file",
]

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(Exception):
    """A path component is a link, not a folder, or otherwise cannot be opened safely."""


def full_path_error(exc: PermissionError, path: Path) -> PermissionError:
    """The same refusal, naming ``path`` (absolute) instead of a name relative to a handle."""
    return PermissionError(exc.errno, exc.strerror, str(path))


def _describe(dir_fd: int, name: str, exc: OSError) -> str:
    """Why ``name`` in ``dir_fd`` could not be opened as a folder (Linux says ENOTDIR for a link too)."""
    with contextlib.suppress(OSError):
        if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            return "it is a symbolic link"
    if exc.errno in (errno.ELOOP, errno.EMLINK):
        return "it is a symbolic link"
    if exc.errno == errno.ENOTDIR:
        return "it is not a folder"
    return exc.strerror or str(exc)


def open_dir(workspace: Path, relative: PurePath, *, create: bool = False) -> int:
    """A handle on ``workspace/relative``, no component followed if it is a link.

    ``relative`` must be free of ``..`` (a path already resolved inside the workspace,
    made relative to it). With ``create`` missing folders are made (mode 0o755).
    """
    fd = os.open(workspace, DIR_FLAGS)
    walked = PurePath()
    try:
        for part in relative.parts:
            if part in ("", "."):
                continue
            if part == ".." or "/" in part:
                raise UnsafePath(f"{relative} is not a plain path below the workspace")
            walked /= part
            try:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except PermissionError as exc:
                raise full_path_error(exc, workspace / walked) from None
            except OSError as exc:
                raise UnsafePath(f"{walked} cannot be used as a folder: {_describe(fd, part, exc)}") from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def opened_dir(workspace: Path, relative: PurePath, *, create: bool = False) -> Iterator[int]:
    """`open_dir` as a context manager that closes the handle."""
    fd = open_dir(workspace, relative, create=create)
    try:
        yield fd
    finally:
        os.close(fd)


def write_file(dir_fd: int, name: str, text: str) -> None:
    """Write ``name`` in the folder ``dir_fd`` atomically: a fresh temp file, then a rename over ``name``.

    A link already at ``name`` is replaced, never followed (rename acts on the name).
    """
    if not name or "/" in name or name in (".", ".."):
        raise UnsafePath(f"{name!r} is not a file name")
    data = text.encode("utf-8")
    tmp = f".{name[:200]}.{secrets.token_hex(8)}.tmp"
    fd = os.open(
        tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dir_fd
    )
    try:
        with os.fdopen(fd, "wb", closefd=True) as out:
            out.write(data)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def remove_file(dir_fd: int, name: str) -> bool:
    """Remove ``name`` from the folder ``dir_fd`` if it is a regular file (never a link's target, never a folder)."""
    if not name or "/" in name or name in (".", ".."):
        raise UnsafePath(f"{name!r} is not a file name")
    if not is_file_in(dir_fd, name):
        return False
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def is_file_in(dir_fd: int, name: str) -> bool:
    """``name`` is a regular file (not a link) in the folder ``dir_fd``."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(st.st_mode)
