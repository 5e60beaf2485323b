"""The task folder's files as the model's tools see them: inside the folder, regular files only.

Every path is resolved (symlinks followed) and refused unless it stays inside the task
folder (`safe_path`). It is then opened one component at a time from the folder with
`O_NOFOLLOW` (a folder swapped for a symlink after the check is not followed), the file
itself with `O_NONBLOCK` as well, and `fstat` decides: only a regular file is read or
written. A FIFO, socket or device is refused with its kind named; opening a FIFO
without `O_NONBLOCK` would wait for a writer for ever, and that is what hung the worker.

Everything here blocks (it is file-system work) and runs off the event loop, in
`blocking.run_abandonable`: a file system that never answers costs a thread, not the worker.
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import suppress
from pathlib import Path, PurePosixPath, PureWindowsPath

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MAX_LIST_ENTRIES = 500
MAX_LIST_SCAN = 100_000  # entries looked at (counted) before a listing says "at least"


class PathRefused(Exception):
    """A path outside the task folder; the message goes to the model (and to the log)."""


class FileProblem(Exception):
    """The path is inside but cannot be used that way (missing, a folder, not a regular file)."""


def safe_path(root: Path, relative: str) -> Path:
    """`relative` resolved inside `root` (already resolved); `PathRefused` for absolute paths and escapes."""
    text = relative.strip()
    if not text:
        raise PathRefused("empty path: give a path relative to the task folder, e.g. 'README.md' or '.'")
    if "\x00" in text:
        raise PathRefused("the path contains a NUL byte")
    if PurePosixPath(text).is_absolute() or PureWindowsPath(text).drive or text.startswith("~"):
        raise PathRefused(f"absolute path {text!r} refused: paths are relative to the task folder")
    candidate = (root / text).resolve()
    if candidate != root and root not in candidate.parents:
        raise PathRefused(
            f"path {text!r} leaves the task folder (it resolves outside it, through '..' or a "
            "symlink); only paths inside the task folder can be used"
        )
    return candidate


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words for the model."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISLNK(mode):
        return "a symlink"
    return "not a regular file"


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _open_folder(root: Path, parts: tuple[str, ...], *, create: bool) -> int:
    """A descriptor of root/parts, walked one folder at a time without following symlinks."""
    fd = os.open(root, DIR_FLAGS)
    try:
        for i, part in enumerate(parts):
            try:
                nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise FileProblem(f"{'/'.join(parts[: i + 1])!r} does not exist") from None
                with suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                where = "/".join(parts[: i + 1])
                if exc.errno == errno.ELOOP or _is_link(part, fd):  # O_DIRECTORY on a link: ENOTDIR
                    raise PathRefused(f"{where!r} became a symlink after the check; not followed") from None
                raise FileProblem(f"{where!r} is not a folder; use read_file for a file") from None
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _parts(root: Path, target: Path) -> tuple[str, ...]:
    return target.relative_to(root).parts


def read_regular(root: Path, target: Path, limit: int) -> tuple[bytes, int]:
    """The first `limit` bytes of a regular file inside `root`, and its size."""
    parts = _parts(root, target)
    if not parts:
        raise FileProblem("'.' is a folder; use list_dir")
    folder = _open_folder(root, parts[:-1], create=False)
    try:
        try:
            before = os.stat(parts[-1], dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            raise FileProblem(f"{'/'.join(parts)!r} does not exist") from None
        if stat.S_ISDIR(before.st_mode):
            raise FileProblem(f"{'/'.join(parts)!r} is a folder; use list_dir")
        if not stat.S_ISREG(before.st_mode):
            raise FileProblem(
                f"{'/'.join(parts)!r} is {kind_of(before.st_mode)}, not a regular file; only regular "
                "files can be read"
            )
        try:
            fd = os.open(parts[-1], READ_FLAGS, dir_fd=folder)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PathRefused(
                    f"{'/'.join(parts)!r} became a symlink after the check; not followed"
                ) from None
            raise
    finally:
        os.close(folder)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped between the stat and the open
            raise FileProblem(f"{'/'.join(parts)!r} is {kind_of(st.st_mode)}, not a regular file")
        chunks: list[bytes] = []
        left = limit
        while left > 0:
            chunk = os.read(fd, min(left, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks), st.st_size
    finally:
        os.close(fd)


def write_regular(root: Path, target: Path, data: bytes) -> None:
    """Create or replace a regular file inside `root` (missing folders created), never through a link."""
    parts = _parts(root, target)
    if not parts:
        raise FileProblem("'.' is a folder")
    folder = _open_folder(root, parts[:-1], create=True)
    try:
        name = parts[-1]
        with suppress(FileNotFoundError):
            before = os.stat(name, dir_fd=folder, follow_symlinks=False)
            if stat.S_ISLNK(before.st_mode):
                raise PathRefused(f"{'/'.join(parts)!r} is a symlink; it is not followed for writing")
            if not stat.S_ISREG(before.st_mode):
                raise FileProblem(
                    f"{'/'.join(parts)!r} is {kind_of(before.st_mode)}, not a regular file; only regular "
                    "files can be written"
                )
        try:
            fd = os.open(name, WRITE_FLAGS, 0o644, dir_fd=folder)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PathRefused(
                    f"{'/'.join(parts)!r} is a symlink; it is not followed for writing"
                ) from None
            if exc.errno == errno.ENXIO:  # a FIFO with no reader, or a socket, appeared meanwhile
                raise FileProblem(
                    f"{'/'.join(parts)!r} is not a regular file; only regular files can be written"
                ) from None
            raise
    finally:
        os.close(folder)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileProblem(f"{'/'.join(parts)!r} is {kind_of(st.st_mode)}, not a regular file")
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def list_folder(root: Path, folder: Path) -> tuple[list[str], int]:
    """Up to MAX_LIST_ENTRIES lines (`name/`, `name (N bytes)`, `name@ (symlink)`, `name (a socket)`),
    sorted, and how many entries the folder has (at least; counting stops at MAX_LIST_SCAN)."""
    parts = _parts(root, folder)
    fd = _open_folder(root, parts, create=False)
    try:
        entries = []
        count = 0
        with os.scandir(fd) as it:
            for entry in it:
                count += 1
                if count <= MAX_LIST_SCAN:
                    entries.append(entry)
                else:
                    break
        lines = []
        for entry in sorted(entries, key=lambda e: e.name)[:MAX_LIST_ENTRIES]:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                lines.append(f"{entry.name}@ (symlink)")
            elif stat.S_ISDIR(st.st_mode):
                lines.append(f"{entry.name}/")
            elif stat.S_ISREG(st.st_mode):
                lines.append(f"{entry.name} ({st.st_size} bytes)")
            else:
                lines.append(f"{entry.name} ({kind_of(st.st_mode)})")
        return lines, count
    finally:
        os.close(fd)
