"""Typed async client for every PM Agent tool, surviving disconnects and stub restarts.

Each call goes through `_call`: (re)connect if needed, call, and on a transport failure
reconnect with the backoff policy and call again. After a reconnect the agent
re-registers first, so a stub whose database was replaced still knows us. Every call the
worker makes is safe to repeat (the stub answers a repeated `completed` as already
complete, a repeated `request_next_task` with the same assignment).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel

from pm_worker.connection import Connection, ToolConnection
from pm_worker.errors import AgentNotRegistered, TransportError, error_for
from pm_worker.models import (
    AgentList,
    AgentStatus,
    ArtifactResult,
    BlockerResult,
    HeartbeatResult,
    Pong,
    ProgressAck,
    ProjectStatus,
    RegisterResult,
    SimpleResult,
    TaskContextResult,
    TaskOffer,
)
from pm_worker.reconnect import reconnect_policy
from pm_worker.settings import WorkerSettings

M = TypeVar("M", bound=BaseModel)
log = structlog.get_logger("pm_worker.client")

_UNSET: Any = object()


@dataclass(frozen=True)
class Identity:
    agent_id: str
    name: str
    role: str
    skills: tuple[str, ...]


class PMClient:
    """`async with PMClient(settings, identity) as pm: await pm.request_next_task(...)`."""

    def __init__(self, settings: WorkerSettings, identity: Identity | None = None,
                 *, retry_overrides: dict[str, Any] | None = None,
                 connect: Callable[[WorkerSettings], ToolConnection] = Connection) -> None:
        self.settings = settings
        self.identity = identity
        self._connect = connect
        self._conn: ToolConnection | None = None
        self._connected_once = False
        self._connecting = asyncio.Lock()
        self._retry_overrides = retry_overrides or {}
        self.reconnects = 0

    async def __aenter__(self) -> PMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    @property
    def agent_id(self) -> str:
        if self.identity is None:
            raise RuntimeError("this client has no agent identity")
        return self.identity.agent_id

    async def _ensure(self) -> ToolConnection:
        if self._conn is not None and self._conn.alive:
            return self._conn
        # The heartbeat and the task's own reports may both find the link dead at once:
        # one of them reconnects, the other waits and uses that connection.
        async with self._connecting:
            return await self._reconnect()

    async def _reconnect(self) -> ToolConnection:
        if self._conn is not None and self._conn.alive:
            return self._conn
        if self._conn is not None:
            await self._conn.close()
        conn = self._connect(self.settings)
        await conn.open()
        self._conn = conn
        if self._connected_once:
            self.reconnects += 1
            log.info("reconnected to stub", reconnects=self.reconnects)
            if self.identity is not None:
                await self._raw("register_agent", self._register_args(), self.settings.call_timeout_seconds)
        self._connected_once = True
        return conn

    def _register_args(self) -> dict[str, Any]:
        ident = self.identity
        assert ident is not None
        return {"agent_id": ident.agent_id, "name": ident.name, "role": ident.role, "skills": list(ident.skills)}

    async def _raw(self, tool: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
        conn = self._conn
        if conn is None:
            raise TransportError("not connected")
        reply = await conn.call(tool, args, timeout)
        if reply.is_error:
            answer = reply.answer
            raise error_for(str(answer.get("error") or "error"), str(answer.get("message") or answer), tool=tool)
        return reply.answer

    async def call(self, tool: str, args: dict[str, Any], *, extra_timeout: float = 0.0) -> dict[str, Any]:
        """Call `tool`, reconnecting on transport failures; tool errors raise `PMError` subclasses."""
        timeout = self.settings.call_timeout_seconds + extra_timeout
        policy = reconnect_policy(self.settings.reconnect_give_up_seconds, **self._retry_overrides)
        async for attempt in policy:
            with attempt:
                await self._ensure()
                try:
                    return await self._raw(tool, args, timeout)
                except AgentNotRegistered:
                    if self.identity is None or tool == "register_agent":
                        raise
                    log.warning("stub does not know this agent; registering again", tool=tool)
                    await self._raw("register_agent", self._register_args(), timeout)
                    return await self._raw(tool, args, timeout)
        raise AssertionError("unreachable")  # pragma: no cover - tenacity reraises

    async def _typed(self, model: type[M], tool: str, args: dict[str, Any], extra_timeout: float = 0.0) -> M:
        return model.model_validate(await self.call(tool, args, extra_timeout=extra_timeout))

    # -- the contract's tools -------------------------------------------------------

    async def register(self) -> RegisterResult:
        return await self._typed(RegisterResult, "register_agent", self._register_args())

    async def request_next_task(self, wait_seconds: float = 0.0) -> TaskOffer:
        args: dict[str, Any] = {"agent_id": self.agent_id}
        if wait_seconds:
            args["wait_seconds"] = wait_seconds
        return await self._typed(TaskOffer, "request_next_task", args, extra_timeout=wait_seconds)

    async def report_progress(self, task_id: str, progress: float, message: str, status: str = "in_progress",
                              checkpoint: Any = _UNSET) -> ProgressAck:
        args: dict[str, Any] = {"agent_id": self.agent_id, "task_id": task_id, "status": status,
                                "progress": progress, "message": message}
        if checkpoint is not _UNSET:
            args["checkpoint"] = checkpoint
        return await self._typed(ProgressAck, "report_task_progress", args)

    async def report_blocker(self, task_id: str, description: str, severity: str = "medium") -> BlockerResult:
        return await self._typed(BlockerResult, "report_blocker", {
            "agent_id": self.agent_id, "task_id": task_id, "blocker_description": description,
            "severity": severity})

    async def heartbeat(self) -> HeartbeatResult:
        return await self._typed(HeartbeatResult, "heartbeat", {"agent_id": self.agent_id})

    async def release_task(self, task_id: str, reason: str) -> SimpleResult:
        return await self._typed(SimpleResult, "release_task",
                                 {"agent_id": self.agent_id, "task_id": task_id, "reason": reason})

    async def log_artifact(self, task_id: str, artifact_type: str, description: str,
                           location: str | None = None, data: Any = None) -> ArtifactResult:
        args: dict[str, Any] = {"agent_id": self.agent_id, "task_id": task_id, "artifact_type": artifact_type,
                                "description": description}
        if location is not None:
            args["location"] = location
        if data is not None:
            args["data"] = data
        return await self._typed(ArtifactResult, "log_artifact", args)

    async def get_task_context(self, task_id: str) -> TaskContextResult:
        return await self._typed(TaskContextResult, "get_task_context", {"task_id": task_id})

    async def resolve_blocker(self, task_id: str, resolution: str) -> SimpleResult:
        return await self._typed(SimpleResult, "resolve_blocker", {"task_id": task_id, "resolution": resolution})

    async def get_project_status(self) -> ProjectStatus:
        return await self._typed(ProjectStatus, "get_project_status", {})

    async def get_agent_status(self, agent_id: str | None = None) -> AgentStatus:
        return await self._typed(AgentStatus, "get_agent_status", {"agent_id": agent_id or self.agent_id})

    async def list_registered_agents(self) -> AgentList:
        return await self._typed(AgentList, "list_registered_agents", {})

    async def ping(self, echo: str | None = None) -> Pong:
        return await self._typed(Pong, "ping", {} if echo is None else {"echo": echo})
