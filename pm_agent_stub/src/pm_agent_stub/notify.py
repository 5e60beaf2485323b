"""Long-poll wake-ups: wake as many waiters as tasks became offerable, never fewer.

A long-poll (tools.py) looks at the board, and if nothing is offerable to its agent it
sleeps until woken, superseded, disconnected or out of time. Waking every sleeper on every
change would make one new task cost a transaction per sleeper (1,000 agents: 1,000
`BEGIN IMMEDIATE` for one task). Instead the notifier keeps, on the event loop:

- `ready`: offerable tasks per skill signature, kept from each commit's `ready_delta`
  (txn.py); re-read whole (`store.ready_counts`, one walk of the `tasks_ready` index) when
  another process committed, since then what changed is unknown; and set to 0 for every
  signature an agent could take whenever that agent's look found nothing;
- waiters grouped by their agent's skills; in each group the sleepers in the order they
  fell asleep, and `pending`: waiters that are woken or looking again;

and after every change runs one rule: for each signature with `ready` tasks, wake sleepers
whose skills cover it until the pending waiters that could take it are at least `ready`;
the narrowest skill sets first (an agent that can do more stays free for what only it can
take), longest asleep first among equals. One new task wakes one waiter; a burst of 1,000
wakes 1,000.

Why nothing is lost (the ticket-before-check property, kept): a waiter is registered
before its first look and stays pending while looking. Every change reaches the loop in
the board thread's order (board_thread.py): a commit's `ready_delta`, a look's result
(handled in its place in that order, before later commits, by `BoardThread.submit(then=)`),
a recount. So when a look's "nothing" is handled, `ready` holds exactly the commits that
look saw, and any later commit is applied after it, with the waiter now asleep and
eligible. A woken waiter always looks again (even at its deadline); one that leaves
before looking (superseded, disconnected) hands its turn on, since the rule runs again.
A pending waiter is counted for one signature it could take; its look may still take a
task of another one (the best in offer order), and then that look's end runs the rule
again, which wakes a sleeper for the task it left.

Cost: one `PRAGMA data_version` read every 10 ms on the board thread while someone sleeps
(board_thread.py); per change, a few dict operations per signature with ready tasks.
(The lease sweep timer is sweeper.py.)
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from pm_agent_stub.board import Board, Commit
from pm_agent_stub.board.board import Poll
from pm_agent_stub.board.signature import Sig
from pm_agent_stub.board_thread import BoardThread, BoardThreadClosed
from pm_agent_stub.errors import BoardError
from pm_agent_stub.logs import get_logger

log = get_logger("pm_agent_stub.notify")


class State(enum.Enum):
    LOOKING = "looking"  # its look at the board is queued or running
    SLEEPING = "sleeping"  # nothing for it; waits to be woken
    WOKEN = "woken"  # woken; will look again
    DONE = "done"  # its look handed it a task
    GONE = "gone"  # left (answered, superseded, disconnected, timed out)


class Waiter:
    """One long-poll of one agent."""

    __slots__ = ("agent_id", "counted", "group", "handed", "slept_at", "state", "wake", "woken")

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self.state = State.LOOKING
        self.group: _Group | None = None  # known after its first look
        self.counted: _Group | None = None  # the group whose `pending` counts it
        self.wake: asyncio.Future[None] | None = None
        self.woken = False  # this look follows a wake-up
        self.handed: Poll | None = None  # the look that handed it a task
        self.slept_at = 0  # when it last fell asleep (the notifier's sequence number)


class _Group:
    """Waiters whose agents have the same skills."""

    __slots__ = ("pending", "skills", "sleeping")

    def __init__(self, skills: frozenset[str]) -> None:
        self.skills = skills
        self.sleeping: dict[Waiter, None] = {}  # insertion order = longest asleep first
        self.pending = 0  # woken or looking again


@dataclass
class WakeCounters:
    """What the wake-up policy did; served on /healthz with the board's AssignmentCounters."""

    wakeups: int = 0
    """Sleeping waiters woken (each looks at the board once more)."""
    wasted: int = 0
    """Looks after a wake-up that found nothing (someone else took the task first)."""
    timeouts: int = 0
    """Long-polls that ran out of `wait_seconds` without being woken (answered without a look)."""
    recounts: int = 0
    """Ready counts re-read because another process committed to the file."""
    given_back: int = 0
    """Tasks released again because the long-poll they were handed to was gone before the answer."""
    cancelled: int = 0
    """Long-polls ended by their client's `notifications/cancelled` (tools.py, cancels.py)."""


class Notifier:
    """Wakes long-pollers per skill signature."""

    def __init__(
        self, board: Board, db: BoardThread, *, on_foreign: Callable[[], None] | None = None
    ) -> None:
        """`on_foreign()` runs on the event loop after another process's commits were read (the
        sweeper re-aims then)."""
        self._board = board
        self._db = db
        self._on_foreign = on_foreign
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: dict[Sig, int] = {}
        self._groups: dict[frozenset[str], _Group] = {}
        self._matching: dict[Sig, list[_Group]] = {}
        self._polls = 0  # long-polls between enter and leave
        self._sleepers = 0  # of those, the ones asleep now
        self._seq = 0
        self.counters = WakeCounters()
        board.add_listener(self._on_commit)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind to the running loop and read the ready counts; call before serving."""
        self._loop = asyncio.get_running_loop()
        await self._db.call(self._recount)

    def stop(self) -> None:
        self._db.watch(None)
        self._loop = None

    # ------------------------------------------------------------------ what waiters call

    def enter(self, agent_id: str) -> Waiter:
        """A long-poll begins: counted until `leave`. Nothing after its first look is missed
        because that look's result is handled in its place in the board thread's order (the
        module's "why nothing is lost"), so entering needs no lock and no board call."""
        self._polls += 1
        return Waiter(agent_id)

    async def look(self, waiter: Waiter) -> Poll:
        """Look at the board for the waiter's agent (on the board thread), then update the books."""
        if self._loop is None:  # served without `background()` (e.g. a bare in-process server)
            await self.start()
        if waiter.state is State.WOKEN:
            waiter.state = State.LOOKING
        return await self._db.submit(
            self._board.poll_next_task, waiter.agent_id, then=partial(self._looked, waiter)
        )

    async def sleep(
        self,
        waiter: Waiter,
        timeout: float,
        cancel: asyncio.Event | None = None,
        disconnected: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """Sleep until woken (True), or `cancel` (see `interrupt`), a disconnect or `timeout` (False).

        One future per sleep, completed by whichever comes first: no task per condition and
        no `asyncio.wait` (a thousand waiting agents re-ask 40 times a second).
        """
        wake = waiter.wake
        if waiter.state is not State.SLEEPING or wake is None:
            return waiter.state is State.WOKEN
        if cancel is not None and cancel.is_set():
            return False
        assert self._loop is not None
        timer = self._loop.call_later(max(0.0, timeout), _settle, wake)
        gone: asyncio.Future[None] | None = None
        if disconnected is not None:
            gone = asyncio.ensure_future(disconnected())
            gone.add_done_callback(lambda _: _settle(wake))
        try:
            await wake
            left = gone is not None and gone.done()
        finally:
            timer.cancel()
            if gone is not None and not gone.done():
                gone.cancel()
        # Decided by state, not by what ended the wait: a wake-up that landed meanwhile counts.
        if waiter.woken:
            return True
        if not (cancel is not None and cancel.is_set()) and not left:
            self.counters.timeouts += 1
        return False

    def interrupt(self, waiter: Waiter) -> None:
        """End the waiter's sleep without waking it (its call was superseded)."""
        if waiter.wake is not None:
            _settle(waiter.wake)

    def leave(self, waiter: Waiter) -> None:
        """The long-poll ends; if it was woken and did not look, its turn passes to another."""
        state = waiter.state
        if state is State.GONE:
            return
        waiter.state = State.GONE
        self._polls -= 1
        if state is State.SLEEPING and waiter.group is not None:
            self._unsleep(waiter, waiter.group)
        if waiter.counted is not None:
            self._count(waiter, None)
            self._dispatch()

    def give_back(self, waiter: Waiter) -> None:
        """The task a look handed this waiter will never reach its agent: release it at once."""
        poll, waiter.handed = waiter.handed, None
        if poll is None or poll.offer.assignment is None or self._loop is None:
            return
        task_id = poll.offer.assignment.task_id
        self.counters.given_back += 1
        log.info("long_poll_gone_task_released", agent_id=waiter.agent_id, task_id=task_id)
        try:
            fut = self._db.submit(
                self._board.release_task,
                waiter.agent_id,
                task_id,
                "the long-poll this task was handed to ended before the answer could be sent",
            )
        except BoardThreadClosed:
            return
        fut.add_done_callback(_log_give_back_failure)

    @property
    def waiters(self) -> int:
        """Long-polls of this process in progress now, looking or asleep (the
        `pm_agent_long_poll_waiters` gauge; /healthz's `sleeping` counts the asleep ones)."""
        return self._polls

    def snapshot(self) -> dict[str, Any]:
        """Counters and current state, for /healthz."""
        return {
            **asdict(self.counters),
            "waiting": self._polls,
            "sleeping": self._sleepers,
            "pending": sum(g.pending for g in self._groups.values()),
            "ready": {",".join(sig): n for sig, n in self._ready.items()},
        }

    # ------------------------------------------------------------------ the books (event loop)

    def _looked(self, waiter: Waiter, poll: Poll) -> None:
        """A look's result, in its place in the board thread's order."""
        woken, waiter.woken = waiter.woken, False
        if waiter.state is State.GONE:
            if poll.assigned:
                waiter.handed = poll
                self.give_back(waiter)
            return
        if poll.offer.has_task:
            waiter.state = State.DONE
            waiter.handed = poll if poll.assigned else None
            if waiter.counted is not None:
                self._count(waiter, None)
                self._dispatch()
            return
        # Nothing offerable to these skills at this point of the board's history.
        for sig in [s for s in self._ready if poll.skills.issuperset(s)]:
            del self._ready[sig]
        if woken:
            self.counters.wasted += 1
        group = self._group(poll.skills)
        waiter.group = group
        waiter.state = State.SLEEPING
        assert self._loop is not None
        waiter.wake = self._loop.create_future()
        self._seq += 1
        waiter.slept_at = self._seq
        group.sleeping[waiter] = None  # before the pending mark moves, so the group is never empty
        self._sleepers += 1
        if self._sleepers == 1:
            self._db.watch(self._recount)
        self._count(waiter, None)
        self._dispatch()

    def _apply(self, commit: Commit) -> None:
        grew = False
        for sig, change in commit.ready_delta.items():
            self._add_ready(sig, change)
            grew = grew or change > 0
        if grew:
            self._dispatch()

    def _replace_ready(self, counts: dict[Sig, int]) -> None:
        self.counters.recounts += 1
        self._ready = {sig: n for sig, n in counts.items() if n > 0}
        if self._on_foreign is not None:
            self._on_foreign()
        self._dispatch()

    def _add_ready(self, sig: Sig, change: int) -> None:
        n = self._ready.get(sig, 0) + change
        if n > 0:
            self._ready[sig] = n
        else:
            self._ready.pop(sig, None)  # below 0: a task another process added; the recount fixes it

    def _dispatch(self) -> None:
        """Wake sleepers until each signature's ready tasks have as many pending waiters.

        A pending waiter is counted for one signature only (narrowest signatures first, from
        the narrowest groups first), so two tasks of different signatures never share one.
        """
        if not self._sleepers or not self._ready:
            return
        spare = {g: g.pending for g in self._groups.values() if g.pending}
        for sig in sorted(self._ready, key=len, reverse=True):
            need = self._ready[sig]
            groups = self._matching_groups(sig)
            for g in groups:
                if need <= 0:
                    break
                used = min(need, spare.get(g, 0))
                if used:
                    spare[g] -= used
                    need -= used
            while need > 0:
                sleepy = [g for g in groups if g.sleeping]
                if not sleepy:
                    break
                group = min(sleepy, key=lambda g: (len(g.skills), _longest_asleep(g)))
                self._wake(next(iter(group.sleeping)), group)
                need -= 1
            if not self._sleepers:
                return

    def _wake(self, waiter: Waiter, group: _Group) -> None:
        self._count(waiter, group)  # before it leaves `sleeping`, so the group is never empty
        self._unsleep(waiter, group)
        waiter.state = State.WOKEN
        waiter.woken = True
        self.counters.wakeups += 1
        if waiter.wake is not None and not waiter.wake.done():
            waiter.wake.set_result(None)

    def _unsleep(self, waiter: Waiter, group: _Group) -> None:
        if waiter in group.sleeping:
            del group.sleeping[waiter]
            self._sleepers -= 1
            if self._sleepers == 0:
                self._db.watch(None)
        self._drop_if_empty(group)

    def _count(self, waiter: Waiter, group: _Group | None) -> None:
        """Move the waiter's pending mark to `group` (None: not pending)."""
        old, waiter.counted = waiter.counted, group
        if old is not None:
            old.pending -= 1
            self._drop_if_empty(old)
        if group is not None:
            group.pending += 1

    def _group(self, skills: frozenset[str]) -> _Group:
        group = self._groups.get(skills)
        if group is None:
            group = self._groups[skills] = _Group(skills)
            self._matching.clear()
        return group

    def _drop_if_empty(self, group: _Group) -> None:
        if not group.sleeping and group.pending == 0 and self._groups.get(group.skills) is group:
            del self._groups[group.skills]
            self._matching.clear()

    def _matching_groups(self, sig: Sig) -> list[_Group]:
        groups = self._matching.get(sig)
        if groups is None:
            matching = [g for g in self._groups.values() if g.skills.issuperset(sig)]
            groups = self._matching[sig] = sorted(matching, key=lambda g: len(g.skills))
        return groups

    # ------------------------------------------------------------------ the board thread's side

    def _on_commit(self, commit: Commit) -> None:
        """Commit listener (board thread): hand what matters to the loop, in commit order."""
        loop = self._loop
        if loop is None or not commit.ready_delta:
            return
        self._db.post(loop, self._apply, commit)

    def _recount(self) -> None:
        """(board thread) Another process committed, or we start: read the ready counts anew."""
        loop = self._loop
        if loop is None:
            return
        self._db.post(loop, self._replace_ready, self._board.ready_counts())


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _longest_asleep(group: _Group) -> int:
    """When the group's longest sleeper fell asleep (smaller: longer ago)."""
    return next(iter(group.sleeping)).slept_at


def _log_give_back_failure(fut: asyncio.Future[Any]) -> None:
    if fut.cancelled():
        return
    exc = fut.exception()
    if exc is not None and not isinstance(exc, BoardError):
        log.error("give_back_failed", error=f"{type(exc).__name__}: {exc}")
