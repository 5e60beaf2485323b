"""The agent loop: model turn → tool round → checkpoint, until `finish`, a blocker or a limit.

Ends:
- `finish(summary)` → the summary (plus turns and tokens) is the completion message;
- `report_blocker` → `TaskBlocked` with the model's description;
- a limit of `budget` reached (turns, tokens, the conversation's bytes, tool calls in one
  turn) → `TaskBlocked` naming the setting that raises it;
- the model endpoint failing past the retries, or no complete answer within
  LLM_TIMEOUT_SECONDS each time → `TaskBlocked` with the error;
- a file tool that never returns → `TaskReleased(count_attempt=True)`: the thread is
  abandoned, the task goes back counted as a failed attempt (after PM_MAX_ATTEMPTS the
  board blocks it), and this worker stays usable;
- the worker stopping (SIGTERM) → `TaskReleased` between turns, resumable from the checkpoint.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import structlog

from llm_worker.backends import ModelBackend, ModelError, RetryableModelError
from llm_worker.blocking import NeverReturned, run_abandonable
from llm_worker.budget import Spent, exhausted, too_many_calls
from llm_worker.conversation import (
    Entry,
    ModelTurn,
    ToolResult,
    ToolResults,
    UserText,
    entry_bytes,
    truncate,
)
from llm_worker.prompt import NUDGE, assignment_message, system_prompt
from llm_worker.retry import call_with_retries
from llm_worker.settings import LLMSettings
from llm_worker.toolbox import Toolbox, ToolNeverReturned
from llm_worker.tools import MODEL_TOOLS
from pm_worker import Assignment, Identity, TaskBlocked, TaskContext, TaskReleased

log = structlog.get_logger("llm_worker.agent")

MESSAGE_LIMIT = 9000  # the board takes messages up to 10 000 characters
TOOLS_BYTES = len(json.dumps([dataclasses.asdict(t) for t in MODEL_TOOLS]).encode())


def previous_run(checkpoint: Any) -> dict[str, Any] | None:
    """The `llm` part of a checkpoint this worker wrote, if the task carries one."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("llm"), dict):
        return dict(checkpoint["llm"])
    return None


class AgentLoop:
    def __init__(
        self,
        task: Assignment,
        ctx: TaskContext,
        backend: ModelBackend,
        settings: LLMSettings,
        identity: Identity,
        *,
        stop_allowance: float = 10.0,
    ) -> None:
        self.task = task
        self.ctx = ctx
        self.backend = backend
        self.settings = settings
        self.identity = identity
        self.stop_allowance = stop_allowance
        self.spent = Spent()
        self.resumed = previous_run(task.checkpoint)
        self.earlier_files = [str(f) for f in (self.resumed or {}).get("files_written") or []]
        self.folder = "."
        self.toolbox: Toolbox | None = None

    # -- messages ------------------------------------------------------------------

    def _files_written(self) -> list[str]:
        return list(self.toolbox.files_written) if self.toolbox else list(self.earlier_files)

    def _footer(self) -> str:
        files = ", ".join(self._files_written()) or "none"
        return (
            f"[llm {self.backend.provider}/{self.backend.model}: {self.spent.steps} model turns, "
            f"{self.spent.note()}; files written: {files}]"
        )

    def _fit(self, text: str) -> str:
        footer = self._footer()
        return f"{truncate(text, MESSAGE_LIMIT - len(footer))} {footer}"

    def _blocked(self, description: str, severity: str) -> TaskBlocked:
        return TaskBlocked(self._fit(description), severity=severity)

    # -- the loop ------------------------------------------------------------------

    def _task_folder(self) -> Path:
        """The task's folder, resolved and created (blocking: run off the loop)."""
        path = self.task.payload.get("path")
        # TaskBlocked if the payload's path leaves the workspace
        root = self.ctx.resolve(path if isinstance(path, str) else None, must_exist=False)
        root.mkdir(parents=True, exist_ok=True)
        return root

    async def _open_folder(self) -> Toolbox:
        try:
            root = await run_abandonable(
                self._task_folder, what="open the task folder", seconds=self.settings.llm_tool_timeout_seconds
            )
        except NeverReturned as exc:
            raise self._never_returned(f"{exc} (LLM_TOOL_TIMEOUT_SECONDS)") from None
        self.folder = str(root.relative_to(self.ctx.workspace)) if root != self.ctx.workspace else "."
        return Toolbox(
            self.ctx,
            root,
            self.settings,
            usage_note=self.spent.note,
            files_written=self.earlier_files,
            stop_allowance=self.stop_allowance,
        )

    async def run(self) -> str:
        s = self.settings
        self.toolbox = toolbox = await self._open_folder()
        system = system_prompt(
            agent_id=self.identity.agent_id,
            role=self.identity.role,
            skills=self.identity.skills,
            folder=self.folder,
            max_steps=s.llm_max_steps,
            max_tokens=s.llm_max_tokens_per_task,
            max_calls=s.llm_max_tool_calls_per_turn,
        )
        transcript: list[Entry] = []
        self.spent.transcript_bytes = len(system.encode()) + TOOLS_BYTES
        self._append(
            transcript, UserText(assignment_message(self.task, folder=self.folder, resumed=self.resumed))
        )
        await self.ctx.progress(
            1,
            f"LLM agent started ({self.backend.provider}/{self.backend.model}, "
            f"budget {s.llm_max_steps} turns / {s.llm_max_tokens_per_task} tokens)",
        )
        while True:
            if self.ctx.stopping:
                raise TaskReleased(
                    self._fit(
                        f"worker stopping after {self.spent.steps} model turns; resume from the checkpoint"
                    )
                )
            out_of_budget = exhausted(s, self.spent)
            if out_of_budget:
                raise self._blocked(out_of_budget, "medium")
            turn = await self._model_turn(system, transcript)
            too_many = too_many_calls(s, len(turn.tool_calls))
            if too_many:
                await self._checkpoint(f"refused {len(turn.tool_calls)} tool calls in one turn")
                raise self._blocked(too_many, "medium")
            self._append(transcript, turn.as_entry())
            if not turn.tool_calls:
                self._append(transcript, UserText(NUDGE))
                await self._checkpoint("no tool call; reminded the model to use the tools")
                continue
            results: list[ToolResult] = []
            ended: str | None = None
            blocker = None
            for call in turn.tool_calls:
                try:
                    outcome = await toolbox.run(call)
                except ToolNeverReturned as exc:
                    log.error(
                        "tool_never_returned", tool=exc.tool, arguments=exc.arguments, seconds=exc.seconds
                    )
                    await self._checkpoint(f"{exc.tool} never returned")
                    raise self._never_returned(str(exc)) from None
                results.append(ToolResult(call.id, call.name, outcome.content, outcome.is_error))
                log.info(
                    "tool_call",
                    tool=call.name,
                    is_error=outcome.is_error,
                    arguments=truncate(call.raw_arguments, s.llm_log_chars),
                    result=truncate(outcome.content, s.llm_log_chars),
                    result_bytes=len(outcome.content.encode()),
                )
                if outcome.finish is not None:
                    ended = outcome.finish
                    break
                if outcome.blocker is not None:
                    blocker = outcome.blocker
                    break
            self._append(transcript, ToolResults(tuple(results)))
            names = ", ".join(f"{r.name}{' (error)' if r.is_error else ''}" for r in results)
            await self._checkpoint(names)
            if ended is not None:
                footer = self._footer()
                return f"{truncate(ended, MESSAGE_LIMIT - len(footer))}\n\n{footer}"
            if blocker is not None:
                raise self._blocked(blocker.description, blocker.severity)

    def _append(self, transcript: list[Entry], entry: Entry) -> None:
        transcript.append(entry)
        self.spent.transcript_bytes += entry_bytes(entry)

    def _never_returned(self, what: str) -> TaskReleased:
        return TaskReleased(
            self._fit(
                f"{what}: the task folder's file system is not answering (a hung network mount?). Released "
                "as a failed attempt; after PM_MAX_ATTEMPTS the board blocks the task."
            ),
            count_attempt=True,
        )

    async def _complete(self, system: str, transcript: list[Entry]) -> ModelTurn:
        """One model call with a deadline on the whole of it: an answer that trickles in ends too."""
        s = self.settings
        try:
            async with asyncio.timeout(s.llm_timeout_seconds):
                return await self.backend.complete(system, transcript, MODEL_TOOLS, s.llm_max_output_tokens)
        except TimeoutError:
            raise RetryableModelError(
                f"no complete answer within {s.llm_timeout_seconds:g} s (LLM_TIMEOUT_SECONDS)"
            ) from None

    async def _model_turn(self, system: str, transcript: list[Entry]) -> ModelTurn:
        s = self.settings
        started = time.monotonic()
        try:
            turn = await call_with_retries(s, lambda: self._complete(system, transcript))
        except RetryableModelError as exc:
            raise self._blocked(
                f"the model endpoint {self.backend.endpoint} kept failing after "
                f"{s.llm_retry_attempts} attempts: {exc}",
                "high",
            ) from None
        except ModelError as exc:
            raise self._blocked(
                f"the model endpoint {self.backend.endpoint} refused the call: {exc}", "high"
            ) from None
        self.spent.steps += 1
        self.spent.usage = self.spent.usage + turn.usage
        log.info(
            "model_turn",
            step=self.spent.steps,
            provider=self.backend.provider,
            model=turn.model or self.backend.model,
            stop_reason=turn.stop_reason,
            text=truncate(turn.text, s.llm_log_chars),
            tool_calls=[f"{c.name}({truncate(c.raw_arguments, 120)})" for c in turn.tool_calls[:20]],
            tool_call_count=len(turn.tool_calls),
            input_tokens=turn.usage.input_tokens,
            output_tokens=turn.usage.output_tokens,
            total_input_tokens=self.spent.usage.input_tokens,
            total_output_tokens=self.spent.usage.output_tokens,
            transcript_bytes=self.spent.transcript_bytes,
            seconds=round(time.monotonic() - started, 3),
        )
        return turn

    async def _checkpoint(self, what: str) -> None:
        s, st = self.settings, self.spent
        data = {
            "llm": {
                "attempt": self.task.attempt,
                "steps": st.steps,
                "files_written": self._files_written(),
                "usage": st.usage.as_dict(),
                "transcript_bytes": st.transcript_bytes,
                "provider": self.backend.provider,
                "model": self.backend.model,
            }
        }
        await self.ctx.checkpoint(
            data, f"step {st.steps}/{s.llm_max_steps}: {truncate(what, 500)} ({st.note()})"
        )
