"""The conversation in a neutral form; each provider (`backends/`) turns it into its own wire format.

Keeping one transcript type means the agent loop is written once, and a tool call the
model sent (even one with broken arguments) is replayed to the same model exactly as it
came, next to the tool's answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolSpec:
    """A tool offered to the model: a name, what it does, a JSON schema of its arguments."""

    name: str
    description: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """One tool call from the model.

    `arguments` is None when what the model sent was not a JSON object; `error` says why
    and `raw_arguments` keeps the text so the call can be replayed verbatim.
    """

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str
    error: str | None = None


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    def describe(self) -> str:
        return f"tokens in {self.input_tokens} / out {self.output_tokens}"

    def as_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


@dataclass(frozen=True)
class UserText:
    text: str


@dataclass(frozen=True)
class AssistantTurn:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class ToolResult:
    call_id: str
    name: str
    content: str
    is_error: bool = False


@dataclass(frozen=True)
class ToolResults:
    results: tuple[ToolResult, ...]


Entry = UserText | AssistantTurn | ToolResults


@dataclass(frozen=True)
class ModelTurn:
    """What one model call gave back."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage
    stop_reason: str | None = None
    model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_entry(self) -> AssistantTurn:
        return AssistantTurn(self.text, self.tool_calls)


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (+{len(text) - limit} chars)"
