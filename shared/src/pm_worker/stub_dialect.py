"""The PM Agent stub's dialect: every piece of its wire knowledge pm_worker has, in one class.

Arguments are built and checked with the stub's own argument models (`pm_protocol.args`),
answers read with the result model the tool table names (`pm_protocol.TOOLS_BY_NAME`), and
error answers are `pm_protocol.ErrorResult`s. The stub answers upstream's tools with
upstream's shapes, so this dialect also serves a worker written from the upstream tutorial.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import JsonValue, ValidationError

from pm_protocol import TOOLS_BY_NAME
from pm_protocol.results import WireModel
from pm_worker import models
from pm_worker.dialect import UNSET, Checkpoint, Send
from pm_worker.errors import InvalidArgument, PMError, TransportError, error_for

R = TypeVar("R", bound=WireModel)


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5])


class StubDialect:
    """Tools, arguments and answers exactly as docs/protocol.md and `pm_protocol` define them."""

    name = "pm-agent-stub"

    def error(self, tool: str, answer: dict[str, Any]) -> PMError:
        code = answer.get("error")
        message = answer.get("message")
        return error_for(
            code if isinstance(code, str) else "error",
            message if isinstance(message, str) else str(answer),
            tool=tool,
        )

    async def _call(
        self, send: Send, tool: str, arguments: dict[str, Any], result: type[R], extra_timeout: float = 0.0
    ) -> R:
        spec = TOOLS_BY_NAME[tool]
        if result is not spec.result:
            raise TypeError(f"{tool} answers with {spec.result.__name__}, not {result.__name__}")
        try:
            checked = spec.args.model_validate(arguments)
        except ValidationError as exc:
            # What the stub would have answered; caught here so nothing malformed is sent.
            raise InvalidArgument(
                f"not sent, the arguments break the protocol: {_problems(exc)}", tool=tool
            ) from None
        answer = await send(tool, checked.wire(), extra_timeout=extra_timeout)
        try:
            return result.model_validate(answer)
        except ValidationError as exc:
            raise TransportError(
                f"{tool}: the answer is not a {result.__name__} ({_problems(exc)}); "
                "is PM_AGENT_URL a PM Agent stub?"
            ) from None

    async def register(
        self, send: Send, agent_id: str, name: str, role: str, skills: list[str]
    ) -> models.RegisterResult:
        return await self._call(
            send,
            "register_agent",
            {"agent_id": agent_id, "name": name, "role": role, "skills": skills},
            models.RegisterResult,
        )

    async def request_next_task(self, send: Send, agent_id: str, wait_seconds: float) -> models.TaskOffer:
        arguments: dict[str, Any] = {"agent_id": agent_id}
        if wait_seconds:
            arguments["wait_seconds"] = float(wait_seconds)
        return await self._call(
            send, "request_next_task", arguments, models.TaskOffer, extra_timeout=wait_seconds
        )

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
        arguments: dict[str, Any] = {
            "agent_id": agent_id,
            "task_id": task_id,
            "status": status,
            "progress": float(progress),
            "message": message,
        }
        if checkpoint is not UNSET:
            arguments["checkpoint"] = checkpoint
        return await self._call(send, "report_task_progress", arguments, models.ProgressAck)

    async def report_blocker(
        self, send: Send, agent_id: str, task_id: str, description: str, severity: str
    ) -> models.BlockerResult:
        return await self._call(
            send,
            "report_blocker",
            {
                "agent_id": agent_id,
                "task_id": task_id,
                "blocker_description": description,
                "severity": severity,
            },
            models.BlockerResult,
        )

    async def heartbeat(self, send: Send, agent_id: str) -> models.HeartbeatResult:
        return await self._call(send, "heartbeat", {"agent_id": agent_id}, models.HeartbeatResult)

    async def release_task(
        self, send: Send, agent_id: str, task_id: str, reason: str, *, count_attempt: bool = False
    ) -> models.MessageResult:
        args: dict[str, Any] = {"agent_id": agent_id, "task_id": task_id, "reason": reason}
        if count_attempt:  # sent only when set: a stub from before the argument still takes the call
            args["count_attempt"] = True
        return await self._call(send, "release_task", args, models.MessageResult)

    async def deregister(self, send: Send, agent_id: str) -> models.MessageResult:
        return await self._call(send, "deregister_agent", {"agent_id": agent_id}, models.MessageResult)

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
        arguments: dict[str, Any] = {
            "agent_id": agent_id,
            "task_id": task_id,
            "artifact_type": artifact_type,
            "description": description,
        }
        if location is not None:
            arguments["location"] = location
        if data is not None:
            arguments["data"] = data
        return await self._call(send, "log_artifact", arguments, models.ArtifactResult)

    async def get_task_context(
        self, send: Send, task_id: str, cursor: str | None = None
    ) -> models.TaskContextResult:
        arguments: dict[str, Any] = {"task_id": task_id}
        if cursor is not None:
            arguments["cursor"] = cursor
        return await self._call(send, "get_task_context", arguments, models.TaskContextResult)

    async def get_artifact(self, send: Send, artifact_id: int) -> models.ArtifactContent:
        return await self._call(send, "get_artifact", {"artifact_id": artifact_id}, models.ArtifactContent)

    async def resolve_blocker(self, send: Send, task_id: str, resolution: str) -> models.ResolveResult:
        return await self._call(
            send, "resolve_blocker", {"task_id": task_id, "resolution": resolution}, models.ResolveResult
        )

    async def get_project_status(self, send: Send) -> models.ProjectStatus:
        return await self._call(send, "get_project_status", {}, models.ProjectStatus)

    async def get_agent_status(self, send: Send, agent_id: str) -> models.AgentStatus:
        return await self._call(send, "get_agent_status", {"agent_id": agent_id}, models.AgentStatus)

    async def list_registered_agents(self, send: Send, cursor: str | None = None) -> models.AgentList:
        return await self._call(
            send, "list_registered_agents", {} if cursor is None else {"cursor": cursor}, models.AgentList
        )

    async def ping(self, send: Send, echo: str | None) -> models.Pong:
        return await self._call(send, "ping", {} if echo is None else {"echo": echo}, models.Pong)


__all__ = ["StubDialect"]
