"""The parser child (`python -P -m documentation_worker.parse_child MEMORY_MB`): see :mod:`.parsing`.

It imports griffe and the worker's own model, caps its own address space, then locks
itself down (:func:`lock_down`): from then on it may not open a file, list a folder, run
code, start a process or open a socket anywhere but in the interpreter's own libraries.
griffe is static analysis and needs none of that; the lock makes "never imports or runs
the project's code" something the kernel-side audit hooks enforce, not a promise. It
answers one JSON line per request until its stdin closes: ``module`` requests add one
file, a ``finish`` request sends back every module's facts. A `MemoryError` or
`RecursionError` from a hostile file becomes an answer naming the problem; anything
worse ends this process, which the worker reports with the file it was reading.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import resource
import sys
from collections.abc import Iterable
from typing import Any, BinaryIO

from documentation_worker.apidoc import SourceError
from documentation_worker.extract import Collector

#: Audit events the child never needs once it serves requests (besides open and exec, checked by path).
FORBIDDEN_EVENTS = frozenset(
    {
        "os.listdir",
        "os.scandir",
        "os.chdir",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "subprocess.Popen",
        "socket.connect",
        "socket.bind",
        "ctypes.dlopen",
    }
)


class LockedDown(RuntimeError):
    """The child tried something it must never do (read a file, run code, ...)."""


def allowed_roots() -> tuple[str, ...]:
    """The folders the interpreter loads its own code from: prefixes and the import path as it is now."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots.update(p for p in sys.path if p and os.path.isabs(p))
    return tuple(sorted(os.path.realpath(r).rstrip("/") + "/" for r in roots))


def lock_down(roots: Iterable[str] | None = None) -> None:
    """From now on, refuse (raise :class:`LockedDown`) any file opened or code run outside ``roots``."""
    allowed = tuple(roots) if roots is not None else allowed_roots()

    def inside(path: Any) -> bool:
        if isinstance(path, int):
            return True  # an already open descriptor (stdin, stdout)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        return isinstance(path, str) and os.path.realpath(path).startswith(allowed)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open" and not inside(args[0]):
            raise LockedDown(f"the parser child may not open {args[0]!r}")
        if event == "exec":
            filename = getattr(args[0], "co_filename", "<?>")
            if not filename.startswith("<") and not inside(filename):
                raise LockedDown(f"the parser child may not run code from {filename!r}")
        if event in FORBIDDEN_EVENTS:
            raise LockedDown(f"the parser child may not {event}")

    sys.addaudithook(hook)


def _problem(line: int | None, problem: str) -> dict[str, Any]:
    return {"error": {"line": line, "problem": problem}}


def _memory_problem(memory_mb: int, what: str = "parse") -> dict[str, Any]:
    return _problem(
        None,
        f"too large or too deeply nested to {what} within DOCS_PARSE_MEMORY_MB={memory_mb} (MemoryError)",
    )


def handle(collector: Collector, request: dict[str, Any], data: bytes, memory_mb: int) -> dict[str, Any]:
    """The answer to one request: ``{"ok": true}``, ``{"modules": [...]}`` or ``{"error": {"line", "problem"}}``."""
    try:
        if request.get("op", "module") == "finish":
            modules = collector.finish(include_private=bool(request.get("include_private")))
            return {"modules": [dataclasses.asdict(m) for m in modules]}
        collector.add(request["name"], request["path"], data)
        return {"ok": True}
    except SourceError as exc:
        return _problem(exc.line, exc.problem)
    except MemoryError:
        return _memory_problem(memory_mb)
    except RecursionError:
        return _problem(None, "nested too deeply to document (RecursionError)")
    except Exception as exc:
        return _problem(None, f"could not be analysed ({type(exc).__name__}: {exc})")


def serve(memory_mb: int, stdin: BinaryIO, stdout: BinaryIO, *, locked: bool = True) -> None:
    """Cap this process's address space and lock it down, then answer requests until ``stdin`` closes."""
    limit = memory_mb << 20
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    logging.getLogger("griffe").disabled = True  # its warnings about odd docstrings are not the worker's log
    if locked:
        lock_down()
    collector = Collector()
    while True:
        header = stdin.readline()
        if not header:
            return
        request = json.loads(header)
        data = stdin.read(int(request.get("size", 0)))
        try:
            out = json.dumps(handle(collector, request, data, memory_mb))
        except MemoryError:  # the facts themselves did not fit
            out = json.dumps(_memory_problem(memory_mb, "document"))
        stdout.write(out.encode() + b"\n")
        stdout.flush()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.stdin.buffer, sys.stdout.buffer)
