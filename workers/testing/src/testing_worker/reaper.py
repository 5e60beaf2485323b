"""Run a test command so that nothing it starts outlives it.

``python -I -m testing_worker.reaper GRACE -- ARGV...`` makes itself a child subreaper
(``PR_SET_CHILD_SUBREAPER``): every process the command leaves behind, even one that
left the process group with ``setsid``, is re-parented to this process instead of init.
When the command exits, everything still running under it gets SIGTERM, then SIGKILL
after ``GRACE`` seconds, round after round until no child is left (killing a process
hands its own orphans to us). On SIGTERM (the worker's timeout or cancellation, sent to
the whole group) the command gets ``GRACE`` seconds, then SIGKILL, then the same sweep.
Finally this process ends the way the command ended (same exit code, or the same signal),
so the worker sees the command's own result.

A process group alone does not do this: ``setsid`` leaves the group, and a test command
that starts a daemon would keep it running after the task, holding files, ports and the
workspace. Linux only; elsewhere the sweep is the process group's.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

PR_SET_CHILD_SUBREAPER = 36
POLL_SECONDS = 0.02
#: Kill rounds before giving up on a tree that keeps forking faster than it dies.
MAX_ROUNDS = 1000

_terminate_at: float | None = None


def become_subreaper() -> bool:
    """Orphans of our descendants come to us (Linux ≥ 3.4); False where that is not possible."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def live_children() -> list[int]:
    """Our children that are still running (zombies are only waiting to be reaped)."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def reap(main: int) -> int | None:
    """Collect every exited child; the raw wait status of ``main`` if it was among them."""
    status = None
    while True:
        try:
            pid, raw = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            return status
        if pid == main:
            status = raw


def signal_all(sig: int) -> None:
    """``sig`` to our process group (the command's, unless it left it) and to each live child."""
    previous = signal.signal(sig, signal.SIG_IGN) if sig != signal.SIGKILL else None
    try:
        if sig != signal.SIGKILL:  # SIGKILL to our own group would end this process too
            with contextlib.suppress(OSError):
                os.killpg(os.getpgrp(), sig)
        for pid in live_children():
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
    finally:
        if previous is not None:
            signal.signal(sig, previous)


def sweep(grace: float, main: int) -> int | None:
    """SIGTERM everything left, SIGKILL what is still there after ``grace``, until nothing is; ``main``'s status if seen."""
    status = reap(main)
    if not live_children():
        return status
    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and live_children():
        status = reap(main) or status
        time.sleep(POLL_SECONDS)
    for _ in range(MAX_ROUNDS):
        status = reap(main) or status
        children = live_children()
        if not children:
            break
        for pid in children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(POLL_SECONDS)
    return reap(main) or status


def _on_terminate(signum: int, frame: FrameType | None) -> None:
    global _terminate_at
    if _terminate_at is None:
        _terminate_at = time.monotonic()


def end_like(status: int) -> None:
    """Exit as the command did: its exit code, or death by its signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        with contextlib.suppress(OSError, ValueError):  # SIGKILL and SIGSTOP have no handler to reset
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
        time.sleep(1)  # the signal is on its way
        sys.exit(128 + sig)
    sys.exit(os.waitstatus_to_exitcode(status))


def main(argv: list[str]) -> None:
    grace = float(argv[0])
    command = argv[2:] if len(argv) > 1 and argv[1] == "--" else argv[1:]
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_terminate)
    become_subreaper()
    try:
        child = subprocess.Popen(
            command, restore_signals=True
        )  # same group, so the worker's signals reach it
    except OSError as exc:
        print(f"cannot run {command[0]!r}: {exc.strerror or exc}", file=sys.stderr, flush=True)
        sys.exit(127)
    status: int | None = None
    forced = False
    while status is None:
        status = reap(child.pid)
        if status is not None:
            break
        if _terminate_at is not None and not forced and time.monotonic() - _terminate_at > grace:
            with contextlib.suppress(OSError):
                os.kill(child.pid, signal.SIGKILL)
            forced = True
        time.sleep(POLL_SECONDS)
    # Asked to stop: what is left shares the rest of the grace (the worker's SIGKILL to the group
    # comes after 2 x grace, and would leave orphans that escaped it to init).
    left = grace if _terminate_at is None else max(0.0, grace - (time.monotonic() - _terminate_at))
    sweep(left, child.pid)
    end_like(status)


if __name__ == "__main__":
    main(sys.argv[1:])
