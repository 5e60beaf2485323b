"""Typed async client for every PM Agent tool, surviving disconnects and stub restarts.

Each method fits what it sends (`pm_worker.outgoing`), then asks the dialect
(`pm_worker.dialect`; the stub's by default) to make the call through `call`: (re)connect
if needed, call, and on a transport failure reconnect with the backoff policy and call
again. After a reconnect the agent re-registers first, so a stub whose database was
replaced still knows us. Every call the worker makes is safe to repeat (the stub answers a
repeated `completed` as already complete, a repeated `request_next_task` with the same
assignment).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from pm_protocol.limits import MAX_NAME
from pm_worker.connection import Connection, ToolConnection
from pm_worker.dialect import UNSET, Checkpoint, Dialect, Send
from pm_worker.errors import AgentNotRegistered, TransportError
from pm_worker.models import (
    AgentList,
    AgentStatus,
    ArtifactResult,
    BlockerResult,
    HeartbeatResult,
    MessageResult,
    Pong,
    ProgressAck,
    ProjectStatus,
    RegisterResult,
    ResolveResult,
    TaskContextResult,
    TaskOffer,
)
from pm_worker.outgoing import Outgoing
from pm_worker.reconnect import reconnect_policy
from pm_worker.settings import WorkerSettings
from pm_worker.stub_dialect import StubDialect

log = structlog.get_logger("pm_worker.client")


@dataclass(frozen=True)
class Identity:
    agent_id: str
    name: str
    role: str
    skills: tuple[str, ...]


class PMClient:
    """`async with PMClient(settings, identity) as pm: await pm.request_next_task(...)`."""

    def __init__(self, settings: WorkerSettings, identity: Identity | None = None,
                 *, dialect: Dialect | None = None, retry_overrides: dict[str, Any] | None = None,
                 connect: Callable[[WorkerSettings], ToolConnection] = Connection) -> None:
        self.settings = settings
        self.identity = identity
        self.dialect: Dialect = dialect or StubDialect()
        self.outgoing = Outgoing([settings.token()])
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
                await self._register(self._send_once)
        self._connected_once = True
        return conn

    async def _once(self, tool: str, arguments: dict[str, Any], timeout: float) -> dict[str, Any]:
        conn = self._conn
        if conn is None:
            raise TransportError("not connected")
        reply = await conn.call(tool, arguments, timeout)
        if reply.is_error:
            raise self.dialect.error(tool, reply.answer)
        return reply.answer

    async def _send_once(self, tool: str, arguments: dict[str, Any], *, extra_timeout: float = 0.0) -> dict[str, Any]:
        """One call on the current connection: no reconnect (used while (re)connecting)."""
        return await self._once(tool, arguments, self.settings.call_timeout_seconds + extra_timeout)

    async def call(self, tool: str, arguments: dict[str, Any], *, extra_timeout: float = 0.0) -> dict[str, Any]:
        """Call `tool`, reconnecting on transport failures; error answers raise `PMError` subclasses.

        This is the `send` every dialect method is given. On a live connection the call goes
        straight out; only a transport failure enters the reconnect policy (building and
        driving a tenacity loop for every call cost ~15 µs of CPU, a tenth of pm_worker's own
        per-call work, bench/README).
        """
        timeout = self.settings.call_timeout_seconds + extra_timeout
        conn = self._conn
        if conn is not None and conn.alive:
            try:
                return await self._answered(tool, arguments, timeout)
            except TransportError:
                pass  # the link broke: reconnect and repeat the call (every call is safe to repeat)
        policy = reconnect_policy(self.settings.reconnect_give_up_seconds, **self._retry_overrides)
        async for attempt in policy:
            with attempt:
                await self._ensure()
                return await self._answered(tool, arguments, timeout)
        raise AssertionError("unreachable")  # pragma: no cover - tenacity reraises

    async def _answered(self, tool: str, arguments: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One call on the current connection, registering again first if the stub forgot us."""
        try:
            return await self._once(tool, arguments, timeout)
        except AgentNotRegistered:
            if self.identity is None:
                raise
            log.warning("stub does not know this agent; registering again", tool=tool)
            await self._register(self._send_once)
            return await self._once(tool, arguments, timeout)

    async def _register(self, send: Send) -> RegisterResult:
        ident = self.identity
        if ident is None:
            raise RuntimeError("this client has no agent identity")
        out = self.outgoing
        return await self.dialect.register(send, ident.agent_id, out.text(ident.name, MAX_NAME),
                                           out.text(ident.role, MAX_NAME), list(ident.skills))

    # -- the contract's tools, in the fleet's terms ------------------------------------

    async def register(self) -> RegisterResult:
        return await self._register(self.call)

    async def request_next_task(self, wait_seconds: float = 0.0) -> TaskOffer:
        return await self.dialect.request_next_task(self.call, self.agent_id, wait_seconds)

    async def report_progress(self, task_id: str, progress: float, message: str, status: str = "in_progress",
                              checkpoint: Any = UNSET) -> ProgressAck:
        out = self.outgoing
        fitted: Checkpoint = UNSET if checkpoint is UNSET else out.json(checkpoint, "the checkpoint")
        return await self.dialect.report_progress(self.call, self.agent_id, task_id, progress, out.text(message),
                                                  status, fitted)

    async def report_blocker(self, task_id: str, description: str, severity: str = "medium") -> BlockerResult:
        return await self.dialect.report_blocker(self.call, self.agent_id, task_id, self.outgoing.text(description),
                                                 severity)

    async def heartbeat(self) -> HeartbeatResult:
        return await self.dialect.heartbeat(self.call, self.agent_id)

    async def release_task(self, task_id: str, reason: str) -> MessageResult:
        return await self.dialect.release_task(self.call, self.agent_id, task_id, self.outgoing.text(reason))

    async def log_artifact(self, task_id: str, artifact_type: str, description: str,
                           location: str | None = None, data: Any = None) -> ArtifactResult:
        out = self.outgoing
        return await self.dialect.log_artifact(
            self.call, self.agent_id, task_id, out.text(artifact_type, MAX_NAME), out.text(description),
            out.optional_text(location), None if data is None else out.json(data, "the artifact's data"))

    async def get_task_context(self, task_id: str) -> TaskContextResult:
        return await self.dialect.get_task_context(self.call, task_id)

    async def resolve_blocker(self, task_id: str, resolution: str) -> ResolveResult:
        return await self.dialect.resolve_blocker(self.call, task_id, self.outgoing.text(resolution))

    async def get_project_status(self) -> ProjectStatus:
        return await self.dialect.get_project_status(self.call)

    async def get_agent_status(self, agent_id: str | None = None) -> AgentStatus:
        return await self.dialect.get_agent_status(self.call, agent_id or self.agent_id)

    async def list_registered_agents(self) -> AgentList:
        return await self.dialect.list_registered_agents(self.call)

    async def ping(self, echo: str | None = None) -> Pong:
        return await self.dialect.ping(self.call, self.outgoing.optional_text(echo))
