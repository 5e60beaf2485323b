"""Run a command in its own process group, with a timeout, streaming its output.

The command runs as an argv list (never through a shell) under :mod:`testing_worker.reaper`
in a new session, so that a timeout or a cancellation can stop everything it started:
SIGTERM to the whole group, then SIGKILL to whatever is left after a grace period; and
what the command started that left the group (``setsid``) is swept by the reaper.
Output is kept bounded: each line is cut to ``line_limit`` characters (a line that never
ends cannot grow the worker's memory), and only the last ``tail_lines`` are kept.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pm_worker.clip import clip, shown

__all__ = ["LINE_LIMIT", "CommandNotFound", "RunResult", "check_program", "kill_process_group", "run_command"]

#: How long output may keep flowing after the main process exits (a grandchild still
#: holding the pipe) before the rest of the group is stopped.
DRAIN_SECONDS = 2.0
READ_CHUNK = 65536
#: Characters of one output line kept (the rest is cut with a marker saying how much).
LINE_LIMIT = 1000


class CommandNotFound(Exception):
    """The program named by ``argv[0]`` does not exist or cannot be executed."""


@dataclass(frozen=True)
class RunResult:
    argv: tuple[str, ...]
    returncode: int | None  # None only if the process could not be reaped
    timed_out: bool
    duration: float
    tail: tuple[str, ...]  # the last lines of combined stdout/stderr
    line_count: int

    def tail_text(self, lines: int = 20, limit: int = 4000) -> str:
        """The last ``lines`` lines, at most ``limit`` characters (the oldest are cut first)."""
        return clip("\n".join(self.tail[-lines:]), limit, keep="tail")


class _CommandProtocol(asyncio.SubprocessProtocol):
    """Collects output and notices the exit of the main process on its own.

    (``asyncio.subprocess.Process.wait()`` also waits for the pipes to close, which a
    grandchild holding stdout can delay forever; exit and end-of-output are separate here.)
    """

    def __init__(self, on_data: Callable[[bytes], None]) -> None:
        self.exited = asyncio.Event()
        self.output_closed = asyncio.Event()
        self._on_data = on_data

    def pipe_data_received(self, fd: int, data: bytes | bytearray) -> None:
        self._on_data(bytes(data))

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self.output_closed.set()

    def process_exited(self) -> None:
        self.exited.set()


async def run_command(
    argv: Sequence[str],
    cwd: Path,
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    tail_lines: int = 200,
    kill_grace: float = 5.0,
    line_limit: int = LINE_LIMIT,
) -> RunResult:
    """Run ``argv`` in ``cwd``; stdout and stderr are merged and passed line by line to ``on_line``.

    After ``timeout`` seconds the process group gets SIGTERM, then SIGKILL ``kill_grace``
    seconds later; the result says ``timed_out``. If this coroutine is cancelled the group
    is stopped the same way and the cancellation re-raised.
    """
    tail: deque[str] = deque(maxlen=tail_lines)
    count = 0
    pending = bytearray()  # the line being received, at most `keep` bytes of it
    dropped = 0  # bytes of it beyond those
    keep = 4 * line_limit  # UTF-8: enough bytes for `line_limit` characters

    def emit() -> None:
        nonlocal count, dropped
        line = _cut_line(pending.decode("utf-8", errors="replace").rstrip("\r"), dropped, line_limit)
        pending.clear()
        dropped = 0
        tail.append(line)
        count += 1
        if on_line is not None:
            on_line(line)

    def on_data(data: bytes) -> None:
        nonlocal dropped
        start = 0
        while True:
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start:end]
            room = max(0, keep - len(pending))
            pending.extend(piece[:room])
            dropped += max(0, len(piece) - room)
            if end < 0:
                return
            emit()
            start = end + 1

    check_program(argv[0], cwd, env)
    # -I: the reaper's own imports never come from the workspace or the task's PYTHON* variables
    reaper = [sys.executable, "-I", "-m", "testing_worker.reaper", f"{kill_grace / 2:g}", "--"]
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    try:
        transport, protocol = await loop.subprocess_exec(
            lambda: _CommandProtocol(on_data),
            *reaper,
            *argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
        raise CommandNotFound(f"cannot run {shown(argv[0], 200)}: {exc.strerror or exc}") from exc

    pid = transport.get_pid()
    timed_out = False
    try:
        try:
            await asyncio.wait_for(protocol.exited.wait(), timeout)
        except TimeoutError:
            timed_out = True
            await kill_process_group(pid, protocol.exited, kill_grace)
        # The main process is gone; let the output drain. Whatever of the group still
        # holds the pipe open is stopped too: a test run leaves nothing behind.
        if not await _wait(protocol.output_closed, DRAIN_SECONDS):
            await kill_process_group(pid, protocol.exited, kill_grace)
            await _wait(protocol.output_closed, DRAIN_SECONDS)
    except BaseException:
        # Cancelled (or anything unexpected): stop the whole group before re-raising.
        await asyncio.shield(kill_process_group(pid, protocol.exited, kill_grace))
        raise
    finally:
        transport.close()
    if pending or dropped:
        emit()
    return RunResult(
        argv=tuple(argv),
        returncode=transport.get_returncode(),
        timed_out=timed_out,
        duration=time.monotonic() - started,
        tail=tuple(tail),
        line_count=count,
    )


def check_program(program: str, cwd: Path, env: Mapping[str, str] | None) -> None:
    """Raise :class:`CommandNotFound` unless ``program`` can be started (found on PATH, or a path from ``cwd``)."""
    if "/" in program:
        path = Path(program) if os.path.isabs(program) else cwd / program
        if not path.is_file():
            raise CommandNotFound(f"cannot run {shown(program, 200)}: No such file or directory")
        if not os.access(path, os.X_OK):
            raise CommandNotFound(f"cannot run {shown(program, 200)}: Permission denied")
        return
    search = (os.environ if env is None else env).get("PATH", os.defpath)
    if shutil.which(program, path=search) is None:
        raise CommandNotFound(
            f"cannot run {shown(program, 200)}: No such file or directory (not found on PATH)"
        )


def _cut_line(text: str, dropped: int, limit: int) -> str:
    """``text`` (plus ``dropped`` bytes never kept) as at most ``limit`` characters, saying how much was cut."""
    if not dropped and len(text) <= limit:
        return text
    total = len(text) + dropped
    head = text[: max(0, limit - len(f"… [cut {total:,} characters]"))]
    return f"{head}… [cut {total - len(head):,} characters]"


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the group; False if it no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # only members we may not signal are left (or the id was reused)
        return False
    return True


async def kill_process_group(pgid: int, exited: asyncio.Event, grace: float = 5.0) -> None:
    """SIGTERM the process group ``pgid``; SIGKILL whatever is left after ``grace`` seconds.

    The command was started with ``start_new_session=True``, so its pid is the group id;
    ``exited`` is set when that main process has exited. Also used after the main process
    has exited, to stop the members it left behind.
    """
    if not _signal_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    await _wait(exited, grace)
    # The other members are not our children, so there is no exit to wait on: look at
    # the group until it is empty or the grace is over.
    while time.monotonic() < deadline and _signal_group(pgid, 0):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    if _signal_group(pgid, signal.SIGKILL):
        await _wait(exited, grace)
