"""The agent loop: model turn → tool round → checkpoint, until `finish`, a blocker or the budget.

Ends:
- `finish(summary)` → the summary (plus turns and tokens) is the completion message;
- `report_blocker` → `TaskBlocked` with the model's description;
- `LLM_MAX_STEPS` turns or `LLM_MAX_TOKENS_PER_TASK` tokens used → `TaskBlocked` saying so;
- the model endpoint failing past the retries → `TaskBlocked` with the error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from llm_worker.backends import ModelBackend, ModelError, RetryableModelError
from llm_worker.conversation import Entry, ModelTurn, ToolResult, ToolResults, Usage, UserText, truncate
from llm_worker.prompt import NUDGE, assignment_message, system_prompt
from llm_worker.retry import call_with_retries
from llm_worker.settings import LLMSettings
from llm_worker.tools import TOOL_SPECS, Toolbox
from pm_worker import Assignment, Identity, TaskBlocked, TaskContext

log = structlog.get_logger("llm_worker.agent")

MESSAGE_LIMIT = 9000  # the board takes messages up to 10 000 characters


@dataclass
class LoopState:
    steps: int = 0
    usage: Usage = field(default_factory=Usage)

    def note(self) -> str:
        return self.usage.describe()


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
    ) -> None:
        self.task = task
        self.ctx = ctx
        self.backend = backend
        self.settings = settings
        self.identity = identity
        self.state = LoopState()
        self.resumed = previous_run(task.checkpoint)
        path = task.payload.get("path")
        folder_rel = path if isinstance(path, str) else None
        self.root = ctx.resolve(folder_rel, must_exist=False)  # TaskBlocked if the payload points outside
        self.root.mkdir(parents=True, exist_ok=True)
        self.folder = ctx.relative(self.root) if self.root != ctx.workspace else "."
        earlier_files = [str(f) for f in (self.resumed or {}).get("files_written") or []]
        self.toolbox = Toolbox(
            ctx, self.root, settings, usage_note=self.state.note, files_written=earlier_files
        )

    def _budget_left(self) -> str | None:
        s, st = self.settings, self.state
        if st.steps >= s.llm_max_steps:
            return (
                f"LLM budget ran out: {st.steps} model turns used (LLM_MAX_STEPS={s.llm_max_steps}) "
                f"without the model calling finish"
            )
        if st.usage.total >= s.llm_max_tokens_per_task:
            return (
                f"LLM budget ran out: {st.usage.total} tokens used "
                f"(LLM_MAX_TOKENS_PER_TASK={s.llm_max_tokens_per_task}) without the model calling finish"
            )
        return None

    def _footer(self) -> str:
        files = ", ".join(self.toolbox.files_written) or "none"
        return (
            f"[llm {self.backend.provider}/{self.backend.model}: {self.state.steps} model turns, "
            f"{self.state.note()}; files written: {files}]"
        )

    def _blocked(self, description: str, severity: str) -> TaskBlocked:
        footer = self._footer()
        return TaskBlocked(
            f"{truncate(description, MESSAGE_LIMIT - len(footer))} {footer}", severity=severity
        )

    async def run(self) -> str:
        s = self.settings
        system = system_prompt(
            agent_id=self.identity.agent_id,
            role=self.identity.role,
            skills=self.identity.skills,
            folder=self.folder,
            max_steps=s.llm_max_steps,
            max_tokens=s.llm_max_tokens_per_task,
        )
        transcript: list[Entry] = [
            UserText(assignment_message(self.task, folder=self.folder, resumed=self.resumed))
        ]
        await self.ctx.progress(
            1,
            f"LLM agent started ({self.backend.provider}/{self.backend.model}, "
            f"budget {s.llm_max_steps} turns / {s.llm_max_tokens_per_task} tokens)",
        )
        while True:
            exhausted = self._budget_left()
            if exhausted:
                raise self._blocked(
                    f"{exhausted}. Raise the budget or split the task, then resolve this blocker.", "medium"
                )
            turn = await self._model_turn(system, transcript)
            transcript.append(turn.as_entry())
            if not turn.tool_calls:
                transcript.append(UserText(NUDGE))
                await self._checkpoint("no tool call; reminded the model to use the tools")
                continue
            results: list[ToolResult] = []
            ended: str | None = None
            blocker = None
            for call in turn.tool_calls:
                outcome = await self.toolbox.run(call)
                results.append(ToolResult(call.id, call.name, outcome.content, outcome.is_error))
                log.info(
                    "tool_call",
                    tool=call.name,
                    is_error=outcome.is_error,
                    arguments=truncate(call.raw_arguments, s.llm_log_chars),
                    result=truncate(outcome.content, s.llm_log_chars),
                )
                if outcome.finish is not None:
                    ended = outcome.finish
                    break
                if outcome.blocker is not None:
                    blocker = outcome.blocker
                    break
            transcript.append(ToolResults(tuple(results)))
            names = ", ".join(f"{r.name}{' (error)' if r.is_error else ''}" for r in results)
            await self._checkpoint(names)
            if ended is not None:
                footer = self._footer()
                return f"{truncate(ended, MESSAGE_LIMIT - len(footer))}\n\n{footer}"
            if blocker is not None:
                raise self._blocked(blocker.description, blocker.severity)

    async def _model_turn(self, system: str, transcript: list[Entry]) -> ModelTurn:
        s = self.settings
        started = time.monotonic()
        try:
            turn = await call_with_retries(
                s, lambda: self.backend.complete(system, transcript, TOOL_SPECS, s.llm_max_output_tokens)
            )
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
        self.state.steps += 1
        self.state.usage = self.state.usage + turn.usage
        log.info(
            "model_turn",
            step=self.state.steps,
            provider=self.backend.provider,
            model=turn.model or self.backend.model,
            stop_reason=turn.stop_reason,
            text=truncate(turn.text, s.llm_log_chars),
            tool_calls=[f"{c.name}({truncate(c.raw_arguments, 120)})" for c in turn.tool_calls],
            input_tokens=turn.usage.input_tokens,
            output_tokens=turn.usage.output_tokens,
            total_input_tokens=self.state.usage.input_tokens,
            total_output_tokens=self.state.usage.output_tokens,
            seconds=round(time.monotonic() - started, 3),
        )
        return turn

    async def _checkpoint(self, what: str) -> None:
        s, st = self.settings, self.state
        data = {
            "llm": {
                "attempt": self.task.attempt,
                "steps": st.steps,
                "files_written": list(self.toolbox.files_written),
                "usage": st.usage.as_dict(),
                "provider": self.backend.provider,
                "model": self.backend.model,
            }
        }
        await self.ctx.checkpoint(
            data, f"step {st.steps}/{s.llm_max_steps}: {truncate(what, 500)} ({st.note()})"
        )
