"""Typed async client for every PM Agent tool, surviving disconnects and stub restarts.

Each method fits what it sends (`pm_worker.outgoing`), then asks the dialect
(`pm_worker.dialect`: the stub's or Marcus's, as `PM_PROTOCOL` says; `auto` reads the
server's tools/list once per connection) to make the call through `call`: (re)connect
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
from pm_worker import models
from pm_worker.connection import Connection, ToolConnection
from pm_worker.dialect import UNSET, Checkpoint, Dialect, Send
from pm_worker.errors import AgentNotRegistered, TransportError
from pm_worker.marcus.detect import Dialect as DialectName
from pm_worker.marcus.detect import dialect_for_tools
from pm_worker.marcus.dialect import MarcusDialect
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

    def __init__(
        self,
        settings: WorkerSettings,
        identity: Identity | None = None,
        *,
        dialect: Dialect | None = None,
        retry_overrides: dict[str, Any] | None = None,
        connect: Callable[[WorkerSettings], ToolConnection] = Connection,
    ) -> None:
        self.settings = settings
        self.identity = identity
        self._auto = dialect is None and settings.pm_protocol == "auto"
        self._dialect: Dialect | None = dialect or (
            None if self._auto else make_dialect(settings.pm_protocol, settings)
        )
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
    def dialect(self) -> Dialect:
        """The dialect in use (with `PM_PROTOCOL=auto`, known once connected)."""
        if self._dialect is None:
            raise RuntimeError("the dialect is chosen on connecting (PM_PROTOCOL=auto); not connected yet")
        return self._dialect

    async def _ready(self) -> Dialect:
        """The dialect, connecting first (with the reconnect policy) when it is still to be chosen."""
        if self._dialect is None:
            policy = reconnect_policy(self.settings.reconnect_give_up_seconds, **self._retry_overrides)
            async for attempt in policy:
                with attempt:
                    await self._ensure()
        return self.dialect

    async def _choose(self, conn: ToolConnection) -> None:
        """PM_PROTOCOL=auto: the dialect this server speaks, from its tools/list, on every new connection."""
        name = dialect_for_tools(await conn.tool_names(self.settings.call_timeout_seconds))
        if self._dialect is None or self._dialect.name != DIALECT_NAMES[name]:
            self._dialect = make_dialect(name, self.settings)
            log.info("dialect chosen from the server's tools", dialect=name, url=self.settings.pm_agent_url)

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
        if self._auto:
            try:
                await self._choose(conn)
            except BaseException:
                await conn.close()
                raise
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

    async def _send_once(
        self, tool: str, arguments: dict[str, Any], *, extra_timeout: float = 0.0
    ) -> dict[str, Any]:
        """One call on the current connection: no reconnect (used while (re)connecting)."""
        return await self._once(tool, arguments, self.settings.call_timeout_seconds + extra_timeout)

    async def call(
        self, tool: str, arguments: dict[str, Any], *, extra_timeout: float = 0.0
    ) -> dict[str, Any]:
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

    async def _register(self, send: Send) -> models.RegisterResult:
        ident = self.identity
        if ident is None:
            raise RuntimeError("this client has no agent identity")
        out = self.outgoing
        dialect = await self._ready()  # already chosen when called while (re)connecting
        return await dialect.register(
            send,
            ident.agent_id,
            out.text(ident.name, MAX_NAME),
            out.text(ident.role, MAX_NAME),
            list(ident.skills),
        )

    # -- the contract's tools, in the fleet's terms ------------------------------------

    async def register(self) -> models.RegisterResult:
        return await self._register(self.call)

    async def request_next_task(self, wait_seconds: float = 0.0) -> models.TaskOffer:
        dialect = await self._ready()
        return await dialect.request_next_task(self.call, self.agent_id, wait_seconds)

    async def report_progress(
        self,
        task_id: str,
        progress: float,
        message: str,
        status: str = "in_progress",
        checkpoint: Any = UNSET,
    ) -> models.ProgressAck:
        out = self.outgoing
        fitted: Checkpoint = UNSET if checkpoint is UNSET else out.json(checkpoint, "the checkpoint")
        dialect = await self._ready()
        return await dialect.report_progress(
            self.call, self.agent_id, task_id, progress, out.text(message), status, fitted
        )

    async def report_blocker(
        self, task_id: str, description: str, severity: str = "medium"
    ) -> models.BlockerResult:
        dialect = await self._ready()
        return await dialect.report_blocker(
            self.call, self.agent_id, task_id, self.outgoing.text(description), severity
        )

    async def heartbeat(self) -> models.HeartbeatResult:
        dialect = await self._ready()
        return await dialect.heartbeat(self.call, self.agent_id)

    async def release_task(
        self, task_id: str, reason: str, *, count_attempt: bool = False
    ) -> models.MessageResult:
        """Give the task back; `count_attempt` makes the board count it as a failed attempt."""
        dialect = await self._ready()
        return await dialect.release_task(
            self.call, self.agent_id, task_id, self.outgoing.text(reason), count_attempt=count_attempt
        )

    async def deregister(self) -> models.MessageResult:
        """The last call of a clean stop: this agent shows offline at once (docs/protocol.md)."""
        return await self.dialect.deregister(self.call, self.agent_id)

    async def log_artifact(
        self,
        task_id: str,
        artifact_type: str,
        description: str,
        location: str | None = None,
        data: Any = None,
    ) -> models.ArtifactResult:
        out = self.outgoing
        dialect = await self._ready()
        return await dialect.log_artifact(
            self.call,
            self.agent_id,
            task_id,
            out.text(artifact_type, MAX_NAME),
            out.text(description),
            out.optional_text(location),
            None if data is None else out.json(data, "the artifact's data"),
        )

    async def get_task_context(self, task_id: str, cursor: str | None = None) -> models.TaskContextResult:
        """The task with one page of each of its lists; pass the answer's `next_cursor` for more."""
        dialect = await self._ready()
        return await dialect.get_task_context(self.call, task_id, cursor)

    async def get_artifact(self, artifact_id: int) -> models.ArtifactContent:
        """One artifact with its data (lists carry big data as metadata only: `data_included` false)."""
        dialect = await self._ready()
        return await dialect.get_artifact(self.call, artifact_id)

    async def resolve_blocker(self, task_id: str, resolution: str) -> models.ResolveResult:
        dialect = await self._ready()
        return await dialect.resolve_blocker(self.call, task_id, self.outgoing.text(resolution))

    async def get_project_status(self) -> models.ProjectStatus:
        dialect = await self._ready()
        return await dialect.get_project_status(self.call)

    async def get_agent_status(self, agent_id: str | None = None) -> models.AgentStatus:
        dialect = await self._ready()
        return await dialect.get_agent_status(self.call, agent_id or self.agent_id)

    async def list_registered_agents(self, cursor: str | None = None) -> models.AgentList:
        """One page of the registered agents; pass the answer's `next_cursor` for the next."""
        dialect = await self._ready()
        return await dialect.list_registered_agents(self.call, cursor)

    async def ping(self, echo: str | None = None) -> models.Pong:
        dialect = await self._ready()
        return await dialect.ping(self.call, self.outgoing.optional_text(echo))


DIALECT_NAMES: dict[DialectName, str] = {"stub": StubDialect.name, "marcus": MarcusDialect.name}


def make_dialect(name: str, settings: WorkerSettings) -> Dialect:
    """A fresh dialect for `name` (`stub` or `marcus`)."""
    if name == "marcus":
        return MarcusDialect.from_settings(settings)
    return StubDialect()
