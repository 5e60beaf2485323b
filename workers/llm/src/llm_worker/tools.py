"""The tools offered to the model: their arguments (pydantic models) and the JSON schemas sent.

What each one does is `toolbox.Toolbox`; the file rules are `workspace_files`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llm_worker.conversation import ModelTool
from pm_protocol.args import Severity


class ModelToolArgs(BaseModel):
    """Strict about names: an unknown field goes back to the model as an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class ReadFileArgs(ModelToolArgs):
    path: str = Field(description="File path relative to the task folder")


class ListDirArgs(ModelToolArgs):
    path: str = Field(
        default=".", description="Folder path relative to the task folder ('.' for the folder itself)"
    )


class WriteFileArgs(ModelToolArgs):
    path: str = Field(description="File path relative to the task folder; missing folders are created")
    content: str = Field(description="The whole new content of the file (UTF-8 text)")


class ReportProgressArgs(ModelToolArgs):
    percent: float = Field(ge=0, le=100, description="How far the task is, 0-100")
    message: str = Field(min_length=1, max_length=2000, description="What was done, what is next")


class ReportBlockerArgs(ModelToolArgs):
    description: str = Field(
        min_length=1, max_length=5000, description="What stops the task and what would unblock it"
    )
    severity: Severity = "medium"


class LogArtifactArgs(ModelToolArgs):
    artifact_type: str = Field(
        min_length=1, max_length=100, description="e.g. file, report, api_docs, review"
    )
    description: str = Field(min_length=1, max_length=2000)
    location: str | None = Field(default=None, description="A path relative to the task folder, or a URL")
    data: Any = Field(default=None, description="Any JSON worth keeping with the artifact (small)")


class FinishArgs(ModelToolArgs):
    summary: str = Field(
        min_length=1, max_length=8000, description="What was done; the task's completion message"
    )


TOOL_DESCRIPTIONS: dict[str, tuple[type[ModelToolArgs], str]] = {
    "list_dir": (
        ListDirArgs,
        "List a folder of the task's workspace (folders end in '/', files show their size).",
    ),
    "read_file": (ReadFileArgs, "Read a text file of the task's workspace."),
    "write_file": (WriteFileArgs, "Create or replace a text file in the task's workspace."),
    "report_progress": (ReportProgressArgs, "Tell PM Agent how far the task is."),
    "report_blocker": (
        ReportBlockerArgs,
        "Report that the task cannot go on and why. This ends the task as blocked; use it only "
        "when you cannot proceed.",
    ),
    "log_artifact": (LogArtifactArgs, "Record something you produced so later tasks can find it."),
    "finish": (FinishArgs, "Finish the task with a summary of what was done. Call it once, last."),
}


def schema_of(model: type[ModelToolArgs]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


MODEL_TOOLS: tuple[ModelTool, ...] = tuple(
    ModelTool(name, description, schema_of(model)) for name, (model, description) in TOOL_DESCRIPTIONS.items()
)


def describe_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err["loc"]) or "arguments"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
