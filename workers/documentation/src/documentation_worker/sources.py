"""Read a package's Python files from the workspace: bounded, and never from outside it.

The walk goes through directory handles (:mod:`documentation_worker.safefs`): a folder
that is a symbolic link is never entered (a link to ``/elsewhere`` would publish outside
files in the shared docs; ``l1 -> .`` would walk forever), no folder is visited twice
(device, inode), and a file that is a link is read only if what was opened lies inside
the boundary. Files, bytes, directory entries and depth are capped per task, and a file's
size is checked before it is read, so a hostile tree ends in a clear error, not in a
worker that never finishes. Stubs (``.pyi``) are read with their modules. A package's own
test suite (:mod:`documentation_worker.naming`) is left out unless asked for: not read,
not parsed, only counted.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from documentation_worker.limits import DocsLimits
from documentation_worker.naming import TEST_FOLDERS, is_test_file
from documentation_worker.safefs import DIR_FLAGS, UnsafePath, opened_dir

__all__ = ["SKIPPED_DIRS", "Found", "Source", "TooMuch", "UnsafePath", "discover_modules", "read_package"]

#: Folders never searched for modules.
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".venv", "venv", "build", "dist", "node_modules"})
FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
SOURCE_SUFFIXES = (".py", ".pyi")


class TooMuch(Exception):
    """The package exceeds one of the per-task caps; the message names the cap and its variable."""


@dataclass(frozen=True)
class Source:
    """One module: dotted name, path relative to the package's parent (as shown to people), bytes."""

    dotted: str
    path: str
    data: bytes


@dataclass
class Found:
    sources: list[Source] = field(default_factory=list)
    #: What was not read, relative to the workspace, with why (links out, links to folders, ...).
    skipped: list[str] = field(default_factory=list)
    #: Test folders and files left out (relative to the workspace), as asked.
    tests: list[str] = field(default_factory=list)


def read_package(boundary: Path, root: Path, limits: DocsLimits, *, include_tests: bool = False) -> Found:
    """Every module under ``root`` (a package folder, a folder of modules, or one ``.py`` file).

    ``boundary`` (the workspace, resolved) is what nothing may be read from outside of;
    ``root`` is a resolved path inside it. Test folders and files below ``root`` are left
    out unless ``include_tests``. Raises :class:`TooMuch` or :class:`UnsafePath`.
    """
    return _Reader(boundary, root, limits, include_tests).read()


class _Reader:
    def __init__(self, boundary: Path, root: Path, limits: DocsLimits, include_tests: bool) -> None:
        self.boundary = boundary
        self.root = root
        self.limits = limits
        self.include_tests = include_tests
        self.found = Found()
        self.total_bytes = 0
        self.entries = 0
        self.visited: set[tuple[int, int]] = set()
        self.label = PurePosixPath(root.relative_to(boundary).as_posix())  # how messages name the root
        self.files: list[tuple[tuple[str, ...], str, bytes]] = []  # (folder parts, file name, bytes)

    def read(self) -> Found:
        relative = self.root.relative_to(self.boundary)
        if relative.parts:
            with opened_dir(self.boundary, relative.parent) as parent:
                try:
                    st = os.stat(relative.name, dir_fd=parent, follow_symlinks=False)
                except OSError as exc:
                    raise UnsafePath(f"{relative} cannot be read: {exc.strerror or exc}") from None
                if stat.S_ISLNK(st.st_mode):  # swapped in after the path was checked
                    raise UnsafePath(f"{relative} cannot be used as a folder: it is a symbolic link")
                if not stat.S_ISDIR(st.st_mode):  # one module
                    data = self._read_file(parent, relative.name, self.label)
                    if data is not None:
                        self.found.sources.append(
                            Source(self.root.name.rsplit(".", 1)[0], self.root.name, data)
                        )
                    return self.found
        with opened_dir(self.boundary, relative) as top:
            base = self.root.name if _has_init(top) else ""
            self._walk(os.dup(top))
        modules: list[tuple[str, str, bool, bytes]] = []
        for parts, name, data in self.files:
            stem = name.rsplit(".", 1)[0]
            dotted_parts = [*parts] if stem == "__init__" else [*parts, stem]
            dotted = ".".join(p for p in [base, *dotted_parts] if p) or self.root.name
            modules.append((dotted, _shown(self.root, parts, name), stem == "__init__", data))
        modules.sort(key=lambda m: (m[0].split("."), not m[2]))
        self.found.sources = [Source(dotted, shown, data) for dotted, shown, _, data in modules]
        return self.found

    def _walk(self, top: int) -> None:
        """Depth first, sorted; only the handles of the current path are open."""
        stack: list[tuple[int, tuple[str, ...], list[str]]] = []
        try:
            self.visited.add(_key(top))
            stack.append((top, (), self._scan(top, ())))
            while stack:
                fd, parts, subdirs = stack[-1]
                if not subdirs:
                    os.close(fd)
                    stack.pop()
                    continue
                name = subdirs.pop(0)
                try:
                    child = os.open(name, DIR_FLAGS, dir_fd=fd)
                except PermissionError:
                    self.found.skipped.append(
                        f"{self._label(parts, name)} (permission denied to uid {os.getuid()})"
                    )
                    continue
                except OSError:  # swapped for a link or removed since the scan: not followed
                    self.found.skipped.append(f"{self._label(parts, name)} (changed during the walk)")
                    continue
                key = _key(child)
                if key in self.visited:
                    os.close(child)
                    continue
                self.visited.add(key)
                if len(stack) >= self.limits.max_depth:
                    os.close(child)
                    raise TooMuch(
                        f"{self._label(parts, name)} is nested more than {self.limits.max_depth} folders deep "
                        f"(DOCS_MAX_DEPTH); document a sub-folder instead"
                    )
                stack.append((child, (*parts, name), []))  # on the stack first: closed if the scan fails
                stack[-1][2].extend(self._scan(child, (*parts, name)))
        finally:
            for fd, _, _ in stack:
                os.close(fd)

    def _scan(self, fd: int, parts: tuple[str, ...]) -> list[str]:
        """Read the ``.py`` files of one folder; return its sub-folders to visit, by name."""
        entries = []
        with os.scandir(fd) as it:
            for entry in it:
                self.entries += 1
                if self.entries > self.limits.max_entries:
                    raise TooMuch(
                        f"more than {self.limits.max_entries} directory entries under {self.label} "
                        f"(DOCS_MAX_ENTRIES); document a smaller folder"
                    )
                entries.append(entry)
        subdirs = []
        for entry in sorted(entries, key=lambda e: e.name):
            name = entry.name
            if entry.is_symlink():
                if entry.is_dir():
                    self.found.skipped.append(
                        f"{self._label(parts, name)} (a link to a folder: never followed)"
                    )
                elif name.endswith(SOURCE_SUFFIXES) and self._wanted(parts, name):
                    self._add(fd, parts, name)
            elif entry.is_dir(follow_symlinks=False):
                if name in SKIPPED_DIRS or name.startswith("."):
                    continue
                if not self.include_tests and name in TEST_FOLDERS:
                    self.found.tests.append(f"{self._label(parts, name)}/")
                    continue
                subdirs.append(name)
            elif (
                name.endswith(SOURCE_SUFFIXES)
                and entry.is_file(follow_symlinks=False)
                and self._wanted(parts, name)
            ):
                self._add(fd, parts, name)
        return subdirs

    def _wanted(self, parts: tuple[str, ...], name: str) -> bool:
        """False (and counted) for a test module left out."""
        if self.include_tests or not is_test_file(name):
            return True
        self.found.tests.append(str(self._label(parts, name)))
        return False

    def _add(self, dir_fd: int, parts: tuple[str, ...], name: str) -> None:
        data = self._read_file(dir_fd, name, self._label(parts, name))
        if data is not None:
            self.files.append((parts, name, data))

    def _read_file(self, dir_fd: int, name: str, shown: PurePosixPath) -> bytes | None:
        """The file's bytes, or None (and a note) if it is a link out of the boundary or not a regular file."""
        try:
            fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            self.found.skipped.append(f"{shown} (cannot open: {exc.strerror or exc})")
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                self.found.skipped.append(f"{shown} (not a regular file)")
                return None
            if not self._inside(fd):
                self.found.skipped.append(f"{shown} (a link to a file outside the workspace: never followed)")
                return None
            if len(self.files) + len(self.found.sources) >= self.limits.max_files:
                raise TooMuch(
                    f"more than {self.limits.max_files} Python files under {self.label} (DOCS_MAX_FILES); "
                    "document a sub-package, or raise the cap"
                )
            if st.st_size > self.limits.max_file_bytes:
                raise TooMuch(
                    f"{shown} is {st.st_size:,} bytes, over the {self.limits.max_file_bytes:,}-byte cap per file "
                    "(DOCS_MAX_FILE_BYTES); it was not read or parsed. Exclude it (e.g. move generated code out "
                    "of the package) or raise the cap"
                )
            if self.total_bytes + st.st_size > self.limits.max_total_bytes:
                raise TooMuch(
                    f"the Python files under {self.label} add up to more than {self.limits.max_total_bytes:,} "
                    f"bytes (DOCS_MAX_TOTAL_BYTES, reached at {shown}); document a sub-package, or raise the cap"
                )
            data = _read_at_most(fd, self.limits.max_file_bytes)
            if data is None:
                raise TooMuch(
                    f"{shown} grew past the {self.limits.max_file_bytes:,}-byte cap per file while it was read "
                    "(DOCS_MAX_FILE_BYTES)"
                )
            self.total_bytes += len(data)
            return data
        finally:
            os.close(fd)

    def _label(self, parts: tuple[str, ...], name: str) -> PurePosixPath:
        """A file or folder as messages name it: relative to the workspace."""
        return self.label.joinpath(*parts, name)

    def _inside(self, fd: int) -> bool:
        """What ``fd`` opened lies inside the boundary (asked of the kernel, after the open)."""
        try:
            real = Path(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # no /proc: only what was reached without links counts
            return False
        return real == self.boundary or self.boundary in real.parents


def _read_at_most(fd: int, limit: int) -> bytes | None:
    """Up to ``limit`` bytes; None if there is more."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = os.read(fd, min(1 << 20, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None


def _has_init(dir_fd: int) -> bool:
    try:
        return stat.S_ISREG(os.stat("__init__.py", dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _key(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _shown(root: Path, parts: tuple[str, ...], name: str) -> str:
    return PurePosixPath(root.name, *parts, name).as_posix()


def discover_modules(
    root: Path, limits: DocsLimits | None = None, *, include_tests: bool = False
) -> list[tuple[str, Path]]:
    """``(dotted name, file)`` for every module under ``root``, in a stable order: the package
    itself first, then its modules and sub-packages by name. The walk is `read_package`'s,
    with ``root`` (or a file's folder) as the boundary."""
    root = root.resolve()
    boundary = root if root.is_dir() else root.parent
    found = read_package(boundary, root, limits or DocsLimits(), include_tests=include_tests)
    return [(source.dotted, root.parent / source.path) for source in found.sources]
