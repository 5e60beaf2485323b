"""Typed async client for every PM Agent tool, surviving disconnects and stub restarts.

Each method builds the contract's arguments (`pm_protocol.args`) from the fleet's terms,
fitting what it sends (`pm_worker.outgoing`), and makes the call with `call_tool(tool, args)`,
which any tool of `pm_protocol.tools` can use directly. The dialect (`pm_worker.dialects.base`: the
stub's or Marcus's, as `PM_PROTOCOL` says; `auto` reads the server's tools/list once per
connection) makes it through `call`: (re)connect if needed, call, and on a transport failure
reconnect with the backoff policy and call again. After a reconnect the agent re-registers first, so a stub whose database was
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

from pm_protocol import InvalidCall
from pm_protocol import tools as T
from pm_protocol.limits import MAX_NAME
from pm_protocol.tools import A, R, Tool
from pm_worker import models
from pm_worker.connection import Connection, ToolConnection
from pm_worker.dialects.base import UNSET, Dialect, Send
from pm_worker.dialects.choose import dialect_for_tools, make_dialect
from pm_worker.errors import AgentNotRegistered, InvalidArgument, TransportError
from pm_worker.outgoing import Outgoing
from pm_worker.reconnect import reconnect_policy
from pm_worker.settings import WorkerSettings

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
        named = settings.pm_protocol
        self._auto = dialect is None and named == "auto"
        self._dialect: Dialect | None = dialect or (
            None if named == "auto" else make_dialect(named, settings)
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
        if self._dialect is None or self._dialect.name != name:
            self._dialect = make_dialect(name, self.settings)
            log.info("dialect_chosen", dialect=name, url=self.settings.pm_agent_url)

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
            log.info("reconnected", reconnects=self.reconnects)
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
            log.warning("agent_unknown_registering_again", tool=tool)
            await self._register(self._send_once)
            return await self._once(tool, arguments, timeout)

    async def call_tool(self, tool: Tool[A, R], args: A | dict[str, Any], *, extra_timeout: float = 0.0) -> R:
        """Any tool of the contract (`pm_protocol.tools`) through this client's dialect: its result.

        `args` is the tool's argument model or a dict of it, checked before anything is sent
        (`InvalidArgument`, as the stub would have answered).
        """
        return await self._call_on(self.call, tool, args, extra_timeout)

    async def _call_on(
        self, send: Send, tool: Tool[A, R], args: A | dict[str, Any], extra_timeout: float = 0.0
    ) -> R:
        dialect = await self._ready()  # already chosen when called while (re)connecting
        try:
            return await dialect.call(send, tool, args, extra_timeout=extra_timeout)
        except InvalidCall as exc:  # what the stub would have answered; nothing malformed was sent
            raise InvalidArgument(
                f"not sent, the arguments break the protocol: {exc.message}", tool=tool.name
            ) from None

    async def _register(self, send: Send) -> models.RegisterResult:
        ident = self.identity
        if ident is None:
            raise RuntimeError("this client has no agent identity")
        out = self.outgoing
        arguments = {
            "agent_id": ident.agent_id,
            "name": out.text(ident.name, MAX_NAME),
            "role": out.text(ident.role, MAX_NAME),
            "skills": list(ident.skills),
        }
        return await self._call_on(send, T.register_agent, arguments)

    # -- the contract's tools, in the fleet's terms ------------------------------------

    async def register(self) -> models.RegisterResult:
        return await self._register(self.call)

    async def request_next_task(self, wait_seconds: float = 0.0) -> models.TaskOffer:
        arguments = _given(agent_id=self.agent_id, wait_seconds=float(wait_seconds) if wait_seconds else None)
        return await self.call_tool(T.request_next_task, arguments, extra_timeout=wait_seconds)

    async def report_progress(
        self,
        task_id: str,
        progress: float,
        message: str,
        status: str = "in_progress",
        checkpoint: Any = UNSET,
    ) -> models.ProgressAck:
        out = self.outgoing
        arguments: dict[str, Any] = {
            "agent_id": self.agent_id,
            "task_id": task_id,
            "status": status,
            "progress": float(progress),
            "message": out.text(message),
        }
        if checkpoint is not UNSET:
            arguments["checkpoint"] = out.json(checkpoint, "the checkpoint")
        return await self.call_tool(T.report_task_progress, arguments)

    async def report_blocker(
        self, task_id: str, description: str, severity: str = "medium"
    ) -> models.BlockerResult:
        arguments = {
            "agent_id": self.agent_id,
            "task_id": task_id,
            "blocker_description": self.outgoing.text(description),
            "severity": severity,
        }
        return await self.call_tool(T.report_blocker, arguments)

    async def heartbeat(self) -> models.HeartbeatResult:
        return await self.call_tool(T.heartbeat, {"agent_id": self.agent_id})

    async def release_task(
        self, task_id: str, reason: str, *, count_attempt: bool = False
    ) -> models.MessageResult:
        """Give the task back; `count_attempt` makes the board count it as a failed attempt."""
        arguments: dict[str, Any] = {
            "agent_id": self.agent_id,
            "task_id": task_id,
            "reason": self.outgoing.text(reason),
        }
        if count_attempt:  # sent only when set: a stub from before the argument still takes the call
            arguments["count_attempt"] = True
        return await self.call_tool(T.release_task, arguments)

    async def deregister(self) -> models.MessageResult:
        """The last call of a clean stop: this agent shows offline at once (docs/protocol.md)."""
        return await self.call_tool(T.deregister_agent, {"agent_id": self.agent_id})

    async def log_artifact(
        self,
        task_id: str,
        artifact_type: str,
        description: str,
        location: str | None = None,
        data: Any = None,
    ) -> models.ArtifactResult:
        out = self.outgoing
        arguments = _given(
            agent_id=self.agent_id,
            task_id=task_id,
            artifact_type=out.text(artifact_type, MAX_NAME),
            description=out.text(description),
            location=out.optional_text(location),
            data=None if data is None else out.json(data, "the artifact's data"),
        )
        return await self.call_tool(T.log_artifact, arguments)

    async def get_task_context(self, task_id: str, cursor: str | None = None) -> models.TaskContextResult:
        """The task with one page of each of its lists; pass the answer's `next_cursor` for more."""
        return await self.call_tool(T.get_task_context, _given(task_id=task_id, cursor=cursor))

    async def get_artifact(self, artifact_id: int) -> models.ArtifactContent:
        """One artifact with its data (lists carry big data as metadata only: `data_included` false)."""
        return await self.call_tool(T.get_artifact, {"artifact_id": artifact_id})

    async def resolve_blocker(self, task_id: str, resolution: str) -> models.ResolveResult:
        arguments = {"task_id": task_id, "resolution": self.outgoing.text(resolution)}
        return await self.call_tool(T.resolve_blocker, arguments)

    async def get_project_status(self) -> models.ProjectStatus:
        return await self.call_tool(T.get_project_status, {})

    async def get_agent_status(self, agent_id: str | None = None) -> models.AgentStatus:
        return await self.call_tool(T.get_agent_status, {"agent_id": agent_id or self.agent_id})

    async def list_registered_agents(self, cursor: str | None = None) -> models.AgentList:
        """One page of the registered agents; pass the answer's `next_cursor` for the next."""
        return await self.call_tool(T.list_registered_agents, _given(cursor=cursor))

    async def ping(self, echo: str | None = None) -> models.Pong:
        return await self.call_tool(T.ping, _given(echo=self.outgoing.optional_text(echo)))


def _given(**fields: Any) -> dict[str, Any]:
    """The arguments that have a value: an optional argument left out stays out of the call."""
    return {name: value for name, value in fields.items() if value is not None}
