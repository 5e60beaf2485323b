"""Server-sent events: every open dashboard gets the board again soon after it changes.

Why push and not a poll: the board already says when it changed (`Board.add_listener`: a
commit with events or signals, which includes every progress report and heartbeat), so
the stub builds a snapshot only after a change and only while a page is open, and every
open page gets the same one. A 1 s poll would rebuild the board once a second per tab
whether or not anything moved, and show a change 0.5 s late on average (bench/dashboard.py
measures both).

- Coalescing: one snapshot per change, but at most one per `min_interval` (0.2 s) however
  fast commits come (ten busy workers commit tens of times a second), so the cost is
  bounded by the rate of snapshots, not of commits. On a board so big that a snapshot
  takes more than a tenth (`BUDGET`) of that interval, the interval grows with the snapshot's
  usual cost (a moving average, so one slow build on a busy machine does not stall the
  page), up to `MAX_INTERVAL_SECONDS`: open pages keep to about a tenth of the event loop.
- Other processes (`python -m pm_agent_stub resolve`/`load`, sibling stubs) do not call our
  listeners; while a page is open the file's `PRAGMA data_version` is read every
  `watch_interval` (0.25 s) to notice them.
- Time passing changes the board too (a worker turns offline), so an open page gets a fresh
  snapshot at least every `refresh` seconds; lease countdowns tick in the page itself.
- A slow page never slows the others: each subscriber holds only the newest snapshot.
- Nothing runs while no page is open.
- In the stub the board has its own thread (board_thread.py): `build` and `file_version` run
  there (`on_board`), and commit listeners are called there, so `on_commit` hands the
  wake-up to the event loop (`post`: with the job's own result, one loop wake-up).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, TypeVar

from pm_agent_stub.board import Commit
from pm_agent_stub.logs import get_logger

log = get_logger("pm_agent_stub.dashboard")

T = TypeVar("T")
OnBoard = Callable[[Callable[[], Any]], Awaitable[Any]]
Post = Callable[[asyncio.AbstractEventLoop, Callable[[], None]], None]

MIN_INTERVAL_SECONDS: Final = 0.2
WATCH_INTERVAL_SECONDS: Final = 0.25
REFRESH_SECONDS: Final = 5.0
KEEPALIVE_SECONDS: Final = 15.0
RETRY_MILLISECONDS: Final = 1000
BUDGET: Final = 0.1  # the share of the event loop snapshots may take while pages are open
MAX_INTERVAL_SECONDS: Final = 2.0
COST_SMOOTHING: Final = 0.2  # weight of the newest build in the moving average of build time


class Subscriber:
    """One open stream: the newest snapshot not yet sent."""

    def __init__(self) -> None:
        self.latest: bytes | None = None
        self.ready = asyncio.Event()

    def offer(self, payload: bytes) -> None:
        self.latest = payload
        self.ready.set()

    def take(self) -> bytes | None:
        payload, self.latest = self.latest, None
        self.ready.clear()
        return payload


class LiveBoard:
    """Pushes `build()` (one snapshot as JSON bytes) to every subscriber after each change."""

    def __init__(
        self,
        build: Callable[[], bytes],
        file_version: Callable[[], int],
        *,
        min_interval: float = MIN_INTERVAL_SECONDS,
        watch_interval: float = WATCH_INTERVAL_SECONDS,
        refresh: float = REFRESH_SECONDS,
        keepalive: float = KEEPALIVE_SECONDS,
        on_board: OnBoard | None = None,
        post: Post | None = None,
    ) -> None:
        self._build = build
        self._file_version = file_version
        self._on_board = on_board  # runs a board read where the board lives (None: right here)
        self._post = post  # hands a callback to the loop from the board's thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self.min_interval = min_interval
        self.watch_interval = watch_interval
        self.refresh = refresh
        self.keepalive = keepalive
        self._subscribers: set[Subscriber] = set()
        self._changed = asyncio.Event()
        self._has_subscribers = asyncio.Event()
        self._closing = asyncio.Event()
        self.snapshots_built = 0
        self.build_seconds = 0.0

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def on_commit(self, commit: Commit) -> None:
        """The board's commit listener: mark dirty; the pusher does the work (no SQL here).

        Called on the board's thread in the stub: the event is set on the loop's.
        """
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            self._changed.set()
        elif self._subscribers:  # nobody watching: a new page gets a fresh snapshot anyway
            if self._post is not None:
                self._post(loop, self._changed.set)
            else:
                loop.call_soon_threadsafe(self._changed.set)

    async def _read(self, fn: Callable[[], T]) -> T:
        if self._on_board is None:
            return fn()
        result: T = await self._on_board(fn)
        return result

    def close(self) -> None:
        """End every stream (server shutdown); the pages reconnect to the next stub."""
        self._closing.set()
        for sub in self._subscribers:
            sub.ready.set()

    async def _snapshot(self) -> bytes | None:
        started = time.perf_counter()
        try:
            payload = await self._read(self._build)
        except Exception:
            log.exception("dashboard_snapshot_failed")
            return None
        took = time.perf_counter() - started
        self.build_seconds = (
            took
            if not self.snapshots_built
            else (COST_SMOOTHING * took + (1 - COST_SMOOTHING) * self.build_seconds)
        )
        self.snapshots_built += 1
        return payload

    @property
    def interval(self) -> float:
        """The least time between two pushes: `min_interval`, or longer if snapshots are costly."""
        return min(MAX_INTERVAL_SECONDS, max(self.min_interval, self.build_seconds / BUDGET))

    async def run(self) -> None:
        """The pusher: sleeps while no page is open; else one snapshot per change, rate-limited."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        version = await self._read(self._file_version)
        last_push = 0.0
        while not self._closing.is_set():
            if not self._subscribers:
                self._has_subscribers.clear()
                await self._has_subscribers.wait()
                version = await self._read(self._file_version)
                last_push = time.monotonic()  # each new page got a fresh snapshot of its own
            try:
                async with asyncio.timeout(self.watch_interval):
                    await self._changed.wait()
            except TimeoutError:
                pass
            current = await self._read(self._file_version)
            moved = self._changed.is_set() or current != version
            if not moved and time.monotonic() - last_push < self.refresh:
                continue
            wait = self.interval - (time.monotonic() - last_push)
            if wait > 0:
                await asyncio.sleep(wait)
            self._changed.clear()
            version = await self._read(self._file_version)
            payload = await self._snapshot()
            last_push = time.monotonic()
            if payload is not None:
                for sub in self._subscribers:
                    sub.offer(payload)

    async def stream(self) -> AsyncIterator[bytes]:
        """One page's event stream: the board now, then again after every change, until it leaves."""
        sub = Subscriber()
        first = await self._snapshot()
        self._subscribers.add(sub)
        self._has_subscribers.set()
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
            if first is not None:
                yield frame(first)
            while not self._closing.is_set():
                try:
                    async with asyncio.timeout(self.keepalive):
                        await sub.ready.wait()
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                payload = sub.take()
                if payload is not None:
                    yield frame(payload)
        finally:
            self._subscribers.discard(sub)


def frame(payload: bytes) -> bytes:
    """One SSE `board` event (the JSON has no newline, so one `data:` line)."""
    return b"event: board\ndata: " + payload + b"\n\n"
