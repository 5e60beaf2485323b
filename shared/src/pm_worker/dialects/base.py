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
    Dialect (StubDialect in stub.py: the contract as it is; MarcusDialect in marcus.py: a translation)
        │  `dialect.call(send, tool, args)`: the contract's tool and arguments (`pm_protocol.tools`,
        │  `pm_protocol.args`) in, the tool's result model out
        ▼
    send = PMClient.call ── reconnects with backoff, re-registers after a reconnect or an
        │            `AgentNotRegistered`, then repeats the call; error answers come back
        │            raised, as `dialect.error(tool, answer)` made them
        ▼
    Connection (MCP over streamable HTTP, stdio, or an in-process server)

Writing a dialect for another server (e.g. upstream Marcus, marcus.py):

- Implement `call(send, tool, args)` and `error(tool, answer)` and pass an instance to
  `PMClient(settings, identity, dialect=MarcusDialect())` (or override `Worker.make_client`).
  One `PMClient` owns one dialect instance, so a dialect may keep state (e.g. the task it
  believes this agent holds).
- Call tools only through the `send` you are given: it is what reconnects, retries and
  re-registers. Check the arguments you get with `tool.arguments(args)` (the contract's
  model; every text is already fitted to the protocol's limits and redacted) and build the
  server's arguments from them. `"checkpoint" in args.model_fields_set` tells a checkpoint given as
  null from none given.
- Return the tool's result model (`tool.result`). Translate the server's answer (e.g. Marcus's
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

from pm_protocol.calls import Send as Send
from pm_protocol.tools import A, R, Tool
from pm_worker.errors import PMError


class Unset(enum.Enum):
    """`checkpoint=UNSET`: send no checkpoint (None would store a null one)."""

    UNSET = "unset"


UNSET: Literal[Unset.UNSET] = Unset.UNSET
Checkpoint = JsonValue | Literal[Unset.UNSET]


class Dialect(Protocol):
    """One PM server's wire: makes each of the contract's calls and reads its answer."""

    name: str

    def error(self, tool: str, answer: dict[str, Any]) -> PMError: ...

    async def call(
        self, send: Send, tool: Tool[A, R], args: A | dict[str, Any], *, extra_timeout: float = 0.0
    ) -> R:
        """`tool` with `args` (its model, or a dict checked with `tool.arguments`: `InvalidCall`)."""
        ...
