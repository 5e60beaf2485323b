"""The tool table: each tool's name, argument model, result model and one-line description.

The stub serves exactly these tools (its `tools/list` is generated from this table) and
`pm_worker` calls them by the same names with the same models; `extension` marks the tools
upstream PM Agent does not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pm_protocol import args as a
from pm_protocol import results as r


@dataclass(frozen=True)
class Tool:
    name: str
    args: type[a.ToolArgs]
    result: type[r.WireModel]
    description: str
    extension: bool = False
    operator: bool = False
    """For people and their tools (the CLI), not for workers: a worker loop never calls it.
    Same endpoint and same bearer token as every other tool."""


OPERATOR = "[operator] "  # how an operator tool's description starts in tools/list


TOOLS: Final[tuple[Tool, ...]] = (
    Tool(
        "register_agent",
        a.RegisterAgentArgs,
        r.RegisterResult,
        "Register (or re-register) this worker with its skills. Do this first; re-registering keeps a held task.",
    ),
    Tool(
        "request_next_task",
        a.RequestNextTaskArgs,
        r.TaskOffer,
        "Get your assignment: the task you hold (lease renewed) or the best eligible one. "
        "wait_seconds long-polls until a task is ready.",
    ),
    Tool(
        "report_task_progress",
        a.ReportTaskProgressArgs,
        r.ProgressAck,
        "Report progress (renews the lease), completion, or a block on the task you hold; "
        "checkpoint stores resume state.",
    ),
    Tool(
        "report_blocker",
        a.ReportBlockerArgs,
        r.BlockerResult,
        "Report that the task you hold is blocked; returns a resolution_suggestion and frees you.",
    ),
    Tool("get_project_status", a.NoArgs, r.ProjectStatus, "Task counts by status and worker counts."),
    Tool("get_agent_status", a.AgentOnlyArgs, r.AgentStatus, "One agent's status and current task."),
    Tool(
        "list_registered_agents",
        a.PageArgs,
        r.AgentList,
        "Registered agents with their status, a page at a time (limit, cursor = next_cursor).",
    ),
    Tool("ping", a.PingArgs, r.Pong, "Liveness check; echoes `echo`."),
    Tool(
        "heartbeat",
        a.AgentOnlyArgs,
        r.HeartbeatResult,
        "Renew the lease of your current task and your last-seen time.",
        extension=True,
    ),
    Tool(
        "release_task",
        a.ReleaseTaskArgs,
        r.MessageResult,
        "Give a held task back to the queue now (keeps its checkpoint; a failed attempt only with "
        "count_attempt).",
        extension=True,
    ),
    Tool(
        "log_artifact",
        a.LogArtifactArgs,
        r.ArtifactResult,
        "Record an artifact of a task you hold or completed; dependents see it in their assignment.",
        extension=True,
    ),
    Tool(
        "get_task_context",
        a.TaskContextArgs,
        r.TaskContextResult,
        "A task with a page of its progress log, blockers, artifacts and its dependencies' artifacts "
        "(next pages: cursor = next_cursor).",
        extension=True,
    ),
    Tool(
        "get_artifact",
        a.GetArtifactArgs,
        r.ArtifactContent,
        "One artifact with its data (lists carry only small data inline).",
        extension=True,
    ),
    Tool(
        "deregister_agent",
        a.AgentOnlyArgs,
        r.MessageResult,
        "Say this worker is stopping: it shows offline at once, and a task it still holds goes back to the "
        "queue. Register again to come back.",
        extension=True,
    ),
    Tool(
        "resolve_blocker",
        a.ResolveBlockerArgs,
        r.ResolveResult,
        OPERATOR + "Close a task's open blockers and put it back in the queue with its attempts reset.",
        extension=True,
        operator=True,
    ),
    Tool(
        "load_project",
        a.LoadProjectArgs,
        r.LoadResult,
        OPERATOR + "Add a project file's tasks (its text) to the board; ids already there are left alone. "
        "A bad file is refused whole; warnings say which tasks no worker can take.",
        extension=True,
        operator=True,
    ),
    Tool(
        "list_tasks",
        a.ListTasksArgs,
        r.TaskList,
        OPERATOR + "The board's tasks in board order (in progress, blocked, todo, done), with whole ids, "
        "a page at a time (limit, cursor = next_cursor).",
        extension=True,
        operator=True,
    ),
    Tool(
        "rerun_task",
        a.RerunTaskArgs,
        r.RerunResult,
        OPERATOR + "Put a done or blocked task back in the queue for a fresh run; its history is kept. "
        "dependents=true reruns the done or blocked tasks that depend on it too.",
        extension=True,
        operator=True,
    ),
)

TOOLS_BY_NAME: Final[dict[str, Tool]] = {t.name: t for t in TOOLS}
