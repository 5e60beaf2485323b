"""Server-sent events: every open dashboard gets the board again soon after it changes.

Why push and not a poll: the board already says when it changed (`Board.add_listener`: a
commit with events or signals, which includes every progress report and heartbeat), so
the stub builds a snapshot only after a change and only while someone looks, and every
reader gets the same one. A 1 s poll would rebuild the board once a second per tab
whether or not anything moved, and show a change 0.5 s late on average (bench/dashboard.py
measures both).

- **One snapshot for everyone.** Every open stream, every new stream's first event and
  every `GET /dashboard/api/board` is served from the one `Snapshot` built last, while it
  is current: no commit of this process and no change of the file's `PRAGMA data_version`
  since it was read, and younger than `refresh`. Otherwise the reader waits for the next
  build, which every reader waiting by then shares (issue 24: each stream used to build its
  own on connecting, so 390 of them queued 390 builds of 1.8 MB ahead of a heartbeat).
- **Rate-limited.** Builds come at most once per `interval`: `min_interval` (0.2 s), or
  longer while a build costs more than a tenth (`BUDGET`) of it (a moving average, so one
  slow build on a busy machine does not stall the page), or while pushing the snapshot to
  every open page would send more than `PUSH_BYTES_PER_SECOND`; at most `MAX_INTERVAL_SECONDS`.
- **Bounded.** At most `max_streams` streams at once (`PM_DASHBOARD_MAX_STREAMS`): `admit`
  says no to one more, and the route answers 503 with the reason. A stream ends after
  `max_age` seconds (`PM_DASHBOARD_STREAM_MAX_SECONDS`; the page reconnects at once, and
  its credentials are checked again), and at once when its login session ends
  (`end_session`, on logout). A client that stops reading is the connection layer's to
  close (`PM_HTTP_WRITE_TIMEOUT`, http_limits.py); until then it holds one snapshot.
- Other processes (`python -m pm_agent_stub resolve`/`load`, sibling stubs) do not call our
  listeners; while a page is open the file's `PRAGMA data_version` is read every
  `watch_interval` (0.25 s) to notice them.
- Time passing changes the board too (a worker turns offline), so an open page gets a fresh
  snapshot at least every `refresh` seconds; lease countdowns tick in the page itself.
- A slow page never slows the others: each subscriber holds only the newest snapshot.
- Nothing runs while nobody looks.
- In the stub the board has its own thread (board_thread.py): `build` and `file_version` run
  there in the viewers' lane (`on_board`: workers' calls go first), and commit listeners are
  called there, so `on_commit` hands the wake-up to the event loop (`post`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from pm_agent_stub.board import Commit
from pm_agent_stub.logs import get_logger

log = get_logger("pm_agent_stub.dashboard")

T = TypeVar("T")
OnBoard = Callable[[Callable[[], Any]], Awaitable[Any]]
Post = Callable[[asyncio.AbstractEventLoop, Callable[[], None]], None]
Version = tuple[int, int]  # (this process's commits, the file's data_version)

MIN_INTERVAL_SECONDS: Final = 0.2
WATCH_INTERVAL_SECONDS: Final = 0.25
REFRESH_SECONDS: Final = 5.0
KEEPALIVE_SECONDS: Final = 15.0
RETRY_MILLISECONDS: Final = 1000
BUDGET: Final = 0.1  # the share of the board thread snapshots may take while someone looks
PUSH_BYTES_PER_SECOND: Final = 32 * 1024 * 1024  # what pushes to every open page may send, at most
MAX_INTERVAL_SECONDS: Final = 5.0
COST_SMOOTHING: Final = 0.2  # weight of the newest build in the moving average of build time
MAX_STREAMS: Final = 50
MAX_AGE_SECONDS: Final = 600.0
PIECE_BYTES: Final = 64 * 1024


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One build of the board, as every reader gets it."""

    version: Version  # read on the board thread just before the build
    taken: float  # monotonic
    json: bytes
    event: bytes  # the SSE `board` event carrying `json`


class Subscriber:
    """One open stream: the newest snapshot not yet sent, and whose login opened it."""

    def __init__(self, session: str | None, opened: float) -> None:
        self.session = session
        self.opened = opened
        self.latest: Snapshot | None = None
        self.sent: Snapshot | None = None
        self.ended = False
        self.ready = asyncio.Event()

    def offer(self, snapshot: Snapshot) -> None:
        if snapshot is self.sent or snapshot is self.latest:
            return
        if self.sent is not None and snapshot.taken < self.sent.taken:
            return  # an older build than the page has
        self.latest = snapshot
        self.ready.set()

    def take(self) -> Snapshot | None:
        snapshot, self.latest = self.latest, None
        self.ready.clear()
        if snapshot is not None:
            self.sent = snapshot
        return snapshot

    def end(self) -> None:
        self.ended = True
        self.ready.set()


class LiveBoard:
    """Builds `build()` (one snapshot as JSON bytes) for every reader, after each change."""

    def __init__(
        self,
        build: Callable[[], bytes],
        file_version: Callable[[], int],
        *,
        min_interval: float = MIN_INTERVAL_SECONDS,
        watch_interval: float = WATCH_INTERVAL_SECONDS,
        refresh: float = REFRESH_SECONDS,
        keepalive: float = KEEPALIVE_SECONDS,
        max_streams: int = MAX_STREAMS,
        max_age: float = MAX_AGE_SECONDS,
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
        self.max_streams = max_streams
        self.max_age = max_age
        self.commits = 0  # this process's commits (counted on the board thread)
        self._subscribers: set[Subscriber] = set()
        self._waiters: list[asyncio.Future[Snapshot | None]] = []
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._current: Snapshot | None = None
        self._last_build = -float("inf")
        self.snapshots_built = 0
        self.build_seconds = 0.0
        self.push_bytes = 0  # what the last push sent, all pages together

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def on_commit(self, commit: Commit) -> None:
        """The board's commit listener: count it, wake the builder if a page is open (no SQL here).

        Called on the board's thread in the stub: the event is set on the loop's.
        """
        self.commits += 1
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            self._wake.set()
        elif self._subscribers:  # nobody watching: the next reader checks the version anyway
            if self._post is not None:
                self._post(loop, self._wake.set)
            else:
                loop.call_soon_threadsafe(self._wake.set)

    async def _read(self, fn: Callable[[], T]) -> T:
        if self._on_board is None:
            return fn()
        result: T = await self._on_board(fn)
        return result

    def _version(self) -> Version:
        """(board thread) What a snapshot read now would reflect."""
        return (self.commits, self._file_version())

    def close(self) -> None:
        """End every stream (server shutdown); the pages reconnect to the next stub."""
        self._closing.set()
        self._wake.set()
        for sub in self._subscribers:
            sub.end()

    # ------------------------------------------------------------------ readers

    def admit(self, session: str | None = None) -> Subscriber | None:
        """A new stream's place, or None when `max_streams` are open (or the stub is stopping)."""
        if self._closing.is_set() or len(self._subscribers) >= self.max_streams:
            return None
        sub = Subscriber(session, time.monotonic())
        self._subscribers.add(sub)
        self._wake.set()
        return sub

    def release(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    def end_session(self, session: str) -> int:
        """End the streams a login session opened (it logged out); how many there were."""
        ended = [sub for sub in self._subscribers if sub.session == session]
        for sub in ended:
            sub.end()
        return len(ended)

    async def latest(self) -> Snapshot | None:
        """The board now: the current snapshot, or the next build (None if that build failed)."""
        fut: asyncio.Future[Snapshot | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._wake.set()
        return await fut

    async def stream(self, sub: Subscriber) -> AsyncIterator[bytes | memoryview]:
        """One page's event stream: the board now, then again after every change, until it
        leaves, its session ends, or it is `max_age` old."""
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
            first = await self.latest()
            if first is not None:
                sub.offer(first)
            ends = sub.opened + self.max_age
            while not self._closing.is_set() and not sub.ended:
                snapshot = sub.take()
                if snapshot is not None:
                    # In pieces: between two, the loop serves others (and other pages), so
                    # pushing ~2 MB to every page never holds it for the whole push at once.
                    for piece in pieces(snapshot.event):
                        yield piece
                left = ends - time.monotonic()
                if left <= 0:
                    break
                try:
                    async with asyncio.timeout(min(self.keepalive, left)):
                        await sub.ready.wait()
                except TimeoutError:
                    if time.monotonic() < ends:
                        yield b": keepalive\n\n"
        finally:
            self.release(sub)

    # ------------------------------------------------------------------ the builder

    @property
    def interval(self) -> float:
        """The least time between two builds: `min_interval`, or longer if they cost more."""
        return min(
            MAX_INTERVAL_SECONDS,
            max(self.min_interval, self.build_seconds / BUDGET, self.push_bytes / PUSH_BYTES_PER_SECOND),
        )

    async def run(self) -> None:
        """Sleeps while nobody looks; else one snapshot per change for every reader, rate-limited."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        while not self._closing.is_set():
            await self._next_reason()
            if self._closing.is_set():
                break
            if not self._waiters and not self._subscribers:
                continue  # a commit while nobody looks: the next reader checks the version
            version = await self._read(self._version)
            current = self._current
            if (
                current is not None
                and current.version == version
                and time.monotonic() - current.taken < self.refresh
            ):
                self._settle(current)
                continue
            wait = self.interval - (time.monotonic() - self._last_build)
            if wait > 0:  # readers arriving meanwhile share this build
                try:
                    async with asyncio.timeout(wait):
                        await self._closing.wait()
                except TimeoutError:
                    pass
            snapshot = await self._snapshot()
            self._settle(snapshot)
            if snapshot is not None:
                for sub in self._subscribers:
                    sub.offer(snapshot)
                self.push_bytes = len(snapshot.event) * len(self._subscribers)
        self._settle(None)

    async def _next_reason(self) -> None:
        """Until a reader waits, a commit came while a page is open, or a page's next look is due."""
        if self._waiters:
            return
        if not self._subscribers:
            await self._wake.wait()
            self._wake.clear()
            return
        try:
            async with asyncio.timeout(self.watch_interval):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()

    def _settle(self, snapshot: Snapshot | None) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(snapshot)

    def _built(self) -> tuple[Version, bytes]:
        """(board thread) The version and the snapshot, read together."""
        return self._version(), self._build()

    async def _snapshot(self) -> Snapshot | None:
        started = time.perf_counter()
        try:
            version, payload = await self._read(self._built)
        except Exception:
            log.exception("dashboard_snapshot_failed")
            return None
        finally:
            self._last_build = time.monotonic()
        took = time.perf_counter() - started
        self.build_seconds = (
            took
            if not self.snapshots_built
            else (COST_SMOOTHING * took + (1 - COST_SMOOTHING) * self.build_seconds)
        )
        self.snapshots_built += 1
        snapshot = Snapshot(version, time.monotonic(), payload, frame(payload))
        self._current = snapshot
        return snapshot


def pieces(event: bytes) -> list[bytes | memoryview]:
    """An event in pieces of at most PIECE_BYTES (views of it, not copies)."""
    if len(event) <= PIECE_BYTES:
        return [event]
    view = memoryview(event)
    return [view[start : start + PIECE_BYTES] for start in range(0, len(event), PIECE_BYTES)]


def frame(payload: bytes) -> bytes:
    """One SSE `board` event (the JSON has no newline, so one `data:` line)."""
    return b"event: board\ndata: " + payload + b"\n\n"
