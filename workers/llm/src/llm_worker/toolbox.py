"""Carrying out the model's tool calls for one task, each within a time limit and a size limit.

- A malformed call, a refused path, a missing or non-regular file: a tool error the model
  can act on, never an exception out of the loop, never a write outside the folder.
- File tools run in abandonable threads (`blocking`); one that does not return within
  LLM_TOOL_TIMEOUT_SECONDS raises `ToolNeverReturned`, which ends the attempt.
- Board tools (progress, artifacts) get the same limit; past it the model gets a tool
  error (the board being slow is not the task's fault, and pm_worker keeps the lease).
- Every result is cut to LLM_TOOL_RESULT_MAX_BYTES (UTF-8), saying so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import structlog
from pydantic import ValidationError

from llm_worker.blocking import NeverReturned, run_abandonable
from llm_worker.conversation import ToolCall, truncate
from llm_worker.settings import LLMSettings
from llm_worker.tools import (
    TOOL_DESCRIPTIONS,
    FinishArgs,
    ListDirArgs,
    LogArtifactArgs,
    ModelToolArgs,
    ReadFileArgs,
    ReportBlockerArgs,
    ReportProgressArgs,
    WriteFileArgs,
    describe_validation,
    schema_of,
)
from llm_worker.workspace_files import (
    MAX_LIST_SCAN,
    FileProblem,
    PathRefused,
    list_folder,
    read_regular,
    safe_path,
    write_regular,
)
from pm_worker import InvalidArgument, TaskContext

log = structlog.get_logger("llm_worker.toolbox")

T = TypeVar("T")


@dataclass
class ToolOutcome:
    content: str
    is_error: bool = False
    finish: str | None = None
    blocker: ReportBlockerArgs | None = None


class ToolNeverReturned(Exception):
    """A file tool missed LLM_TOOL_TIMEOUT_SECONDS: its thread is abandoned, the attempt must end."""

    def __init__(self, tool: str, arguments: str, seconds: float) -> None:
        super().__init__(
            f"{tool}({arguments}) did not return within {seconds:g} s (LLM_TOOL_TIMEOUT_SECONDS)"
        )
        self.tool = tool
        self.arguments = arguments
        self.seconds = seconds


class BoardTooSlow(Exception):
    """PM Agent did not answer a board tool within LLM_TOOL_TIMEOUT_SECONDS."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"PM Agent did not answer within {seconds:g} s")
        self.seconds = seconds


def cap_result(text: str, limit: int) -> str:
    """`text` in at most `limit` UTF-8 bytes, the cut said at the end."""
    data = text.encode()
    if len(data) <= limit:
        return text
    note = f"\n… [tool result cut to {limit} of {len(data)} bytes (LLM_TOOL_RESULT_MAX_BYTES)]"
    keep = max(0, limit - len(note.encode()))
    return data[:keep].decode("utf-8", errors="ignore") + note


class Toolbox:
    """Carries out the model's tool calls for one task; remembers which files it wrote.

    `root` is the task folder, already resolved; `stop_allowance` is how long a file tool
    may still run once the worker is stopping (half its shutdown grace), so a stuck one is
    counted as never returned while there is time to say so.
    """

    def __init__(
        self,
        ctx: TaskContext,
        root: Path,
        settings: LLMSettings,
        usage_note: Callable[[], str] = lambda: "",
        files_written: list[str] | None = None,
        stop_allowance: float = 10.0,
    ) -> None:
        self.ctx = ctx
        self.root = root
        self.settings = settings
        self.usage_note = usage_note
        self.stop_allowance = stop_allowance
        self.files_written: list[str] = list(files_written or [])
        self.refused: list[str] = []

    def where(self, path: Path) -> str:
        """How the model should name `path`: relative to the task folder."""
        return str(path.relative_to(self.root)) if path != self.root else "."

    def shown(self, path: Path) -> str:
        """How another worker finds `path` (resolved, inside the folder): relative to the workspace."""
        try:
            return str(path.relative_to(self.ctx.workspace))
        except ValueError:
            return str(path)

    async def run(self, call: ToolCall) -> ToolOutcome:
        """The call's outcome, its content cut to LLM_TOOL_RESULT_MAX_BYTES; `ToolNeverReturned` if stuck."""
        outcome = await self._run(call)
        outcome.content = cap_result(outcome.content, self.settings.llm_tool_result_max_bytes)
        return outcome

    async def _run(self, call: ToolCall) -> ToolOutcome:
        entry = TOOL_DESCRIPTIONS.get(call.name)
        if entry is None:
            return ToolOutcome(
                f"unknown tool {truncate(call.name, 100)!r}; the tools are: {', '.join(TOOL_DESCRIPTIONS)}",
                is_error=True,
            )
        model, _ = entry
        schema = json.dumps(schema_of(model)["properties"])
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
        except NeverReturned as exc:
            raise ToolNeverReturned(call.name, truncate(call.raw_arguments, 200), exc.seconds) from None
        except PathRefused as exc:
            self.refused.append(str(exc))
            log.warning(
                "path_refused",
                tool=call.name,
                arguments=truncate(call.raw_arguments, self.settings.llm_log_chars),
                reason=str(exc),
            )
            return ToolOutcome(f"{call.name}: {exc}", is_error=True)
        except FileProblem as exc:
            return ToolOutcome(f"{call.name}: {exc}", is_error=True)
        except BoardTooSlow as exc:
            return ToolOutcome(
                f"{call.name}: {exc} (LLM_TOOL_TIMEOUT_SECONDS), so it may not be recorded; go on with the task",
                is_error=True,
            )
        except OSError as exc:
            return ToolOutcome(f"{call.name}: {exc.strerror or exc}", is_error=True)

    async def _dispatch(self, name: str, args: ModelToolArgs) -> ToolOutcome:
        if isinstance(args, ListDirArgs):
            return await self._in_thread(name, lambda: self._list_dir(args))
        if isinstance(args, ReadFileArgs):
            return await self._in_thread(name, lambda: self._read_file(args))
        if isinstance(args, WriteFileArgs):
            return await self._write_file(args)
        if isinstance(args, ReportProgressArgs):
            note = self.usage_note()
            message = f"{args.message} ({note})" if note else args.message
            await self._on_board(self.ctx.progress(args.percent, message))
            return ToolOutcome(f"progress recorded: {args.percent:g}%")
        if isinstance(args, LogArtifactArgs):
            return await self._log_artifact(args)
        if isinstance(args, ReportBlockerArgs):
            return ToolOutcome("blocker noted; the task ends here", blocker=args)
        if isinstance(args, FinishArgs):
            return ToolOutcome("finished", finish=args.summary)
        raise AssertionError(f"no handler for {name}")  # pragma: no cover - TOOL_DESCRIPTIONS and this agree

    # -- off the loop, with a deadline ----------------------------------------------

    def _hurry(self) -> float | None:
        return self.stop_allowance if self.ctx.stopping else None

    async def _in_thread(self, what: str, fn: Callable[[], T]) -> T:
        return await run_abandonable(
            fn, what=what, seconds=self.settings.llm_tool_timeout_seconds, hurry=self._hurry
        )

    async def _on_board(self, call: Awaitable[T]) -> T:
        """Await a board call within the tool limit; `BoardTooSlow` past it."""
        limit = self.settings.llm_tool_timeout_seconds
        try:
            async with asyncio.timeout(limit):
                return await call
        except TimeoutError:
            raise BoardTooSlow(limit) from None

    # -- the file tools (blocking; run in `_in_thread`) -------------------------------

    def _list_dir(self, args: ListDirArgs) -> ToolOutcome:
        folder = safe_path(self.root, args.path)
        lines, count = list_folder(self.root, folder)
        more = "at least " if count > MAX_LIST_SCAN else ""
        if count > len(lines):
            lines.append(f"... and {more}{count - len(lines)} more")
        return ToolOutcome("\n".join([f"{self.where(folder)}: {more}{count} entries", *lines]))

    def _read_file(self, args: ReadFileArgs) -> ToolOutcome:
        target = safe_path(self.root, args.path)
        limit = self.settings.llm_read_max_bytes
        data, size = read_regular(self.root, target, limit)
        if b"\x00" in data:
            return ToolOutcome(
                f"read_file: {args.path!r} is a binary file ({size} bytes); not shown", is_error=True
            )
        text = data.decode("utf-8", errors="replace")
        if size > limit:
            text += f"\n… [truncated: showing the first {limit} of {size} bytes]"
        return ToolOutcome(text)

    def _write_inside(self, relative: str, data: bytes) -> Path:
        target = safe_path(self.root, relative)
        if target == self.root:
            raise FileProblem(f"{relative!r} is a folder")
        write_regular(self.root, target, data)
        return target

    async def _write_file(self, args: WriteFileArgs) -> ToolOutcome:
        data = args.content.encode("utf-8")
        if len(data) > self.settings.llm_write_max_bytes:
            return ToolOutcome(
                f"write_file: content is {len(data)} bytes; the limit is "
                f"{self.settings.llm_write_max_bytes} (LLM_WRITE_MAX_BYTES)",
                is_error=True,
            )
        target = await self._in_thread("write_file", lambda: self._write_inside(args.path, data))
        shown = self.shown(target)
        if shown not in self.files_written:
            self.files_written.append(shown)
        return ToolOutcome(f"wrote {len(data)} bytes to {self.where(target)}")

    async def _log_artifact(self, args: LogArtifactArgs) -> ToolOutcome:
        location = args.location
        if location and "://" not in location:
            relative = location
            location = await self._in_thread(
                "log_artifact", lambda: self.shown(safe_path(self.root, relative))
            )
        try:
            artifact_id = await self._on_board(
                self.ctx.artifact(args.artifact_type, args.description, location, args.data)
            )
        except InvalidArgument as exc:
            return ToolOutcome(f"log_artifact: PM Agent refused it: {exc.message}", is_error=True)
        return ToolOutcome(f"artifact {artifact_id} recorded")
