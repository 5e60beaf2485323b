"""The seam between the worker and one PM server's wire: a `Dialect`.

Everything a worker does with the board goes through `PMClient`'s methods
(`request_next_task`, `report_progress`, `heartbeat`, `release_task`, ...), which speak the
fleet's own terms: the result models of `pm_worker.models` (= `pm_protocol.results`). How
those become tool calls — tool names, argument names and shapes, answer shapes, error
shapes — is a dialect's business, and only a dialect's:

    Worker loop / TaskContext
        │  PMClient methods, fleet terms in and out (Assignment, TaskOffer, ProgressAck, ...)
        ▼
    PMClient ── fits every outgoing text to the limits and redacts the token (pm_worker.outgoing),
        │       then asks its dialect
        ▼
    Dialect (StubDialect in stub_dialect.py; another server: another class)
        │  send(tool, arguments) → the answer's JSON object; error answers come back raised,
        │  as `dialect.error(tool, answer)` made them
        ▼
    PMClient.call ── reconnects with backoff, re-registers after a reconnect or an
        │            `AgentNotRegistered`, then repeats the call
        ▼
    Connection (MCP over streamable HTTP, stdio, or an in-process server)

Writing a dialect for another server (e.g. upstream Marcus):

- Implement every method of `Dialect` below and pass an instance to
  `PMClient(settings, identity, dialect=MarcusDialect())` (or override `Worker.make_client`).
  One `PMClient` owns one dialect instance, so a dialect may keep state (e.g. the task it
  believes this agent holds).
- Call tools only through the `send` you are given: it is what reconnects, retries and
  re-registers. Arguments you get are already fitted to the protocol's limits and redacted;
  build the server's arguments from them. A call that breaks the server's contract before it
  is sent should raise `InvalidArgument`, as the server would have.
- Return the fleet's models. Translate the server's answer (e.g. Marcus's
  `{"task": {"id", "title", ...}}` into an `Assignment`); a field the server has no notion of
  keeps its default (`Assignment.lease` is None where there are no leases). An answer you
  cannot read is a `TransportError` (the server is not the one you think it is).
- `error(tool, answer)` turns an error answer into the right `PMError` subclass; the worker
  loop's decisions hang on these types (`AgentNotRegistered` re-registers, `NotTaskHolder`
  stops the work), never on the server's error text.
- A tool the server does not have is answered locally with what the loop needs, never with
  a branch in the loop: no heartbeat → a `HeartbeatResult` naming the task this dialect
  believes the agent holds (`current_task`), so the loop keeps working; no long-poll → poll
  within `wait_seconds` yourself; no release → say so in the `MessageResult` (the server's
  own timeout takes the task back); no checkpoints → drop the checkpoint and return the
  progress acknowledgement. No artifact store → `log_artifact` says so in its result's place
  (raise `PMError(..., code="unsupported")`), assignments carry no `dependency_artifacts`,
  and `get_artifact` is never asked for. Lists the server does not page come back whole
  with no cursor (`next_cursor` None). Tools a worker loop never calls (`resolve_blocker`,
  `list_registered_agents`, ...) may raise `PMError(..., code="unsupported")`.
"""

from __future__ import annotations

import enum
from typing import Any, Literal, Protocol

from pydantic import JsonValue

from pm_worker import models
from pm_worker.errors import PMError


class Unset(enum.Enum):
    """`checkpoint=UNSET`: send no checkpoint (None would store a null one)."""

    UNSET = "unset"


UNSET: Literal[Unset.UNSET] = Unset.UNSET
Checkpoint = JsonValue | Literal[Unset.UNSET]


class Send(Protocol):
    """Calls one tool through `PMClient` and returns the answer's JSON object.

    Error answers are raised (as `Dialect.error` builds them); transport failures are
    retried inside, and surface only after `RECONNECT_GIVE_UP_SECONDS` as `TransportError`.
    `extra_timeout` is added to the call's timeout (a long-poll waits that much longer).
    """

    async def __call__(
        self, tool: str, arguments: dict[str, Any], *, extra_timeout: float = 0.0
    ) -> dict[str, Any]: ...


class Dialect(Protocol):
    """One PM server's wire: builds each call's arguments and reads each answer."""

    name: str

    def error(self, tool: str, answer: dict[str, Any]) -> PMError: ...

    async def register(
        self, send: Send, agent_id: str, name: str, role: str, skills: list[str]
    ) -> models.RegisterResult: ...

    async def request_next_task(self, send: Send, agent_id: str, wait_seconds: float) -> models.TaskOffer: ...

    async def report_progress(
        self,
        send: Send,
        agent_id: str,
        task_id: str,
        progress: float,
        message: str,
        status: str,
        checkpoint: Checkpoint,
    ) -> models.ProgressAck: ...

    async def report_blocker(
        self, send: Send, agent_id: str, task_id: str, description: str, severity: str
    ) -> models.BlockerResult: ...

    async def heartbeat(self, send: Send, agent_id: str) -> models.HeartbeatResult: ...

    async def release_task(
        self, send: Send, agent_id: str, task_id: str, reason: str, *, count_attempt: bool = False
    ) -> models.MessageResult: ...

    async def deregister(self, send: Send, agent_id: str) -> models.MessageResult: ...

    async def log_artifact(
        self,
        send: Send,
        agent_id: str,
        task_id: str,
        artifact_type: str,
        description: str,
        location: str | None,
        data: JsonValue,
    ) -> models.ArtifactResult: ...

    async def get_task_context(
        self, send: Send, task_id: str, cursor: str | None = None
    ) -> models.TaskContextResult: ...

    async def get_artifact(self, send: Send, artifact_id: int) -> models.ArtifactContent: ...

    async def resolve_blocker(self, send: Send, task_id: str, resolution: str) -> models.ResolveResult: ...

    async def get_project_status(self, send: Send) -> models.ProjectStatus: ...

    async def get_agent_status(self, send: Send, agent_id: str) -> models.AgentStatus: ...

    async def list_registered_agents(self, send: Send, cursor: str | None = None) -> models.AgentList: ...

    async def ping(self, send: Send, echo: str | None) -> models.Pong: ...
