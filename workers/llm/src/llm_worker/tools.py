"""The tools the model may call, and how each one is carried out.

File tools work inside the task's folder only. Every path is resolved (symlinks
followed) and refused unless it stays inside; a refusal, like a malformed call, goes back
to the model as a tool error it can act on — never an exception out of the loop, never a
write outside. Writes also open the final file with `O_NOFOLLOW`, so a symlink planted
after the check is not followed.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llm_worker.conversation import ToolCall, ToolSpec, truncate
from llm_worker.settings import LLMSettings
from pm_worker import InvalidArgument, TaskContext

log = structlog.get_logger("llm_worker.tools")

MAX_LIST_ENTRIES = 500


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadFileArgs(_Args):
    path: str = Field(description="File path relative to the task folder")


class ListDirArgs(_Args):
    path: str = Field(
        default=".", description="Folder path relative to the task folder ('.' for the folder itself)"
    )


class WriteFileArgs(_Args):
    path: str = Field(description="File path relative to the task folder; missing folders are created")
    content: str = Field(description="The whole new content of the file (UTF-8 text)")


class ReportProgressArgs(_Args):
    percent: float = Field(ge=0, le=100, description="How far the task is, 0-100")
    message: str = Field(min_length=1, max_length=2000, description="What was done, what is next")


class ReportBlockerArgs(_Args):
    description: str = Field(
        min_length=1, max_length=5000, description="What stops the task and what would unblock it"
    )
    severity: Literal["low", "medium", "high", "critical"] = "medium"


class LogArtifactArgs(_Args):
    artifact_type: str = Field(
        min_length=1, max_length=100, description="e.g. file, report, api_docs, review"
    )
    description: str = Field(min_length=1, max_length=2000)
    location: str | None = Field(default=None, description="A path relative to the task folder, or a URL")
    data: Any = Field(default=None, description="Any JSON worth keeping with the artifact (small)")


class FinishArgs(_Args):
    summary: str = Field(
        min_length=1, max_length=8000, description="What was done; the task's completion message"
    )


TOOL_DESCRIPTIONS: dict[str, tuple[type[_Args], str]] = {
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


def _schema(model: type[_Args]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


TOOL_SPECS: tuple[ToolSpec, ...] = tuple(
    ToolSpec(name, description, _schema(model)) for name, (model, description) in TOOL_DESCRIPTIONS.items()
)


class PathRefused(Exception):
    """A path outside the task folder (or otherwise unusable); the message goes to the model."""


def safe_path(root: Path, relative: str) -> Path:
    """`relative` resolved inside `root` (already resolved); `PathRefused` for absolute paths and escapes."""
    text = relative.strip()
    if not text:
        raise PathRefused("empty path: give a path relative to the task folder, e.g. 'README.md' or '.'")
    if "\x00" in text:
        raise PathRefused("the path contains a NUL byte")
    if PurePosixPath(text).is_absolute() or PureWindowsPath(text).drive or text.startswith("~"):
        raise PathRefused(f"absolute path {text!r} refused: paths are relative to the task folder")
    candidate = (root / text).resolve()
    if candidate != root and root not in candidate.parents:
        raise PathRefused(
            f"path {text!r} leaves the task folder (it resolves outside it, through '..' or a "
            "symlink); only paths inside the task folder can be used"
        )
    return candidate


@dataclass
class ToolOutcome:
    content: str
    is_error: bool = False
    finish: str | None = None
    blocker: ReportBlockerArgs | None = None


def describe_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err["loc"]) or "arguments"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


class Toolbox:
    """Carries out the model's tool calls for one task; remembers which files it wrote."""

    def __init__(
        self,
        ctx: TaskContext,
        root: Path,
        settings: LLMSettings,
        usage_note: Callable[[], str] = lambda: "",
        files_written: list[str] | None = None,
    ) -> None:
        self.ctx = ctx
        self.root = root.resolve()
        self.settings = settings
        self.usage_note = usage_note
        self.files_written: list[str] = list(files_written or [])
        self.refused: list[str] = []

    def where(self, path: Path) -> str:
        """How the model should name `path`: relative to the task folder."""
        return str(path.relative_to(self.root)) if path != self.root else "."

    async def run(self, call: ToolCall) -> ToolOutcome:
        entry = TOOL_DESCRIPTIONS.get(call.name)
        if entry is None:
            return ToolOutcome(
                f"unknown tool {call.name!r}; the tools are: {', '.join(TOOL_DESCRIPTIONS)}", is_error=True
            )
        model, _ = entry
        schema = json.dumps(_schema(model)["properties"])
        if call.arguments is None:
            return ToolOutcome(
                f"{call.name}: {call.error or 'the arguments are not a JSON object'}. "
                f"Send a JSON object with these fields: {schema}",
                is_error=True,
            )
        try:
            args = model.model_validate(call.arguments)
        except ValidationError as exc:
            return ToolOutcome(
                f"{call.name}: invalid arguments ({describe_validation(exc)}). "
                f"Send a JSON object with these fields: {schema}",
                is_error=True,
            )
        try:
            return await self._dispatch(call.name, args)
        except PathRefused as exc:
            self.refused.append(str(exc))
            log.warning(
                "path_refused",
                tool=call.name,
                arguments=truncate(call.raw_arguments, self.settings.llm_log_chars),
                reason=str(exc),
            )
            return ToolOutcome(f"{call.name}: {exc}", is_error=True)
        except OSError as exc:
            return ToolOutcome(f"{call.name}: {exc.strerror or exc}", is_error=True)

    async def _dispatch(self, name: str, args: _Args) -> ToolOutcome:
        if isinstance(args, ListDirArgs):
            return await asyncio.to_thread(self._list_dir, args)
        if isinstance(args, ReadFileArgs):
            return await asyncio.to_thread(self._read_file, args)
        if isinstance(args, WriteFileArgs):
            return await self._write_file(args)
        if isinstance(args, ReportProgressArgs):
            note = self.usage_note()
            await self.ctx.progress(args.percent, f"{args.message} ({note})" if note else args.message)
            return ToolOutcome(f"progress recorded: {args.percent:g}%")
        if isinstance(args, LogArtifactArgs):
            return await self._log_artifact(args)
        if isinstance(args, ReportBlockerArgs):
            return ToolOutcome("blocker noted; the task ends here", blocker=args)
        if isinstance(args, FinishArgs):
            return ToolOutcome("finished", finish=args.summary)
        raise AssertionError(f"no handler for {name}")  # pragma: no cover - TOOL_DESCRIPTIONS and this agree

    def _list_dir(self, args: ListDirArgs) -> ToolOutcome:
        folder = safe_path(self.root, args.path)
        if not folder.exists():
            return ToolOutcome(f"list_dir: {args.path!r} does not exist", is_error=True)
        if not folder.is_dir():
            return ToolOutcome(f"list_dir: {args.path!r} is a file; use read_file", is_error=True)
        lines = []
        children = sorted(folder.iterdir(), key=lambda p: p.name)
        for child in children[:MAX_LIST_ENTRIES]:
            if child.is_symlink():
                lines.append(f"{child.name}@ (symlink)")
            elif child.is_dir():
                lines.append(f"{child.name}/")
            else:
                lines.append(f"{child.name} ({child.stat().st_size} bytes)")
        if len(children) > MAX_LIST_ENTRIES:
            lines.append(f"... and {len(children) - MAX_LIST_ENTRIES} more")
        header = f"{self.where(folder)}: {len(children)} entries"
        return ToolOutcome("\n".join([header, *lines]))

    def _read_file(self, args: ReadFileArgs) -> ToolOutcome:
        target = safe_path(self.root, args.path)
        if not target.exists():
            return ToolOutcome(f"read_file: {args.path!r} does not exist", is_error=True)
        if target.is_dir():
            return ToolOutcome(f"read_file: {args.path!r} is a folder; use list_dir", is_error=True)
        limit = self.settings.llm_read_max_bytes
        size = target.stat().st_size
        with target.open("rb") as fh:
            data = fh.read(limit)
        if b"\x00" in data:
            return ToolOutcome(
                f"read_file: {args.path!r} is a binary file ({size} bytes); not shown", is_error=True
            )
        text = data.decode("utf-8", errors="replace")
        if size > limit:
            text += f"\n… [truncated: showing the first {limit} of {size} bytes]"
        return ToolOutcome(text)

    async def _write_file(self, args: WriteFileArgs) -> ToolOutcome:
        target = safe_path(self.root, args.path)
        data = args.content.encode("utf-8")
        if len(data) > self.settings.llm_write_max_bytes:
            return ToolOutcome(
                f"write_file: content is {len(data)} bytes; the limit is "
                f"{self.settings.llm_write_max_bytes} (LLM_WRITE_MAX_BYTES)",
                is_error=True,
            )
        if target == self.root or target.is_dir():
            return ToolOutcome(f"write_file: {args.path!r} is a folder", is_error=True)
        await asyncio.to_thread(self._write_inside, target, data)
        shown = self.ctx.relative(target)
        if shown not in self.files_written:
            self.files_written.append(shown)
        return ToolOutcome(f"wrote {len(data)} bytes to {self.where(target)}")

    def _write_inside(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        parent = target.parent.resolve()
        if parent != self.root and self.root not in parent.parents:  # changed under us since safe_path
            raise PathRefused(f"{self.where(target)}: its folder now resolves outside the task folder")
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PathRefused(
                    f"{self.where(target)} is a symlink; it is not followed for writing"
                ) from None
            raise
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)

    async def _log_artifact(self, args: LogArtifactArgs) -> ToolOutcome:
        location = args.location
        if location and "://" not in location:
            location = self.ctx.relative(safe_path(self.root, location))
        try:
            artifact_id = await self.ctx.artifact(args.artifact_type, args.description, location, args.data)
        except InvalidArgument as exc:
            return ToolOutcome(f"log_artifact: PM Agent refused it: {exc.message}", is_error=True)
        return ToolOutcome(f"artifact {artifact_id} recorded")
