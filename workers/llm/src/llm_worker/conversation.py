"""The conversation in a neutral form; each provider (`backends/`) turns it into its own wire format.

Keeping one transcript type means the agent loop is written once, and a tool call the
model sent (even one with broken arguments) is replayed to the same model exactly as it
came, next to the tool's answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelTool:
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


def counted(value: Any) -> int:
    """A token count as an endpoint reported it: a non-negative int, else 0 (it may lie or be broken)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(0, int(value)) if value == value and abs(value) != float("inf") else 0


@dataclass(frozen=True)
class Usage:
    """Tokens as the endpoint reported them. Only the budget's cost side: sizes are measured here."""

    input_tokens: int = 0
    output_tokens: int = 0

    @classmethod
    def reported(cls, input_tokens: Any, output_tokens: Any) -> Usage:
        return cls(counted(input_tokens), counted(output_tokens))

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


def entry_bytes(entry: Entry) -> int:
    """The UTF-8 bytes an entry adds to every later request (texts, tool calls, results)."""
    if isinstance(entry, UserText):
        return len(entry.text.encode())
    if isinstance(entry, AssistantTurn):
        calls = sum(
            len(c.id) + len(c.name.encode()) + len(c.raw_arguments.encode()) for c in entry.tool_calls
        )
        return len(entry.text.encode()) + calls
    return sum(len(r.call_id) + len(r.content.encode()) for r in entry.results)


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (+{len(text) - limit} chars)"
