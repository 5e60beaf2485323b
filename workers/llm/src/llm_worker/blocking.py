"""Blocking file work the event loop can walk away from.

A thread stuck in the kernel (`open()` on a dead NFS or FUSE mount) cannot be cancelled,
and one in asyncio's default executor would also hold up the process's exit (asyncio.run
joins that pool). So each call runs in a daemon thread of its own, and the caller waits
at most until a deadline: past it the thread is abandoned — it may finish some day, or
never; either way the worker goes on, and SIGTERM still ends the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL_SECONDS = 0.25  # how often a wait looks at `hurry` (only while a call is running)


class NeverReturned(Exception):
    """The call did not return within its time; its thread is abandoned."""

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"{what} did not return within {seconds:g} s")
        self.what = what
        self.seconds = seconds


def _settle(future: asyncio.Future[T], result: T | None, error: BaseException | None) -> None:
    if future.done():  # abandoned: nobody waits any more
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


async def run_abandonable(
    fn: Callable[[], T],
    *,
    what: str,
    seconds: float,
    hurry: Callable[[], float | None] = lambda: None,
) -> T:
    """`fn()` in a daemon thread; its result, or `NeverReturned` after `seconds`.

    `hurry()` may shorten the wait while it runs: it returns the seconds still allowed
    (e.g. once the worker is stopping) or None for no change.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def work() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = fn()
        except BaseException as exc:  # handed to the waiter, who re-raises it
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: the process is ending
            loop.call_soon_threadsafe(_settle, future, result, error)

    threading.Thread(target=work, name=f"llm-tool:{what}", daemon=True).start()
    started = time.monotonic()
    deadline = started + seconds
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NeverReturned(what, round(deadline - started, 3))
            done, _ = await asyncio.wait({future}, timeout=min(remaining, POLL_SECONDS))
            if done:
                return future.result()
            left = hurry()
            if left is not None and time.monotonic() + left < deadline:
                deadline = time.monotonic() + max(0.0, left)
    finally:
        future.cancel()  # no-op once settled; otherwise a late result is dropped, not reported
