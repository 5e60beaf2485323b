"""What the agent loop needs from a model provider, whatever its wire format."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from llm_worker.conversation import Entry, ModelTool, ModelTurn


class ModelBackend(Protocol):
    """One provider's client: `AnthropicBackend` (Messages API) or `OpenAIBackend` (chat completions)."""

    provider: str
    model: str
    endpoint: str

    async def check(self) -> None:
        """Raise `StartupError` unless the endpoint answers (and accepts the key, where it can tell)."""

    async def complete(
        self, system: str, transcript: Sequence[Entry], tools: Sequence[ModelTool], max_tokens: int
    ) -> ModelTurn:
        """One model call. Raise `RetryableModelError` or `ModelError` on failure."""

    async def aclose(self) -> None: ...
