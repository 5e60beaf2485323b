"""`make_backend`: the provider `LLM_PROVIDER` names, its SDK imported only when it is used."""

from __future__ import annotations

from llm_worker.backends.base import ModelBackend
from llm_worker.settings import LLMSettings


def make_backend(settings: LLMSettings) -> ModelBackend:
    if settings.llm_provider == "anthropic":
        from llm_worker.backends.anthropic import AnthropicBackend

        return AnthropicBackend(settings)
    from llm_worker.backends.openai import OpenAIBackend

    return OpenAIBackend(settings)
