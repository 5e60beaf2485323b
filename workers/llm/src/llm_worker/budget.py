"""Every limit of one task attempt, and the blocker text that names the setting raising it.

Turns and tokens are the cost side (tokens as the endpoint reports them). Calls and bytes
are measured here, because an endpoint's usage numbers are whatever it says: a hostile or
broken one can report 0 (or -1,000,000) tokens while the conversation grows by megabytes a
turn. So the conversation's size in bytes (`Spent.transcript_bytes`: system prompt, tool
schemas and every entry, as UTF-8) is capped on its own, and so are the tool calls of one
turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_worker.conversation import Usage
from llm_worker.settings import LLMSettings


@dataclass
class Spent:
    """What one attempt has used so far."""

    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    transcript_bytes: int = 0

    def note(self) -> str:
        return self.usage.describe()


def _then(setting: str) -> str:
    return f"Raise {setting} or split the task, then resolve this blocker."


def exhausted(settings: LLMSettings, spent: Spent) -> str | None:
    """Why no further model call may be made, or None."""
    s = settings
    if spent.steps >= s.llm_max_steps:
        return (
            f"LLM budget ran out: {spent.steps} model turns used (LLM_MAX_STEPS={s.llm_max_steps}) "
            f"without the model calling finish. {_then('LLM_MAX_STEPS')}"
        )
    if spent.usage.total >= s.llm_max_tokens_per_task:
        return (
            f"LLM budget ran out: {spent.usage.total} tokens used "
            f"(LLM_MAX_TOKENS_PER_TASK={s.llm_max_tokens_per_task}) without the model calling finish. "
            f"{_then('LLM_MAX_TOKENS_PER_TASK')}"
        )
    if spent.transcript_bytes >= s.llm_max_transcript_bytes:
        return (
            f"LLM budget ran out: the conversation is {spent.transcript_bytes} bytes, measured by the "
            f"worker (LLM_MAX_TRANSCRIPT_BYTES={s.llm_max_transcript_bytes}), after {spent.steps} model "
            f"turns without the model calling finish. {_then('LLM_MAX_TRANSCRIPT_BYTES')}"
        )
    return None


def too_many_calls(settings: LLMSettings, asked: int) -> str | None:
    """Why a turn asking for `asked` tool calls is not carried out, or None."""
    cap = settings.llm_max_tool_calls_per_turn
    if asked <= cap:
        return None
    return (
        f"The model asked for {asked} tool calls in one turn; at most {cap} are carried out "
        f"(LLM_MAX_TOOL_CALLS_PER_TURN={cap}), so none of them ran. {_then('LLM_MAX_TOOL_CALLS_PER_TURN')}"
    )
