"""Ending a task of our own without swallowing a cancellation of our own.

The common `task.cancel(); with suppress(CancelledError): await task` eats a cancellation
aimed at the caller too (a shutdown, Ctrl-C) when it lands during that await. `reap` waits
with `asyncio.wait`, which never raises the reaped task's outcome; a cancellation of the
caller that lands meanwhile is re-raised once the reaped task has ended (clean up, then
re-raise), so nothing of ours is left running behind it.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def reap(task: asyncio.Future[Any]) -> None:
    """Cancel `task` and wait until it has ended; what it ended with is dropped (and retrieved)."""
    task.cancel()
    try:
        await asyncio.wait({task})
    except asyncio.CancelledError:
        await asyncio.wait({task})  # it was cancelled: it ends at its next await
        raise
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" when it is collected
