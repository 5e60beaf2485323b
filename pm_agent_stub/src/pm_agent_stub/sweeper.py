"""The lease sweep timer: expire each lease when it runs out, even on a board nobody calls.

Every board call expires due leases first (board.py), so a busy board needs no timer; this
one is for the quiet board, so that a killed worker's task is offered again on time. It
sleeps until the earliest live lease expiry and then sweeps. A commit that sets a lease
re-aims it only when that lease could be the earliest (a renewal never is: it expires after
every lease the timer already knows of), so a busy board does not make it re-read the lease
index on every call; a commit by another process re-aims it too (`reaim`), and it looks
again at least every `MAX_SWEEP_SLEEP_SECONDS` whatever happened.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from pm_agent_stub.board import Board, Commit
from pm_agent_stub.board_thread import BoardThread, BoardThreadClosed
from pm_agent_stub.logs import get_logger

log = get_logger("pm_agent_stub.sweeper")

MAX_SWEEP_SLEEP_SECONDS: Final = 30.0


class Sweeper:
    """Expires leases on time while `run()` runs."""

    def __init__(self, board: Board, db: BoardThread) -> None:
        self._board = board
        self._db = db
        self._loop: asyncio.AbstractEventLoop | None = None
        self._moved = asyncio.Event()
        self._aim: float | None = None  # the next wake-up (the earliest lease expiry it knows)
        board.add_listener(self._on_commit)

    def reaim(self) -> None:
        """(event loop) Read the next expiry again now: another process may have set an earlier one."""
        self._moved.set()

    async def run(self) -> None:
        """Sleep until the next expiry and sweep, until cancelled or the board closes."""
        self._loop = asyncio.get_running_loop()
        try:
            while True:
                self._moved.clear()
                try:
                    nxt = await self._db.call(self._board.next_lease_expiry)
                    if nxt is not None and nxt <= time.time():
                        await self._db.call(self._board.sweep)
                        continue
                except BoardThreadClosed:
                    return
                except Exception:
                    log.exception("sweep_failed")
                    nxt = None
                self._aim = nxt
                delay = (
                    MAX_SWEEP_SLEEP_SECONDS
                    if nxt is None
                    else min(MAX_SWEEP_SLEEP_SECONDS, nxt - time.time())
                )
                try:
                    async with asyncio.timeout(max(0.0, delay + 0.005)):
                        await self._moved.wait()
                except TimeoutError:
                    pass
        finally:
            self._loop = None

    def _on_commit(self, commit: Commit) -> None:
        """Commit listener (board thread): a commit that moved a lease, to the loop in commit order."""
        loop = self._loop
        if loop is not None and "lease" in commit.signals:
            self._db.post(loop, self._lease_moved)

    def _lease_moved(self) -> None:
        # Only a lease that could expire before the aim re-aims: one set now expires at most a
        # lease period from now, so with an aim closer than that nothing can be earlier.
        if self._aim is None or self._aim > time.time() + self._board.lifecycle.lease_seconds:
            self._moved.set()
