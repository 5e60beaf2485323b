"""What the agent loop needs from a model, whatever dialect it speaks; errors; the factory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from llm_worker.conversation import Entry, ModelTurn, ToolSpec
from llm_worker.settings import LLMSettings


class ModelError(Exception):
    """The model endpoint refused the call in a way retrying cannot fix (400, 401, 404, ...)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryableModelError(ModelError):
    """429, 5xx, or the endpoint could not be reached: worth another try after `retry_after`."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class StartupError(Exception):
    """The model cannot be used at all; the message is the one line the operator sees."""


class EndpointUnreachable(StartupError):
    """Nothing answered at the endpoint (connection refused, DNS, timeout): may be starting up."""


class ModelBackend(Protocol):
    provider: str
    model: str
    endpoint: str

    async def check(self) -> None:
        """Raise `StartupError` unless the endpoint answers (and accepts the key, where it can tell)."""

    async def complete(
        self, system: str, transcript: Sequence[Entry], tools: Sequence[ToolSpec], max_tokens: int
    ) -> ModelTurn:
        """One model call. Raise `RetryableModelError` or `ModelError` on failure."""

    async def aclose(self) -> None: ...


def make_backend(settings: LLMSettings) -> ModelBackend:
    """The backend for `LLM_PROVIDER`; the Anthropic SDK is imported only when it is used."""
    if settings.llm_provider == "anthropic":
        from llm_worker.anthropic_dialect import AnthropicBackend

        return AnthropicBackend(settings)
    from llm_worker.openai_dialect import OpenAIBackend

    return OpenAIBackend(settings)
