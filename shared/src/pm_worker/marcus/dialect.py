"""The Marcus dialect behind `PMClient`: the worker loop runs unchanged against Marcus 0.3.8.

What Marcus lacks is answered here, never with a branch in the loop (docs/marcus.md):

- no long-poll: "no task" sets when to ask next (the hint plus jitter); until then
  `request_next_task` waits within the loop's `wait_seconds` and answers "no task"
  without calling Marcus, so an idle worker asks about once per 30-36 s.
- no heartbeat: `heartbeat` names the task this dialect holds (so the loop keeps working)
  and renews the lease with a progress report only after 90 s without one.
- no checkpoints: kept per task in `LocalState`; handed back as `task.checkpoint`.
- no `release_task`: the task keeps its lease and its files; a restarted worker with the
  same id resumes it. A worker that goes on working after giving a task back (a decline)
  blocks it on its next request, since Marcus would otherwise keep it on this agent.
- "You already have a task" is the task in the held-task file, resumed; one the file does
  not know cannot be worked without its inputs and is blocked with the reason.
- `stale_completion` is `LeaseLost` (a `NotTaskHolder`): logged, never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from pydantic import JsonValue

from pm_worker import models
from pm_worker.dialect import UNSET, Checkpoint, Send
from pm_worker.errors import NotTaskHolder, PMError, TaskAlreadyComplete
from pm_worker.marcus import answers, pacing
from pm_worker.marcus.answers import HeldTask, LeaseLost
from pm_worker.marcus.payload import missing_payload_message
from pm_worker.marcus.state import LocalState
from pm_worker.protocol_settings import MissingProjectId
from pm_worker.settings import WorkerSettings

log = structlog.get_logger("pm_worker.marcus")


def _unsupported(tool: str) -> PMError:
    return PMError(
        f"Marcus has no {tool} for agents; read its board instead (docs/marcus.md)",
        tool=tool,
        code="unsupported",
    )


class MarcusDialect:
    """One agent's conversation with Marcus; one instance per `PMClient` (it keeps the held task)."""

    name = "marcus"

    def __init__(
        self,
        *,
        project_id: str | None,
        url: str,
        workspace: Path,
        state_dir: Path,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.project_id = project_id
        self.url = url
        self.workspace = workspace.resolve()
        self.state_dir = state_dir
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep
        self._state: LocalState | None = None
        self._register_args: dict[str, Any] | None = None
        self._role = "worker"
        self._resume: models.Assignment | None = None
        self._held: models.Assignment | None = None
        self._progress = 0.0
        self._message = ""
        self._last_report = 0.0
        self._released: dict[str, str] = {}
        self._next_ask = 0.0

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> MarcusDialect:
        return cls(
            project_id=settings.pm_project_id,
            url=settings.pm_agent_url,
            workspace=settings.workspace,
            state_dir=settings.state_dir(settings.workspace),
        )

    @property
    def state(self) -> LocalState:
        if self._state is None:
            raise RuntimeError("register first")
        return self._state

    @property
    def held_task(self) -> str | None:
        return self._held.task_id if self._held is not None else None

    def error(self, tool: str, answer: dict[str, Any]) -> PMError:
        return answers.refusal(tool, answers.unwrap(answer))

    async def _ask(self, send: Send, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """One call; if Marcus forgot this agent (it keeps agents in memory), register and ask again."""
        answer = answers.unwrap(await send(tool, arguments))
        error = str(answer.get("error") or "")
        if (
            answer.get("success") is not True
            and error.startswith("Agent has no project_id")
            and self._register_args
        ):
            log.warning("Marcus does not know this agent; registering again", tool=tool)
            await send("register_agent", self._register_args)
            answer = answers.unwrap(await send(tool, arguments))
        return answer

    # -- registration and pickup ----------------------------------------------------------

    async def register(
        self, send: Send, agent_id: str, name: str, role: str, skills: list[str]
    ) -> models.RegisterResult:
        if not self.project_id:
            raise MissingProjectId(self.url)
        self._role = role
        self._register_args = {
            "agent_id": agent_id,
            "name": name,
            "role": role,
            "skills": skills,
            "project_id": self.project_id,
        }
        result = answers.register_result(
            await send("register_agent", self._register_args),
            agent_id=agent_id,
            name=name,
            role=role,
            skills=skills,
        )
        if self._state is None:
            self._state = LocalState(self.state_dir, agent_id)
            record = self._state.held()
            if record is not None:
                # A restarted container with the same AGENT_ID: take up where it stopped.
                cp = self._state.checkpoint(record.assignment.task_id)
                self._resume = record.assignment.model_copy(
                    update={"checkpoint": cp.data if cp is not None else record.assignment.checkpoint}
                )
                self._progress = cp.progress if cp is not None else record.progress
                log.info(
                    "resuming the task this agent held before its restart",
                    task_id=record.assignment.task_id,
                    seconds_since_last_report=round(record.seconds_since_report(), 1),
                    surely_still_held=pacing.surely_still_held(record.seconds_since_report()),
                )
        return result

    async def request_next_task(self, send: Send, agent_id: str, wait_seconds: float) -> models.TaskOffer:
        if self._resume is not None:
            task, self._resume = self._resume, None
            return await self._take(send, agent_id, task, resumed=True)
        if self._held is not None and self._held.task_id in self._released:
            await self._give_back(send, agent_id, self._held)
        now = self._clock()
        if now < self._next_ask:
            await self._sleep(min(self._next_ask - now, max(wait_seconds, 0.0)))
            if self._clock() < self._next_ask:
                return models.TaskOffer(
                    success=True,
                    has_task=False,
                    message="Marcus: waiting for its retry hint",
                    retry_after_seconds=round(self._next_ask - self._clock(), 3),
                )
        answer = await self._ask(send, "request_next_task", {"agent_id": agent_id})
        offer = answers.task_offer(answer, workspace=self.workspace)
        if isinstance(offer, HeldTask):
            return await self._already_held(send, agent_id, offer)
        if offer.has_task and offer.assignment is not None:
            return await self._take(
                send, agent_id, await self._prepare(send, offer.assignment), resumed=False
            )
        self._next_ask = self._clock() + pacing.retry_delay(offer.retry_after_seconds, self._rng)
        wait = min(self._next_ask - self._clock(), max(wait_seconds, 0.0))
        if wait > 0:
            await self._sleep(wait)
        return models.TaskOffer(
            success=True,
            has_task=False,
            message=offer.message,
            retry_after_seconds=round(max(0.0, self._next_ask - self._clock()), 3),
        )

    async def _prepare(self, send: Send, task: models.Assignment) -> models.Assignment:
        """Add what Marcus does not send: the payload's problem, the last checkpoint, all dependency artifacts."""
        extra = task.model_extra or {}
        update: dict[str, Any] = {}
        if extra.get("payload_missing"):
            update["payload_error"] = missing_payload_message(task.task_id, self._role)
        elif extra.get("payload_error"):
            update["payload_error"] = (
                f"Marcus task {task.task_id}: {extra['payload_error']}. Fix the "
                f"pm-payload block in its description (docs/workers.md#{self._role}) "
                "and move the task back to todo."
            )
        cp = self.state.checkpoint(task.task_id)
        if cp is not None:
            update["checkpoint"] = cp.data
        try:
            found = answers.context_artifacts(
                await send("get_task_context", {"task_id": task.task_id}), self.workspace
            )
        except PMError as exc:
            log.warning("could not read the task's dependency artifacts from Marcus", error=str(exc))
            found = []
        seen = {(a.task_id, a.artifact_type, a.location) for a in task.dependency_artifacts}
        merged = list(task.dependency_artifacts) + [
            a for a in found if (a.task_id, a.artifact_type, a.location) not in seen
        ]
        data = {**task.model_dump(), **update, "dependency_artifacts": [a.model_dump() for a in merged]}
        return models.Assignment.model_validate(data)

    async def _take(
        self, send: Send, agent_id: str, task: models.Assignment, *, resumed: bool
    ) -> models.TaskOffer:
        self._held = task
        self._released.pop(task.task_id, None)
        self._message = "resumed after a restart" if resumed else "assigned"
        self._last_report = self._clock()
        try:
            self.state.hold(task, progress=self._progress if resumed else 0.0)
        except OSError as exc:
            log.error(
                "cannot write the held-task file; a restart will not resume this task",
                state_dir=str(self.state_dir),
                error=str(exc),
            )
        if resumed:
            # Renews the lease, or re-creates it if Marcus recovered the task and nobody took it yet.
            await self.report_progress(
                send,
                agent_id,
                task.task_id,
                self._progress,
                f"resumed by {agent_id} after a restart",
                "in_progress",
                UNSET,
            )
        else:
            self._progress = 0.0
        return models.TaskOffer(success=True, has_task=True, assignment=task)

    async def _already_held(self, send: Send, agent_id: str, held: HeldTask) -> models.TaskOffer:
        record = self.state.held()
        if (
            record is not None
            and record.assignment.task_id == held.task_id
            and held.task_id not in self._released
        ):
            log.info("Marcus says this agent already holds a task; resuming it", task_id=held.task_id)
            cp = self.state.checkpoint(held.task_id)
            self._progress = cp.progress if cp is not None else record.progress
            task = record.assignment.model_copy(update={"checkpoint": cp.data if cp is not None else None})
            return await self._take(send, agent_id, task, resumed=True)
        reason = self._released.get(held.task_id)
        text = (
            f"{agent_id} gave this task back ({reason}), and Marcus has no way to take a task back: blocked so "
            "that it is not lost. Move it back to todo to offer it again (docs/marcus.md#routing)."
            if reason
            else f"Marcus says {agent_id} holds task {held.task_id} ({held.name!r}), but this worker has no record "
            "of its assignment (the answer carrying it was lost, or PM_STATE_DIR is not the one the previous "
            "run used), so its inputs cannot be recovered. Move it back to todo to offer it again."
        )
        await self._block(send, agent_id, held.task_id, text)
        return models.TaskOffer(
            success=True,
            has_task=False,
            message="Marcus: blocked a task this worker could not resume",
            retry_after_seconds=0.0,
        )

    async def _give_back(self, send: Send, agent_id: str, task: models.Assignment) -> None:
        reason = self._released.get(task.task_id, "given back")
        await self._block(
            send,
            agent_id,
            task.task_id,
            f"{agent_id} gave this task back ({reason}), and Marcus has no way to take a task back: "
            "blocked so that it is not lost. Move it back to todo to offer it again "
            "(docs/marcus.md#routing).",
        )

    async def _block(self, send: Send, agent_id: str, task_id: str, text: str) -> None:
        try:
            result = await self.report_blocker(send, agent_id, task_id, text, "medium")
            log.warning(
                "blocked a task this worker cannot do",
                task_id=task_id,
                description=text,
                suggestion=result.resolution_suggestion,
            )
        except (NotTaskHolder, TaskAlreadyComplete) as exc:
            log.warning(
                "could not block the task: Marcus says this agent no longer holds it",
                task_id=task_id,
                error=str(exc),
            )
            self._forget(task_id)

    def _forget(self, task_id: str) -> None:
        if self._held is not None and self._held.task_id == task_id:
            self._held = None
        self._released.pop(task_id, None)
        if self._state is not None:
            self._state.let_go(task_id)

    # -- reports ---------------------------------------------------------------------------

    async def report_progress(
        self,
        send: Send,
        agent_id: str,
        task_id: str,
        progress: float,
        message: str,
        status: str,
        checkpoint: Checkpoint,
    ) -> models.ProgressAck:
        if checkpoint is not UNSET:
            self.state.save_checkpoint(task_id, checkpoint, progress)
        arguments = {
            "agent_id": agent_id,
            "task_id": task_id,
            "status": status,
            "progress": round(max(0.0, min(100.0, progress))),
            "message": message,
        }
        answer = await self._ask(send, "report_task_progress", arguments)
        try:
            ack = answers.progress_ack(answer, status)
        except LeaseLost as exc:
            log.warning(
                "lease lost: Marcus recovered this task and another agent owns it; not retrying",
                task_id=task_id,
                status=status,
                marcus=exc.message,
            )
            self._forget(task_id)
            raise
        except (NotTaskHolder, TaskAlreadyComplete):
            self._forget(task_id)
            raise
        if status == "completed":
            self._forget(task_id)
            self.state.drop_checkpoint(task_id)
        elif self._held is not None and self._held.task_id == task_id:
            self._progress, self._message, self._last_report = float(progress), message, self._clock()
            self.state.reported(task_id, float(progress))
        return ack

    async def report_blocker(
        self, send: Send, agent_id: str, task_id: str, description: str, severity: str
    ) -> models.BlockerResult:
        answer = await self._ask(
            send,
            "report_blocker",
            {
                "agent_id": agent_id,
                "task_id": task_id,
                "blocker_description": description,
                "severity": severity,
            },
        )
        try:
            result = answers.blocker_result(answer)
        except (NotTaskHolder, TaskAlreadyComplete):
            self._forget(task_id)
            raise
        self._forget(task_id)  # Marcus frees the agent; the checkpoint stays for whoever resumes it
        return result

    async def heartbeat(self, send: Send, agent_id: str) -> models.HeartbeatResult:
        """The task in hand; its lease renewed by a progress report once 90 s passed without one."""
        held = self._held
        if (
            held is not None
            and held.task_id not in self._released
            and pacing.keepalive_due(self._clock() - self._last_report)
        ):
            note = f"still working: {self._message}" if self._message else "still working"
            await self.report_progress(
                send, agent_id, held.task_id, self._progress, note[:500], "in_progress", UNSET
            )
        working = held is not None and held.task_id not in self._released
        return models.HeartbeatResult(
            success=True, current_task=held.task_id if working and held else None, lease_expires_at=None
        )

    async def release_task(
        self, send: Send, agent_id: str, task_id: str, reason: str, *, count_attempt: bool = False
    ) -> models.MessageResult:
        """No release on Marcus: note it on the task; the held-task file lets a restart resume it.

        `count_attempt` has nothing to count on Marcus, which keeps no attempts; the note says why.
        """
        self._released[task_id] = reason
        note = (
            f"{reason} (Marcus has no release: {agent_id} resumes it when it restarts with the same id; "
            "otherwise Marcus re-offers it when the lease runs out)"
        )
        if self._held is not None and self._held.task_id == task_id:
            with contextlib.suppress(NotTaskHolder, TaskAlreadyComplete):
                await self.report_progress(
                    send, agent_id, task_id, self._progress, note, "in_progress", UNSET
                )
        return models.MessageResult(success=True, message=note)

    async def deregister(self, send: Send, agent_id: str) -> models.MessageResult:
        """No deregistration on Marcus: the agent stays listed there until Marcus's own timeout."""
        return models.MessageResult(
            success=True, message=f"Marcus has no deregistration; {agent_id} simply stops asking"
        )

    async def log_artifact(
        self,
        send: Send,
        agent_id: str,
        task_id: str,
        artifact_type: str,
        description: str,
        location: str | None,
        data: JsonValue,
    ) -> models.ArtifactResult:
        folder = self.workspace / answers.ARTIFACT_DIR / task_id
        number = len(list(folder.glob("*.json"))) + 1 if folder.is_dir() else 1
        arguments = answers.artifact_arguments(
            task_id=task_id,
            agent_id=agent_id,
            artifact_id=number,
            artifact_type=artifact_type,
            description=description,
            location=location,
            data=data,
            project_root=self.workspace,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        try:
            return answers.artifact_result(await send("log_artifact", arguments), number)
        except PMError as exc:
            log.warning(
                "Marcus could not store the artifact; tasks that depend on this one will not see it "
                "(does Marcus see the workspace at the same path?)",
                artifact_type=artifact_type,
                project_root=str(self.workspace),
                error=str(exc),
            )
            return models.ArtifactResult(success=True, artifact_id=number)

    async def get_task_context(
        self, send: Send, task_id: str, cursor: str | None = None
    ) -> models.TaskContextResult:
        # One page: Marcus's answer is not paged, and everything it gives fits in it.
        held = self._held
        if held is None or held.task_id != task_id:
            raise _unsupported("get_task_context (for a task this agent does not hold)")
        found = answers.context_artifacts(
            await send("get_task_context", {"task_id": task_id}), self.workspace
        )
        detail = models.TaskDetail(
            task_id=held.task_id,
            task_name=held.task_name,
            description=held.description,
            instructions=held.instructions,
            priority=held.priority,
            required_skills=held.required_skills,
            labels=held.labels,
            dependencies=[],
            pending_dependencies=0,
            estimated_hours=None,
            payload=held.payload,
            status="in_progress",
            holder=self._register_args["agent_id"] if self._register_args else None,
            attempt=1,
            expiries=0,
            progress=round(self._progress),
            checkpoint=held.checkpoint,
            lease_expires_at=None,
            completed_by=None,
            completed_at=None,
            created_at="",
        )
        return models.TaskContextResult(
            success=True, task=detail, progress_log=[], blockers=[], artifacts=[], dependency_artifacts=found
        )

    async def get_artifact(self, send: Send, artifact_id: int) -> models.ArtifactContent:
        # Marcus's artifacts come whole (data included) in get_task_context; there is no fetch by id.
        raise _unsupported("get_artifact")

    async def resolve_blocker(self, send: Send, task_id: str, resolution: str) -> models.ResolveResult:
        raise _unsupported("resolve_blocker")

    async def get_project_status(self, send: Send) -> models.ProjectStatus:
        raise _unsupported("get_project_status")

    async def get_agent_status(self, send: Send, agent_id: str) -> models.AgentStatus:
        raise _unsupported("get_agent_status")

    async def list_registered_agents(self, send: Send, cursor: str | None = None) -> models.AgentList:
        raise _unsupported("list_registered_agents")

    async def ping(self, send: Send, echo: str | None) -> models.Pong:
        return answers.pong(await send("ping", {"echo": echo or ""}))


__all__ = ["MarcusDialect"]
