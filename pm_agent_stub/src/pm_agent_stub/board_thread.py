"""The one thread that owns the board's SQLite connection; the event loop awaits its answers.

Every board call of the server runs here, one at a time, in the order it was asked for:

    event loop (HTTP, MCP, long-poll timers, ping, /healthz)
        │  await board_thread.call(board.heartbeat, agent_id)
        ▼
    board thread: fn(*args) inside its BEGIN IMMEDIATE ... COMMIT; commit listeners run here
        │  loop.call_soon_threadsafe(deliver)   (first `then`, then the awaiting future)
        ▼
    event loop

so a lock wait (another process's big `load`, `busy_timeout` up to 15 s) or a long insert
stalls only the board calls queued behind it: `ping`, `/healthz`, timers and the HTTP layer
keep running. One thread, not a pool, because SQLite takes one writer at a time anyway and
a single owner keeps transactions from interleaving; the cost of the hop is measured in
bench/ (about 30-60 µs of CPU per call here, against ~1 ms for the whole call).

Ordering is the property the notifier builds on: everything the thread hands to the loop
(what commit listeners `post`, a job's `then`, its result) arrives in the order the thread
produced it, and a job's `then` runs in that position, before any callback the thread
posted later (a coroutine awaiting the result resumes only afterwards). What one job posts
and its result travel together, in one `call_soon_threadsafe` (one wake-up of the loop
instead of one per item: each costs a write to the loop's self-pipe and a thread switch).

While someone asks for it (`watch`), the thread also notices commits by *other* processes
on the file (CLI `load`/`resolve`, sibling stubs): it reads `PRAGMA data_version` (our own
commits do not move it) whenever a process wrote the board's files (inotify, file_watch.py),
right after each of its own jobs if a write was heard meanwhile (so its own commits cost no
extra wake-up), and every 250 ms as a backstop; where inotify is missing, every
`watch_interval` (10 ms). It calls the watch callback here, on the board thread, when it moved.

Viewers wait for workers. The dashboard's snapshots and `/metrics` scrapes come in through
`view()`, a second lane: a viewer's read runs when no worker's call is waiting, and while
calls are waiting, viewers get at most `VIEWER_SHARE` of the thread (after a read that took
`d`, the next one waits for `d * (1 / VIEWER_SHARE - 1)` of calls). So however many pages
and scrapers there are, a heartbeat never queues behind their reads, only behind the one
running (issue 24: 390 open dashboards had taken a heartbeat from 5 ms to 11 s).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from pm_agent_stub.board import Board
from pm_agent_stub.db import data_version
from pm_agent_stub.file_watch import FileWatch
from pm_agent_stub.logs import get_logger

log = get_logger("pm_agent_stub.board_thread")

T = TypeVar("T")

WATCH_INTERVAL_SECONDS: Final = 0.01
# With inotify, a look every so often anyway while someone waits: another process's WAL
# frames are written (and heard) just before its commit shows in the WAL index, so a look
# that follows the event too closely can miss it; this bounds how long that case waits.
BACKSTOP_SECONDS: Final = 0.25
VIEWER_SHARE: Final = 0.25  # the most of the thread viewers' reads take while workers' calls wait

_Deliver = Callable[[Any, BaseException | None], None]
_Job = tuple[Callable[..., Any], tuple[Any, ...], _Deliver]
_Post = tuple[asyncio.AbstractEventLoop, Callable[..., Any], tuple[Any, ...]]


class BoardThreadClosed(RuntimeError):
    """The board thread was stopped; no more board calls."""


class _Lanes:
    """The thread's two queues: workers' calls (and the thread's own looks), and viewers' reads.

    `get` hands out a viewer's read only when no call waits, or when viewers' share is due
    (`view_due`, which the thread moves on after each read it runs).
    """

    def __init__(self) -> None:
        self._ready = threading.Condition(threading.Lock())
        self._calls: deque[_Job | None] = deque()
        self._views: deque[_Job] = deque()
        self.view_due = 0.0  # monotonic time from which a viewer's read may overtake waiting calls

    def put(self, job: _Job | None) -> None:
        with self._ready:
            self._calls.append(job)
            self._ready.notify()

    def put_view(self, job: _Job) -> None:
        with self._ready:
            self._views.append(job)
            self._ready.notify()

    def get(self, timeout: float | None) -> tuple[_Job | None, bool] | None:
        """The next job and whether it is a viewer's; None once `timeout` passed with nothing to do."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready:
            while True:
                now = time.monotonic()
                if self._views and (not self._calls or now >= self.view_due):
                    return self._views.popleft(), True
                if self._calls:
                    return self._calls.popleft(), False
                if deadline is not None and now >= deadline:
                    return None
                self._ready.wait(None if deadline is None else deadline - now)

    def drop_views(self) -> list[_Job]:
        with self._ready:
            views = list(self._views)
            self._views.clear()
            return views

    @property
    def calls(self) -> int:
        return len(self._calls)

    @property
    def views(self) -> int:
        return len(self._views)


class BoardThread:
    """Runs board calls on one dedicated thread; `await call(fn, *args)` from the event loop."""

    def __init__(
        self, board: Board, *, watch_interval: float = WATCH_INTERVAL_SECONDS, file_events: bool = True
    ) -> None:
        self.board = board
        self.watch_interval = watch_interval
        self.calls = 0
        self.busy_since: float | None = None  # monotonic start of the running job, None when idle
        self.native_id: int | None = None  # the OS thread id (bench/ reads its CPU time from /proc)
        self._jobs = _Lanes()
        self._on_foreign: Callable[[], None] | None = None
        self._outbox: list[_Post] = []  # the board thread's only: posts waiting for the next flush
        self._seen_version = data_version(board.conn)
        self._check_queued = False
        # Writes heard (inotify) and the last of them a look has covered: our own commits are
        # heard too, and the look right after the job that made them (hot, a few µs) covers
        # them, so the look their event queued has nothing left to do.
        self._ticks = itertools.count(1)
        self._last_write = 0
        self._looked_upto = 0
        self._closed = False
        file = _main_file(board)
        self._file_watch = FileWatch(file, self._written) if file is not None and file_events else None
        # In memory nobody else can write; on a file, inotify where there is one, else polling.
        self.event_driven = file is None or (self._file_watch is not None and self._file_watch.start())
        self._thread = threading.Thread(target=self._run, name="pm-agent-board", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ asking

    def submit(
        self,
        fn: Callable[..., T],
        *args: Any,
        then: Callable[[T], None] | None = None,
        viewer: bool = False,
    ) -> asyncio.Future[T]:
        """Queue `fn(*args)`; the future (of the running loop) gets its result or exception.

        `then(result)` runs on the loop in the result's place in the thread's order (before
        any later commit callback), even if the future was cancelled meanwhile. `viewer`: a
        read for the dashboard or /metrics, in the viewers' lane (see the module docstring).
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()

        def settle(result: Any, exc: BaseException | None) -> None:
            if exc is None and then is not None:
                try:
                    then(result)
                except Exception:
                    log.exception("board_then_failed")
            if fut.cancelled():
                return
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(result)

        def deliver(result: Any, exc: BaseException | None) -> None:
            self._outbox.append((loop, settle, (result, exc)))

        self._put((fn, args, deliver), viewer=viewer)
        return fut

    def post(self, loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on `loop`, in order with the board thread's other results.

        For commit listeners: on the board thread it waits for the end of the running job
        and leaves with its result; from any other thread it is sent at once.
        """
        if threading.get_ident() == self._thread.ident:
            self._outbox.append((loop, fn, args))
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                loop.call_soon_threadsafe(fn, *args)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the board thread; its result here."""
        return await self.submit(fn, *args)

    async def view(self, fn: Callable[..., T], *args: Any) -> T:
        """A viewer's read (dashboard, /metrics) on the board thread: workers' calls go first."""
        return await self.submit(fn, *args, viewer=True)

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the board thread, from a thread without a running loop (start-up)."""
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def deliver(result: Any, exc: BaseException | None) -> None:
            if exc is not None:
                done.set_exception(exc)
            else:
                done.set_result(result)

        self._put((fn, args, deliver))
        return done.result()

    def watch(self, on_foreign: Callable[[], None] | None) -> None:
        """Call `on_foreign()` on the board thread whenever another process committed (None: stop).

        Starting to watch looks once at once: a commit made while nobody watched counts too.
        """
        self._on_foreign = on_foreign
        if on_foreign is not None and not self._closed:
            self._written()

    def _written(self) -> None:
        """(any thread) Some process wrote the board's files: queue one look at data_version."""
        self._last_write = next(self._ticks)
        if self._on_foreign is None or self._check_queued or self._closed:
            return
        self._check_queued = True
        self._jobs.put((self._look_if_unseen, (), _ignore))

    @property
    def queued(self) -> int:
        return self._jobs.calls

    @property
    def views_queued(self) -> int:
        return self._jobs.views

    def close(self) -> None:
        """Finish the queued calls, close the connection on its own thread, stop."""
        if self._closed:
            return
        self._closed = True
        if self._file_watch is not None:
            self._file_watch.stop()
        self._jobs.put(None)
        self._thread.join()

    def _put(self, job: _Job, *, viewer: bool = False) -> None:
        if self._closed or not self._thread.is_alive():
            raise BoardThreadClosed("the board is closed (the stub is shutting down)")
        if viewer:
            self._jobs.put_view(job)
        else:
            self._jobs.put(job)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        self.native_id = threading.get_native_id()
        interval = BACKSTOP_SECONDS if self.event_driven else self.watch_interval
        next_look = 0.0
        try:
            while True:
                timeout = None
                if self._on_foreign is not None:
                    timeout = max(0.0, next_look - time.monotonic())
                got = self._jobs.get(timeout)
                job, viewer = got if got is not None else ((_nothing, (), _ignore), False)
                if job is None:
                    return
                started = time.monotonic()
                self._execute(job)
                if viewer:
                    ended = time.monotonic()
                    self._jobs.view_due = ended + (ended - started) * (1 / VIEWER_SHARE - 1)
                if self._on_foreign is not None:
                    now = time.monotonic()
                    if now >= next_look:
                        next_look = now + interval
                        self._look_for_foreign()
                    elif self.event_driven and job[2] is not _ignore and self._last_write > self._looked_upto:
                        self._look_for_foreign()  # right after our own commit: hot, and covers its event
                self._flush()
        finally:
            for _fn, _args, deliver in self._jobs.drop_views():
                deliver(None, BoardThreadClosed("the board is closed (the stub is shutting down)"))
            self._flush()
            self.board.close()

    def _look_if_unseen(self) -> None:
        """(board thread) The look a write queued, unless a later look already covered it."""
        self._check_queued = False
        if self._last_write > self._looked_upto:
            self._look_for_foreign()

    def _look_for_foreign(self) -> None:
        """(board thread) Did another process commit since the last look? Then tell the watcher."""
        self._looked_upto = self._last_write  # read before data_version: a later write looks again
        on_foreign = self._on_foreign
        if on_foreign is None:
            return
        try:
            current = data_version(self.board.conn)
        except Exception:
            log.exception("data_version_failed")
            return
        if current != self._seen_version:
            self._seen_version = current
            try:
                on_foreign()
            except Exception:
                log.exception("foreign_commit_handler_failed")

    def _flush(self) -> None:
        """Send the outbox to its loop(s): one `call_soon_threadsafe` per loop, items in order."""
        if not self._outbox:
            return
        out, self._outbox = self._outbox, []
        start = 0
        while start < len(out):
            loop = out[start][0]
            end = start
            while end < len(out) and out[end][0] is loop:
                end += 1
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(_run_in_order, out[start:end])
            start = end

    def _execute(self, job: _Job) -> None:
        fn, args, deliver = job
        self.busy_since = time.monotonic()
        try:
            result = fn(*args)
        except BaseException as exc:
            deliver(None, exc)
        else:
            deliver(result, None)
        finally:
            self.busy_since = None
            if deliver is not _ignore:  # a caller's call, not the thread's own look or wake-up
                self.calls += 1


def _main_file(board: Board) -> Path | None:
    """The board's database file, or None in memory."""
    for _seq, name, file in board.conn.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            return Path(file)
    return None


def _run_in_order(items: list[_Post]) -> None:
    for _, fn, args in items:
        try:
            fn(*args)
        except Exception:
            log.exception("board_post_failed")


def _nothing() -> None:
    return None


def _ignore(result: Any, exc: BaseException | None) -> None:
    return None
