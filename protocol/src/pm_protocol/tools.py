"""The tool table: each tool's name, argument model, result model and one-line description.

The stub serves exactly these tools (its `tools/list` is generated from this table, and each
tool is answered by the board method of the same name) and `pm_worker` calls them through
`pm_protocol.calls.call` with the same models. A `Tool` is generic over its argument and
result models, so `call(send, tools.heartbeat, ...)` is typed `HeartbeatResult` wherever it
is made. `extension` marks the tools upstream PM Agent does not have.

Each tool is also a module constant named after it (`tools.request_next_task`), which is
what typed code uses; `TOOLS` is the table in `tools/list` order, `TOOLS_BY_NAME` the same
by name (for code that gets a name off the wire).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from pydantic import ValidationError

from pm_protocol import args as a
from pm_protocol import results as r
from pm_protocol.errors import InvalidCall, UnexpectedAnswer, summary

A = TypeVar("A", bound=a.ToolArgs)
R = TypeVar("R", bound=r.WireModel)


@dataclass(frozen=True)
class Tool(Generic[A, R]):
    name: str
    args: type[A]
    result: type[R]
    description: str
    extension: bool = False
    operator: bool = False
    """For people and their tools (the CLI), not for workers: a worker loop never calls it.
    Same endpoint and same bearer token as every other tool."""
    read_only: bool = False
    """Changes nothing a caller could see (MCP `readOnlyHint`; a board call may still expire due
    leases first, as every call does)."""
    idempotent: bool = False
    """Calling it again with the same arguments changes nothing more (`idempotentHint`)."""
    destructive: bool = False
    """May throw away what the board held (`destructiveHint`): results, checkpoints, progress."""

    def arguments(self, given: A | dict[str, Any]) -> A:
        """`given` as this tool's argument model; `InvalidCall` says what breaks the contract."""
        if isinstance(given, self.args):
            return given
        if not isinstance(given, dict):
            raise TypeError(
                f"{self.name} takes {self.args.__name__} (or a dict of it), not {type(given).__name__}"
            )
        try:
            return self.args.model_validate(given)
        except ValidationError as exc:
            raise InvalidCall(self.name, summary(exc)) from None

    def read(self, answer: Any) -> R:
        """A success answer's JSON object as this tool's result model; `UnexpectedAnswer` if it is not one."""
        try:
            return self.result.model_validate(answer)
        except ValidationError as exc:
            raise UnexpectedAnswer(
                self.name, f"the answer is not a {self.result.__name__} ({summary(exc)})"
            ) from None


OPERATOR = "[operator] "  # how an operator tool's description starts in tools/list


register_agent: Final = Tool(
    "register_agent",
    a.RegisterAgentArgs,
    r.RegisterResult,
    "Register (or re-register) this worker with its skills. Do this first; re-registering keeps a held task.",
    idempotent=True,
)
request_next_task: Final = Tool(
    "request_next_task",
    a.RequestNextTaskArgs,
    r.TaskOffer,
    "Get your assignment: the task you hold (lease renewed) or the best eligible one. "
    "wait_seconds long-polls until a task is ready.",
    idempotent=True,
)
report_task_progress: Final = Tool(
    "report_task_progress",
    a.ReportTaskProgressArgs,
    r.ProgressAck,
    "Report progress (renews the lease), completion, or a block on the task you hold; "
    "checkpoint stores resume state.",
)
report_blocker: Final = Tool(
    "report_blocker",
    a.ReportBlockerArgs,
    r.BlockerResult,
    "Report that the task you hold is blocked; returns a resolution_suggestion and frees you.",
)
get_project_status: Final = Tool(
    "get_project_status",
    a.NoArgs,
    r.ProjectStatus,
    "Task counts by status and worker counts.",
    read_only=True,
)
get_agent_status: Final = Tool(
    "get_agent_status",
    a.AgentOnlyArgs,
    r.AgentStatus,
    "One agent's status and current task.",
    read_only=True,
)
list_registered_agents: Final = Tool(
    "list_registered_agents",
    a.PageArgs,
    r.AgentList,
    "Registered agents with their status, a page at a time (limit, cursor = next_cursor).",
    read_only=True,
)
ping: Final = Tool("ping", a.PingArgs, r.Pong, "Liveness check; echoes `echo`.", read_only=True)
heartbeat: Final = Tool(
    "heartbeat",
    a.AgentOnlyArgs,
    r.HeartbeatResult,
    "Renew the lease of your current task and your last-seen time.",
    extension=True,
    idempotent=True,
)
release_task: Final = Tool(
    "release_task",
    a.ReleaseTaskArgs,
    r.MessageResult,
    "Give a held task back to the queue now (keeps its checkpoint; a failed attempt only with "
    "count_attempt).",
    extension=True,
    idempotent=True,
)
log_artifact: Final = Tool(
    "log_artifact",
    a.LogArtifactArgs,
    r.ArtifactResult,
    "Record an artifact of a task you hold or completed; dependents see it in their assignment.",
    extension=True,
)
get_task_context: Final = Tool(
    "get_task_context",
    a.TaskContextArgs,
    r.TaskContextResult,
    "A task with a page of its progress log, blockers, artifacts and its dependencies' artifacts "
    "(next pages: cursor = next_cursor).",
    extension=True,
    read_only=True,
)
get_artifact: Final = Tool(
    "get_artifact",
    a.GetArtifactArgs,
    r.ArtifactContent,
    "One artifact with its data (lists carry only small data inline).",
    extension=True,
    read_only=True,
)
deregister_agent: Final = Tool(
    "deregister_agent",
    a.AgentOnlyArgs,
    r.MessageResult,
    "Say this worker is stopping: it shows offline at once, and a task it still holds goes back to the "
    "queue. Register again to come back.",
    extension=True,
    idempotent=True,
)
resolve_blocker: Final = Tool(
    "resolve_blocker",
    a.ResolveBlockerArgs,
    r.ResolveResult,
    OPERATOR + "Close a task's open blockers and put it back in the queue with its attempts reset.",
    extension=True,
    operator=True,
    idempotent=True,
)
load_project: Final = Tool(
    "load_project",
    a.LoadProjectArgs,
    r.LoadResult,
    OPERATOR + "Add a project file's tasks (its text) to the board; ids already there are left alone. "
    "A bad file is refused whole; warnings say which tasks no worker can take.",
    extension=True,
    operator=True,
    idempotent=True,
)
list_tasks: Final = Tool(
    "list_tasks",
    a.ListTasksArgs,
    r.TaskList,
    OPERATOR + "The board's tasks in board order (in progress, blocked, todo, done), with whole ids, "
    "a page at a time (limit, cursor = next_cursor).",
    extension=True,
    operator=True,
    read_only=True,
)
rerun_task: Final = Tool(
    "rerun_task",
    a.RerunTaskArgs,
    r.RerunResult,
    OPERATOR + "Put a done or blocked task back in the queue for a fresh run; its history is kept. "
    "dependents=true reruns the done or blocked tasks that depend on it too.",
    extension=True,
    operator=True,
    destructive=True,
)

TOOLS: Final[tuple[Tool[Any, Any], ...]] = (
    register_agent,
    request_next_task,
    report_task_progress,
    report_blocker,
    get_project_status,
    get_agent_status,
    list_registered_agents,
    ping,
    heartbeat,
    release_task,
    log_artifact,
    get_task_context,
    get_artifact,
    deregister_agent,
    resolve_blocker,
    load_project,
    list_tasks,
    rerun_task,
)

TOOLS_BY_NAME: Final[dict[str, Tool[Any, Any]]] = {t.name: t for t in TOOLS}
