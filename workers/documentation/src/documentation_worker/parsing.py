"""Analyse modules in a child process, so a hard file cannot starve the worker.

Parsing holds the GIL for as long as it runs (55 s for a 50 MB file), and while it does
the worker sends no lease heartbeat: the lease expires under a task that is still being
worked on. A deeply nested expression makes the parser raise `MemoryError` or
`RecursionError`, and a big one can take gigabytes. So each task's files are analysed
(griffe, :mod:`documentation_worker.extract`) by one child
(:mod:`documentation_worker.parse_child`), started with ``python -P`` in ``/`` (nothing
of the workspace on its import path), with an address-space cap and an audit-hook lock it
sets on itself, and a time limit per request enforced from here; the worker's event loop
stays free. What the child sends back is JSON, read into :class:`ModuleDoc` with pydantic,
never unpickled: the child handles hostile input.

Wire format, child's stdin: one JSON line ``{"op": "module", "name", "path", "size"}``
then ``size`` raw bytes of source, per module; then ``{"op": "finish", "include_private"}``.
stdout: one JSON line per request, ``{"ok": true}`` (a module), ``{"modules": [...]}``
(finish) or ``{"error": {"line", "problem"}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys

from pydantic import TypeAdapter

from documentation_worker.apidoc import ModuleDoc, SourceError
from documentation_worker.sources import Source

__all__ = ["ParserProcess", "ParserUnavailable"]

#: What the child never needs to see.
PRIVATE_ENV = ("PM_AGENT_TOKEN",)

#: Longest answer line accepted from the child (a module's facts, as JSON).
ANSWER_LIMIT = 256 << 20
_MODULES = TypeAdapter(list[ModuleDoc])


class ParserUnavailable(Exception):
    """The parser child cannot be started (the interpreter cannot be run by this user, ...)."""


class ParserProcess:
    """One child per task: ``async with ParserProcess(...) as parser: doc = await parser.parse(source)``."""

    def __init__(self, *, timeout: float, memory_mb: int) -> None:
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> ParserProcess:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _start(self) -> asyncio.subprocess.Process:
        if self._proc is None or self._proc.returncode is not None:
            try:
                self._proc = await self._spawn()
            except OSError as exc:
                raise ParserUnavailable(
                    f"cannot start the parser process ({sys.executable} -P -m documentation_worker.parse_child): "
                    f"{exc.strerror or exc}; uid {os.getuid()} must be able to run {sys.executable}"
                ) from None
        return self._proc

    async def _spawn(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-P",
            "-m",
            "documentation_worker.parse_child",
            str(self.memory_mb),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=ANSWER_LIMIT,
            cwd="/",
            env={k: v for k, v in os.environ.items() if k not in PRIVATE_ENV},
        )

    async def parse(self, source: Source) -> None:
        """Add one module; :class:`SourceError` naming the file if it cannot be (bad syntax, too deep, too big, too slow)."""
        header = {"op": "module", "name": source.dotted, "path": source.path, "size": len(source.data)}
        line = await self._ask(header, source.data, source.path, "parsing")
        answer = json.loads(line)
        if "error" in answer:
            raise SourceError(source.path, answer["error"].get("line"), str(answer["error"]["problem"]))

    async def finish(self, *, include_private: bool, label: str) -> list[ModuleDoc]:
        """Every module added, resolved and described; :class:`SourceError` naming ``label`` if that fails."""
        line = await self._ask(
            {"op": "finish", "include_private": include_private}, b"", label, "analysing the package"
        )
        # a big package's facts take a while to decode: in a thread, so the event loop keeps ticking
        return await asyncio.to_thread(_decode, label, line)

    async def _ask(self, header: dict[str, object], data: bytes, path: str, doing: str) -> bytes:
        """Send one request, wait (bounded) for its answer line; a dead or slow child is a :class:`SourceError`."""
        proc = await self._start()
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(header).encode() + b"\n" + data)
            async with asyncio.timeout(self.timeout):
                await proc.stdin.drain()
                line = await proc.stdout.readline()
        except TimeoutError:
            await self.close()
            raise SourceError(
                path,
                None,
                f"{doing} took longer than {self.timeout:g} s "
                "(DOCS_PARSE_TIMEOUT_SECONDS); the file is too large or too "
                "complex to document",
            ) from None
        except (ConnectionError, ValueError, asyncio.LimitOverrunError):
            line = b""
        if not line:
            code = await self._reap()
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            raise SourceError(
                path,
                None,
                f"the parser process died while reading it ({how}; it may need "
                f"more than DOCS_PARSE_MEMORY_MB={self.memory_mb})",
            )
        return line

    async def _reap(self) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await proc.wait()
        self._proc = None
        return proc.returncode

    async def close(self) -> None:
        """Stop the child (it holds nothing worth a goodbye)."""
        if self._proc is not None:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            await self._reap()


def _decode(path: str, line: bytes) -> list[ModuleDoc]:
    answer = json.loads(line)
    if "error" in answer:
        raise SourceError(path, answer["error"].get("line"), str(answer["error"]["problem"]))
    return _MODULES.validate_python(answer["modules"])
