"""The worker base class and its work loop.

A specialist subclasses `Worker`, names its role and skills, and implements `execute`.
Everything else — registration, long-polling, lease heartbeats, reporting the outcome,
reconnecting, graceful shutdown, health records — happens here, once, for every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

import structlog
from pydantic import BaseModel

from pm_worker import health, permissions
from pm_worker.client import Identity, PMClient
from pm_worker.connection import Connection, ToolConnection
from pm_worker.context import TaskContext
from pm_worker.errors import (
    AgentNotRegistered,
    InvalidArgument,
    NotTaskHolder,
    PMError,
    SettingsError,
    TaskAlreadyComplete,
    TaskBlocked,
    TaskReleased,
    TransportError,
    Unauthorized,
)
from pm_worker.models import Assignment
from pm_worker.outgoing import fit_text
from pm_worker.payload import parse_payload, unreadable_payload
from pm_worker.settings import WorkerSettings, load_settings

log = structlog.get_logger("pm_worker.worker")

REFUSAL_CHARS = 1000  # of the refusal and of the refused report, in the blocker that replaces it
REFUSED_PAUSE_SECONDS = 30.0


class OutcomeKind(StrEnum):
    """How one execution ended; each kind is reported its own way (and counted under its name)."""

    COMPLETED = "completed"  # execute returned: report completed
    BLOCKED = "blocked"  # TaskBlocked: report a blocker
    FAILED = "failed"  # any other exception: report a blocker naming it
    RELEASED = "released"  # TaskReleased, or shutdown past the grace: give the task back
    FENCED = "fenced"  # the lease was lost: report nothing, someone else holds the task


@dataclass
class Outcome:
    kind: OutcomeKind
    message: str = ""
    severity: str = "medium"
    count_attempt: bool = False  # RELEASED: the board counts it as a failed attempt


class Worker:
    """Subclass, set `role`, `name`, `skills`, implement `execute`; then `pm_worker.run(MyWorker)`."""

    role: ClassVar[str] = "worker"
    name: ClassVar[str] = "PM Agent Worker"
    skills: ClassVar[tuple[str, ...]] = ()
    payload_required: ClassVar[bool] = True
    """Where tasks carry their payload in another field (Marcus: a `pm-payload` block), a task
    without one ends in a blocker saying how to add it. False for a worker that needs no
    inputs beyond the task's description."""
    payload_model: ClassVar[type[BaseModel] | None] = None
    """A pydantic model with `extra="forbid"`: each task's payload is checked against it
    before `execute` and handed over as `ctx.payload`; a bad payload ends in a blocker that
    names the key and the accepted ones, and `execute` never runs."""

    def __init__(self, settings: WorkerSettings | None = None) -> None:
        self.settings = settings or load_settings()
        role = self.settings.agent_role or self.role
        self.identity = Identity(
            agent_id=self.settings.resolve_agent_id(role),
            name=self.settings.agent_name or self.name,
            role=role,
            skills=tuple(self.settings.agent_skills or self.skills),
        )
        self.counters: Counter[str] = Counter()
        self.current_task: str | None = None
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._client: PMClient | None = None
        self.connect: Callable[[WorkerSettings], ToolConnection] = Connection
        """How `make_client` reaches the PM server; `pm_worker.testing` points it at an in-process stub."""

    # -- what a specialist writes ---------------------------------------------------

    async def execute(self, task: Assignment, ctx: TaskContext) -> str | None:
        """Do the task; return the completion message. Raise `TaskBlocked` when it cannot go on."""
        raise NotImplementedError

    def should_accept_task(self, task: Assignment) -> bool:
        """Default: take the task only if we have every required skill (the stub checks too)."""
        ours = {s.lower() for s in self.identity.skills}
        return all(skill.lower() in ours for skill in task.required_skills)

    # -- lifecycle -----------------------------------------------------------------

    @property
    def agent_id(self) -> str:
        return self.identity.agent_id

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        """First call: stop taking tasks, let the current one finish within the grace. Second: hurry."""
        if self._stop.is_set():
            log.warning("second stop signal: releasing the current task now")
            self._force.set()
        else:
            log.info(
                "stop requested",
                grace_seconds=self.settings.shutdown_grace_seconds,
                current_task=self.current_task,
            )
            self._stop.set()

    def make_client(self) -> PMClient:
        return PMClient(self.settings, self.identity, connect=self.connect)

    async def run(self) -> int:
        """Run until stopped (exit 0), `MAX_TASKS` is reached (0), or the stub stays unreachable (1)."""
        structlog.contextvars.bind_contextvars(agent_id=self.agent_id)
        beat = asyncio.create_task(self._health_loop(), name="health")
        code = 0
        try:
            async with self.make_client() as client:
                self._client = client
                reg = await self._until_stopped(client.register())
                if reg is not None:
                    log.info(
                        "registered",
                        dialect=client.dialect.name,
                        name=self.identity.name,
                        role=self.identity.role,
                        skills=list(self.identity.skills),
                        workspace=str(self.settings.workspace),
                    )
                    await self._loop(client)
                    if self.stopping:
                        # Covers a restarted worker (same id) stopped before it asked for the
                        # task it still holds, and a task assigned while its long-poll was cancelled.
                        await self._release_orphan(client)
                    await self._deregister(client)
        except SettingsError as exc:
            # e.g. PM_PROJECT_ID missing for a Marcus server: known only once connected
            log.error(str(exc))
            code = 2
        except Unauthorized as exc:
            log.error("stub refused this worker", error=str(exc))
            code = 1
        except TransportError as exc:
            log.error(
                "gave up reaching the stub",
                error=str(exc),
                give_up_seconds=self.settings.reconnect_give_up_seconds,
            )
            code = 1
        except PMError as exc:
            log.error("the stub refused this worker", error=str(exc))
            code = 1
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            health.remove_record(self.settings.health_dir, self.agent_id)
            log.info(
                "worker stopped",
                exit_code=code,
                **{f"tasks_{k}": v for k, v in sorted(self.counters.items())},
            )
            structlog.contextvars.unbind_contextvars("agent_id")
        return code

    async def _health_loop(self) -> None:
        while True:
            state = "working" if self.current_task else ("stopping" if self.stopping else "idle")
            with contextlib.suppress(OSError):
                health.write_record(
                    self.settings.health_dir, self.agent_id, state, current_task=self.current_task
                )
            await asyncio.sleep(health.REFRESH_SECONDS)

    async def _until_stopped(self, coro: Any) -> Any:
        """Await `coro` unless a stop is requested first (then cancel it and return None)."""
        work = asyncio.ensure_future(coro)
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if work.done():
            return work.result()
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
        return None

    async def _loop(self, client: PMClient) -> None:
        max_tasks = self.settings.max_tasks
        failures = 0
        while not self.stopping:
            if max_tasks and self.counters["handled"] >= max_tasks:
                log.info("max tasks reached", max_tasks=max_tasks)
                return
            try:
                offer = await self._until_stopped(client.request_next_task(self.settings.poll_wait_seconds))
            except (AgentNotRegistered, Unauthorized):
                raise
            except PMError as exc:
                # The stub answered but failed (e.g. internal_error): keep the worker, back off, ask again.
                failures += 1
                wait = min(30.0, 0.5 * 2 ** min(failures, 6))
                log.error("request_next_task failed; asking again", error=str(exc), wait_seconds=wait)
                await self._until_stopped(asyncio.sleep(wait))
                continue
            failures = 0
            if offer is None:  # stopped during the long-poll; run() releases anything assigned meanwhile
                return
            if not offer.has_task or offer.assignment is None:
                if self.settings.poll_wait_seconds <= 0:
                    await self._until_stopped(asyncio.sleep(min(offer.retry_after_seconds or 1.0, 30.0)))
                continue
            await self._handle(client, offer.assignment)

    async def _release_orphan(self, client: PMClient) -> None:
        """Give back a task the stub says we hold but we are not working on. Bounded: shutdown must end."""
        with contextlib.suppress(PMError, TransportError, TimeoutError):
            async with asyncio.timeout(5):
                beat = await client.heartbeat()
                if beat.current_task:
                    await client.release_task(beat.current_task, "worker stopped before starting it")
                    log.info("released a held task on shutdown", task_id=beat.current_task)

    async def _deregister(self, client: PMClient) -> None:
        """Tell the stub we are gone, so the agent shows offline now, not after its offline timeout."""
        try:
            async with asyncio.timeout(5):
                await client.deregister()
            log.info("deregistered")
        except (PMError, TransportError, TimeoutError) as exc:
            log.warning(
                "could not deregister; the stub will show this agent offline after its timeout",
                error=str(exc),
            )

    async def _handle(self, client: PMClient, task: Assignment) -> None:
        structlog.contextvars.bind_contextvars(task_id=task.task_id)
        self.current_task = task.task_id
        try:
            if not self.should_accept_task(task):
                await self._decline(client, task)
                return
            log.info(
                "task received",
                task_name=task.task_name,
                attempt=task.attempt,
                resumed_from_checkpoint=task.checkpoint is not None,
            )
            ctx = TaskContext(client, task, self.settings.workspace)
            outcome = await self._execute_with_lease(client, task, ctx)
            await self._report(client, task, ctx, outcome)
            self.counters["handled"] += 1
        finally:
            self.current_task = None
            structlog.contextvars.unbind_contextvars("task_id")

    async def _decline(self, client: PMClient, task: Assignment) -> None:
        log.info("declining task", required_skills=task.required_skills, skills=list(self.identity.skills))
        with contextlib.suppress(NotTaskHolder):
            await client.release_task(task.task_id, f"declined by {self.agent_id}: skills do not match")
        self.counters["declined"] += 1
        # The stub would offer it again at once; give other workers a moment to take it.
        await self._until_stopped(asyncio.sleep(2.0))

    async def _execute_with_lease(self, client: PMClient, task: Assignment, ctx: TaskContext) -> Outcome:
        fenced = asyncio.Event()
        work = asyncio.create_task(self._guarded(task, ctx), name=f"execute:{task.task_id}")
        beat = asyncio.create_task(self._heartbeat(client, task, work, fenced), name="lease-heartbeat")
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                ctx.stopping = True
                log.info(
                    "stopping: letting the current task finish",
                    grace_seconds=self.settings.shutdown_grace_seconds,
                )
                force = asyncio.ensure_future(self._force.wait())
                try:
                    await asyncio.wait(
                        {work, force},
                        timeout=self.settings.shutdown_grace_seconds,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    force.cancel()
                if not work.done():
                    work.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await work
                    return Outcome(
                        OutcomeKind.RELEASED,
                        "worker shut down before the task finished; resume from checkpoint",
                    )
            if work.cancelled():
                # Our heartbeat cancelled it (lease lost), or `execute` raised CancelledError itself,
                # which older workers did to mean "give the task back" (now `TaskReleased`).
                return Outcome(
                    OutcomeKind.FENCED if fenced.is_set() else OutcomeKind.RELEASED, "task cancelled"
                )
            return work.result()
        finally:
            stop.cancel()
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            if not work.done():
                work.cancel()

    async def _guarded(self, task: Assignment, ctx: TaskContext) -> Outcome:
        try:
            problem = unreadable_payload(task, required=self.payload_required)
            if problem is not None:
                raise TaskBlocked(problem, "medium")
            if self.payload_model is not None:
                ctx.payload = parse_payload(
                    self.payload_model, task.payload, task_id=task.task_id, role=self.identity.role
                )
            message = await self.execute(task, ctx)
        except TaskBlocked as exc:
            return Outcome(OutcomeKind.BLOCKED, exc.description, exc.severity)
        except TaskReleased as exc:
            return Outcome(OutcomeKind.RELEASED, exc.reason, count_attempt=exc.count_attempt)
        except (NotTaskHolder, TaskAlreadyComplete) as exc:
            return Outcome(OutcomeKind.FENCED, str(exc))
        except TransportError:
            raise
        except PermissionError as exc:
            # A person's problem (who owns the folder), not a bug: no traceback, the fix in the blocker.
            text = permissions.describe(
                exc,
                role=self.identity.role,
                in_container=permissions.in_fleet_container(self.settings.workspace),
            )
            return Outcome(OutcomeKind.BLOCKED, text, "high")
        except Exception as exc:
            log.exception("task failed")
            return Outcome(OutcomeKind.FAILED, f"{type(exc).__name__}: {exc}", "high")
        return Outcome(OutcomeKind.COMPLETED, message or f"{task.task_name}: done")

    async def _heartbeat(
        self, client: PMClient, task: Assignment, work: asyncio.Task[Outcome], fenced: asyncio.Event
    ) -> None:
        """Keep the lease alive while `execute` runs; stop the work if the lease was lost."""
        while not work.done():
            await asyncio.sleep(self.settings.heartbeat_seconds)
            try:
                beat = await client.heartbeat()
            except (PMError, TransportError) as exc:
                log.warning("heartbeat failed", error=str(exc))
                continue
            if beat.current_task != task.task_id:
                log.warning(
                    "lease lost: the stub gave this task to someone else; stopping it",
                    holder_task=beat.current_task,
                )
                fenced.set()
                work.cancel()
                return

    async def _report(self, client: PMClient, task: Assignment, ctx: TaskContext, outcome: Outcome) -> None:
        self.counters[outcome.kind] += 1
        if outcome.kind is OutcomeKind.FENCED:
            log.warning("task fenced: our lease was lost, result discarded", reason=outcome.message)
            return
        try:
            await self._send_outcome(client, task, ctx, outcome)
        except (NotTaskHolder, TaskAlreadyComplete) as exc:
            self.counters["fenced_reports"] += 1
            log.warning("report refused: this worker no longer holds the task", error=str(exc))
        except PMError as exc:
            await self._block_refused(client, task, outcome, exc)

    async def _send_outcome(
        self, client: PMClient, task: Assignment, ctx: TaskContext, outcome: Outcome
    ) -> None:
        """Report `outcome`; a server failure other than a refusal (e.g. internal_error) is retried once."""
        for attempt in (1, 2):
            try:
                if outcome.kind is OutcomeKind.COMPLETED:
                    ack = await client.report_progress(task.task_id, 100, outcome.message, status="completed")
                    log.info("task completed", message=outcome.message, ack=ack.status)
                elif outcome.kind is OutcomeKind.RELEASED:
                    await client.release_task(
                        task.task_id, outcome.message, count_attempt=outcome.count_attempt
                    )
                    log.info(
                        "task released",
                        reason=outcome.message,
                        checkpoint=ctx.last_checkpoint is not None,
                        count_attempt=outcome.count_attempt,
                    )
                else:
                    res = await client.report_blocker(task.task_id, outcome.message, outcome.severity)
                    log.warning(
                        "task blocked",
                        description=outcome.message,
                        severity=outcome.severity,
                        suggestion=res.resolution_suggestion,
                    )
                return
            except (InvalidArgument, NotTaskHolder, TaskAlreadyComplete):
                raise
            except PMError as exc:
                if attempt == 2:
                    raise
                log.warning(
                    "the stub failed to record the outcome; trying once more",
                    outcome=outcome.kind,
                    error=str(exc),
                )

    async def _block_refused(
        self, client: PMClient, task: Assignment, outcome: Outcome, refusal: PMError
    ) -> None:
        """An outcome the stub will not take becomes a short blocker that says so.

        Never left as it is: the worker would keep the lease, be handed the same task by its
        next request and run it again, forever.
        """
        self.counters["report_refused"] += 1
        text = (
            f"The stub refused this task's {outcome.kind} report, so the worker blocked the task instead of "
            f"running it again. The refusal: {fit_text(str(refusal), REFUSAL_CHARS)} "
            f"The report was: {fit_text(outcome.message, REFUSAL_CHARS)}"
        )
        log.error(
            "the stub refused the task's outcome; blocking the task instead",
            outcome=outcome.kind,
            error=str(refusal),
        )
        try:
            await client.report_blocker(task.task_id, text, "high")
        except (NotTaskHolder, TaskAlreadyComplete) as exc:
            self.counters["fenced_reports"] += 1
            log.warning("report refused: this worker no longer holds the task", error=str(exc))
        except PMError as exc:
            # Nothing left to tell the stub: pause so the held task is not re-run at full speed.
            log.error(
                "the stub refused the blocker too; pausing before asking for work again",
                error=str(exc),
                pause_seconds=REFUSED_PAUSE_SECONDS,
            )
            await self._until_stopped(asyncio.sleep(REFUSED_PAUSE_SECONDS))
