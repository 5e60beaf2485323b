"""One `BEGIN IMMEDIATE` transaction per board call, its events, and the commit-listener seam.

Every board call runs inside `Transactions.begin()` and records on its `Txn` what it did:

- events: rows of the `events` table (assigned, renewed, completed, expired, released,
  fenced, blocked, resolved, registered, deregistered, loaded, rerun), written at once so
  that later reads in the same transaction see them;
- ready: how the number of offerable tasks (todo, no pending dependency) moved, per skill
  signature (signature.py): +1 for each task that became offerable (loaded ready, freed by
  its last dependency's completion, lease expired, released, blocker resolved, rerun), -1
  for each one assigned or made to wait again (its dependency was rerun). Every change of
  a task into or out of the offerable set calls `Txn.ready`; a change that did not would
  leave long-pollers asleep next to work (the notifier's counts are only corrected by the
  next look at the board);
- signals: `lease` (the set of lease expiries moved: the sweep timer should re-aim);
- audit events that must outlive a refusal (`fenced`): a call that raises `BoardError` is
  rolled back whole, then its audit events are written in a fresh transaction (after the
  sweep that the rollback undid).

After each commit every listener gets one `Commit(signals, events, ready_delta)`: the
signals, every event row written in that transaction (the audit transaction after a
rollback included), and the net change of offerable tasks per signature (zeros left out).
It costs no SQL: all of it is what the transaction already knew, kept in memory, and a
transaction that changed nothing a listener cares about tells nobody.

Subscribers: the notifier (wakes as many long-pollers as tasks became offerable, per
signature), the sweep timer (re-aimed on `lease`, sweeper.py) and the dashboard/metrics
(`pm_agent_ready_tasks` is the running sum of `ready_delta`). A listener runs on the
board's thread (the stub's one database thread, board_thread.py) right after the commit,
so it must be quick, must not call the board, and must hand anything for the event loop
over with `BoardThread.post` (in order with the thread's other results); one that raises is logged and the others still run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from pm_agent_stub.board import signature
from pm_agent_stub.board.signature import Sig
from pm_agent_stub.board.store import Store
from pm_agent_stub.errors import BoardError
from pm_agent_stub.logs import get_logger

log = get_logger("pm_agent_stub.board")

Signal = Literal["lease"]


@dataclass(frozen=True, slots=True)
class BoardEvent:
    """One row of the `events` table, as written (`at` in epoch seconds)."""

    kind: str
    task_id: str | None
    agent_id: str | None
    attempt: int | None
    at: float
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Commit:
    """What one committed transaction changed, for listeners."""

    signals: frozenset[Signal]
    events: tuple[BoardEvent, ...]
    ready_delta: Mapping[Sig, int] = field(default_factory=dict)
    """Net change of offerable tasks per skill signature in this transaction (no zeros)."""


Listener = Callable[[Commit], None]


class Txn:
    """The running transaction: its clock reading and what it did so far."""

    def __init__(self, store: Store, now: float) -> None:
        self.now = now
        self.signals: set[Signal] = set()
        self.events: list[BoardEvent] = []
        self.audit: list[BoardEvent] = []
        self.logs: list[tuple[str, dict[str, Any]]] = []
        self.ready_by_column: dict[str, int] = {}  # skill_sig column text -> net change
        self._store = store

    def ready(self, skill_sig: str, change: int) -> None:
        """Offerable tasks of this signature (the `skill_sig` column) moved by `change`."""
        if change:
            self.ready_by_column[skill_sig] = self.ready_by_column.get(skill_sig, 0) + change

    def ready_delta(self) -> dict[Sig, int]:
        return {signature.from_column(k): v for k, v in self.ready_by_column.items() if v}

    def event(
        self,
        kind: str,
        task_id: str | None,
        agent_id: str | None,
        attempt: int | None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Write an event row now (later reads in this transaction see it)."""
        event = BoardEvent(kind, task_id, agent_id, attempt, self.now, dict(detail or {}))
        self._store.insert_event(kind, task_id, agent_id, attempt, self.now, event.detail)
        self.events.append(event)

    def audit_refusal(
        self,
        kind: str,
        task_id: str | None,
        agent_id: str | None,
        attempt: int | None,
        detail: Mapping[str, Any],
    ) -> None:
        """An event to keep even though the call is about to be refused (and rolled back)."""
        self.audit.append(BoardEvent(kind, task_id, agent_id, attempt, self.now, dict(detail)))

    def log(self, event: str, **fields: Any) -> None:
        """A log line that is not an event row, emitted after the commit."""
        self.logs.append((event, fields))


class Transactions:
    """Begins and commits the board's transactions and tells the listeners."""

    def __init__(
        self, store: Store, clock: Callable[[], float] = time.time, *, before_audit: Callable[[Txn], object]
    ) -> None:
        self._store = store
        self._clock = clock
        self._before_audit = before_audit
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @contextmanager
    def begin(self) -> Iterator[Txn]:
        txn = Txn(self._store, self._clock())
        try:
            with self._store.transaction():
                yield txn
        except BoardError:
            if txn.audit:
                self._write_audit(txn)
            raise
        self._committed(txn)

    def _write_audit(self, refused: Txn) -> None:
        """Record a refused call's audit events (and any due sweep) in a fresh transaction."""
        txn = Txn(self._store, refused.now)
        with self._store.transaction():
            self._before_audit(txn)
            for e in refused.audit:
                txn.event(e.kind, e.task_id, e.agent_id, e.attempt, e.detail)
        self._committed(txn)

    def _committed(self, txn: Txn) -> None:
        for e in txn.events:
            log.info(e.kind, task_id=e.task_id, agent_id=e.agent_id, attempt=e.attempt, **e.detail)
        for event, fields in txn.logs:
            log.info(event, **fields)
        delta = txn.ready_delta()
        if not (txn.signals or txn.events or delta):
            return
        commit = Commit(frozenset(txn.signals), tuple(txn.events), delta)
        for listener in self._listeners:
            try:
                listener(commit)
            except Exception:
                log.exception(
                    "commit_listener_failed", listener=getattr(listener, "__qualname__", repr(listener))
                )
