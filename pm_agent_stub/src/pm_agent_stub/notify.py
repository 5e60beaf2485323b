"""Long-poll wake-ups and the lease sweep timer.

Waiters sleep on an `asyncio.Event` that is swapped on every wake (a broadcast), so an idle
long-poll costs nothing. Two background loops keep them honest:

- the sweeper sleeps until the next lease expiry (re-aimed whenever leases change), then
  expires due leases, which wakes waiters through the board's `work` signal;
- the watcher notices commits by *other* processes on the same file (CLI `load`/`resolve`,
  sibling stubs) by polling `PRAGMA data_version`, one cheap read every 10 ms, and only
  while someone in this process is waiting. The period bounds the pickup latency of a
  task loaded from another process (bench/: p99 was ~170 ms at 200 ms); a read costs a few
  µs, so even 100 idle long-pollers keep the stub well under 1 % of a core.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from pm_agent_stub.board import Board, Commit
from pm_agent_stub.db import data_version
from pm_agent_stub.logs import get_logger

log = get_logger("pm_agent_stub.notify")

WATCH_INTERVAL_SECONDS: Final = 0.01
MAX_SWEEP_SLEEP_SECONDS: Final = 30.0


class Notifier:
    """Broadcast "the board changed in a way that may offer new work" to long-pollers."""

    def __init__(self, board: Board, *, watch_interval: float = WATCH_INTERVAL_SECONDS) -> None:
        self._board = board
        self._watch_interval = watch_interval
        self._work = asyncio.Event()
        self._leases = asyncio.Event()
        self._has_waiters = asyncio.Event()
        self._waiters = 0
        board.add_listener(self._on_commit)

    def _on_commit(self, commit: Commit) -> None:
        if "work" in commit.signals:
            self.wake()
        if "lease" in commit.signals:
            self._leases.set()

    def wake(self) -> None:
        """Wake every current waiter; later waiters get a fresh event."""
        event, self._work = self._work, asyncio.Event()
        event.set()

    def ticket(self) -> asyncio.Event:
        """Take this *before* checking the board, so a change after the check is never missed."""
        return self._work

    @property
    def waiters(self) -> int:
        return self._waiters

    async def wait(
        self,
        ticket: asyncio.Event,
        timeout: float,
        cancel: asyncio.Event | None = None,
        disconnected: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Sleep until woken, `cancel` is set, the client disconnects, or `timeout` passes."""
        self._waiters += 1
        self._has_waiters.set()
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(ticket.wait())]
        if cancel is not None:
            waits.append(asyncio.ensure_future(cancel.wait()))
        if disconnected is not None:
            waits.append(asyncio.ensure_future(disconnected()))
        try:
            await asyncio.wait(waits, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._waiters -= 1
            for fut in waits:
                fut.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def watch_other_processes(self) -> None:
        """Turn commits by other processes into wake-ups (polls only while someone waits)."""
        last = data_version(self._board.conn)
        while True:
            if self._waiters == 0:
                self._has_waiters.clear()
                await self._has_waiters.wait()
            await asyncio.sleep(self._watch_interval)
            try:
                current = data_version(self._board.conn)
            except Exception:
                log.exception("data_version_failed")
                continue
            if current != last:
                last = current
                self.wake()
                self._leases.set()

    async def run_sweeper(self) -> None:
        """Expire leases on time: sleep until the next expiry, re-aim when leases change."""
        while True:
            self._leases.clear()
            try:
                nxt = self._board.next_lease_expiry()
                if nxt is not None and nxt <= time.time():
                    self._board.sweep()
                    continue
            except Exception:
                log.exception("sweep_failed")
                nxt = None
            delay = (
                MAX_SWEEP_SLEEP_SECONDS
                if nxt is None
                else min(MAX_SWEEP_SLEEP_SECONDS, nxt - time.time() + 0.005)
            )
            try:
                async with asyncio.timeout(max(0.0, delay)):
                    await self._leases.wait()
            except TimeoutError:
                pass
