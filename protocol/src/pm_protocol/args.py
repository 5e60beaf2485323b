"""Argument models for every tool: strict types, unknown fields refused, protocol limits.

The stub validates every call with these (so a bad call comes back as the protocol's JSON
error, never as the SDK's "Error executing tool ..." text) and advertises their JSON
schemas in `tools/list`; `pm_worker` builds its calls from the same models, so what a
worker sends and what the stub accepts cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue

from pm_protocol.limits import (
    MAX_CURSOR,
    MAX_ID,
    MAX_JSON_BYTES,
    MAX_NAME,
    MAX_PAGE_LIMIT,
    MAX_PROJECT_TEXT,
    MAX_SKILL_LEN,
    MAX_SKILLS,
    MAX_TEXT,
    MAX_WAIT_SECONDS,
    PAGE_LIMIT,
    json_size,
)


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must be printable text (no control characters or newlines)")
    return value


def skill_name(value: str) -> str:
    """A skill name that means one thing wherever skills are written one after another.

    Commas separate skills in the metrics' `skills` label (`a,b`, the label KEDA queries
    match) and in `AGENT_SKILLS=a,b` / `add-task --skills a,b`: a skill `testing,unit-testing`
    would be counted as the two skills `testing` and `unit-testing` (issue 24 item 6).
    """
    if "," in value:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        raise ValueError(
            f"skill {value[:120]!r} contains a comma, which separates skills (in the metrics' skills label "
            f"and in AGENT_SKILLS=a,b); give each skill on its own: {parts!r}, or join words with '-'"
        )
    if not value.isprintable():
        raise ValueError(
            f"skill {value[:120]!r} must be printable text (no control characters, tabs or newlines)"
        )
    if value != value.strip():
        raise ValueError(
            f"skill {value[:120]!r} starts or ends with a space; skills match exactly (only case is "
            f"ignored), so it would never match {value.strip()!r}: remove the spaces"
        )
    return value


def _json_limit(value: JsonValue) -> JsonValue:
    if json_size(value) > MAX_JSON_BYTES:
        raise ValueError(
            f"is larger than {MAX_JSON_BYTES} bytes of JSON (256 KiB); store big data elsewhere and send its location"
        )
    return value


AgentId = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ID, description="Your agent id (≤200 printable characters)."),
    AfterValidator(_printable),
]
TaskId = Annotated[str, Field(min_length=1, max_length=MAX_ID, description="A task id from your assignment.")]
# Shown to people (status tables, logs): printable text only, like agent ids.
Name = Annotated[
    str,
    Field(
        min_length=1, max_length=MAX_NAME, description="≤200 printable characters (no control characters)."
    ),
    AfterValidator(_printable),
]
Label = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Skill = Annotated[str, Field(min_length=1, max_length=MAX_SKILL_LEN), AfterValidator(skill_name)]
Json = Annotated[JsonValue, AfterValidator(_json_limit)]
Limit = Annotated[
    int,
    Field(
        ge=1, le=MAX_PAGE_LIMIT, description=f"Entries per page (1-{MAX_PAGE_LIMIT}, default {PAGE_LIMIT})."
    ),
]
Cursor = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_CURSOR,
        description="`next_cursor` of the previous page, unchanged; omit it for the first page.",
    ),
]
ReportStatus = Literal["in_progress", "completed", "blocked"]
Severity = Literal["low", "medium", "high", "critical"]


class ToolArgs(BaseModel):
    """Strict: a string where a number belongs, or an unknown argument, is refused, not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)

    def wire(self) -> dict[str, object]:
        """The arguments as sent: only what was given (an omitted optional stays omitted)."""
        return self.model_dump(mode="json", exclude_unset=True)


class NoArgs(ToolArgs):
    pass


class RegisterAgentArgs(ToolArgs):
    agent_id: AgentId
    name: Name
    role: Name
    skills: Annotated[list[Skill], Field(max_length=MAX_SKILLS, description="Skills (≤64, each ≤100 chars).")]


class RequestNextTaskArgs(ToolArgs):
    agent_id: AgentId
    wait_seconds: Annotated[
        float,
        Field(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Long-poll: wait up to this many seconds (0-30) for a task.",
        ),
    ] = 0


class ReportTaskProgressArgs(ToolArgs):
    agent_id: AgentId
    task_id: TaskId
    status: ReportStatus
    progress: Annotated[float, Field(ge=0, le=100, description="Percent done, 0-100.")]
    message: Text
    checkpoint: Annotated[Json, Field(description="Any JSON (≤256 KiB) to resume from after a restart.")] = (
        None
    )


class ReportBlockerArgs(ToolArgs):
    agent_id: AgentId
    task_id: TaskId
    blocker_description: Annotated[Text, Field(min_length=1)]
    severity: Severity = "medium"


class AgentOnlyArgs(ToolArgs):
    agent_id: AgentId


class PingArgs(ToolArgs):
    echo: Text | None = None


class ReleaseTaskArgs(ToolArgs):
    agent_id: AgentId
    task_id: TaskId
    reason: Text
    count_attempt: Annotated[
        bool,
        Field(description="Count this release as a failed attempt, like a lease expiry (PM_MAX_ATTEMPTS)."),
    ] = False


class LogArtifactArgs(ToolArgs):
    agent_id: AgentId
    task_id: TaskId
    artifact_type: Label
    description: Text
    location: Text | None = None
    data: Annotated[Json, Field(description="Any JSON (≤256 KiB).")] = None


class TaskOnlyArgs(ToolArgs):
    task_id: TaskId


class TaskContextArgs(ToolArgs):
    task_id: TaskId
    limit: Limit = PAGE_LIMIT
    cursor: Cursor | None = None


class PageArgs(ToolArgs):
    limit: Limit = PAGE_LIMIT
    cursor: Cursor | None = None


class GetArtifactArgs(ToolArgs):
    artifact_id: Annotated[int, Field(ge=1, description="An artifact_id from an artifact list.")]


class ResolveBlockerArgs(ToolArgs):
    task_id: TaskId
    resolution: Text


# -- operator tools (docs/protocol.md, "Operator tools") ----------------------------------


class LoadProjectArgs(ToolArgs):
    text: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_PROJECT_TEXT,
            description="A project file's text (YAML, or JSON), as docs/protocol.md 'Project file' describes.",
        ),
    ]
    source: Annotated[
        Name, Field(description="What to call the file in messages, e.g. the path the operator gave.")
    ] = "project file"


class ListTasksArgs(PageArgs):
    """A page of the board's tasks in board order (the same `limit`/`cursor` as every list)."""


class RerunTaskArgs(ToolArgs):
    task_id: TaskId
    reason: Text = ""
    dependents: Annotated[
        bool, Field(description="Also rerun every done or blocked task that depends on it, directly or not.")
    ] = False


HINTS: dict[str, str] = {
    "agent_id": "a non-empty string of at most 200 printable characters",
    "task_id": "the task_id string from your assignment (at most 200 characters)",
    "name": "a non-empty string of at most 200 printable characters (no control characters or newlines)",
    "role": "a non-empty string of at most 200 printable characters (no control characters or newlines)",
    "artifact_type": "a non-empty string of at most 200 characters",
    "skills": (
        "a list of at most 64 skills, each a non-empty string of at most 100 printable characters "
        'without commas or spaces at either end, e.g. ["python", "testing"]'
    ),
    "wait_seconds": "a number from 0 to 30",
    "status": "one of 'in_progress', 'completed', 'blocked'",
    "progress": "a number from 0 to 100",
    "message": "a string of at most 10000 characters",
    "blocker_description": "a non-empty string of at most 10000 characters",
    "severity": "one of 'low', 'medium', 'high', 'critical'",
    "reason": "a string of at most 10000 characters",
    "description": "a string of at most 10000 characters",
    "location": "a string of at most 10000 characters, or null",
    "resolution": "a string of at most 10000 characters",
    "echo": "a string of at most 10000 characters",
    "checkpoint": "any JSON value of at most 256 KiB",
    "data": "any JSON value of at most 256 KiB",
    "limit": f"a whole number from 1 to {MAX_PAGE_LIMIT}",
    "cursor": "the next_cursor string of the previous page, unchanged (omit it for the first page)",
    "artifact_id": "the artifact_id (a whole number) of an artifact listed in an assignment or task context",
    "text": "the project file's text (YAML or JSON), at most 768 KiB",
    "source": "a name for the file in messages (at most 200 printable characters)",
    "dependents": "true or false",
}
