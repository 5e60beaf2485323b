"""The Anthropic Messages API: `tool_use` blocks out, `tool_result` blocks back.

The SDK's own retries are off (`max_retries=0`): one retry policy, ours, for both
providers, so 429/5xx handling and its logs are the same whichever model is behind.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

import anthropic
import httpx2

from llm_worker.backends.errors import (
    EndpointUnreachable,
    ModelError,
    RetryableModelError,
    StartupError,
    status_error,
)
from llm_worker.backends.http import ResponseTooLarge, capped_client
from llm_worker.conversation import (
    AssistantTurn,
    Entry,
    ModelTool,
    ModelTurn,
    ToolCall,
    Usage,
    UserText,
)
from llm_worker.settings import LLMSettings

ANTHROPIC_VERSION = "2023-06-01"


def to_messages(transcript: Sequence[Entry]) -> list[dict[str, Any]]:
    """Neutral transcript → Messages API `messages` (consecutive same-role turns merged)."""
    messages: list[dict[str, Any]] = []
    for entry in transcript:
        blocks: list[dict[str, Any]]
        if isinstance(entry, UserText):
            role, blocks = "user", [{"type": "text", "text": entry.text}]
        elif isinstance(entry, AssistantTurn):
            role = "assistant"
            blocks = [{"type": "text", "text": entry.text}] if entry.text.strip() else []
            blocks += [
                {
                    "type": "tool_use",
                    "id": call.id,
                    "name": call.name,
                    "input": call.arguments if call.arguments is not None else {},
                }
                for call in entry.tool_calls
            ]
            if not blocks:
                blocks = [{"type": "text", "text": "(no reply)"}]
        else:
            role = "user"
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": r.call_id,
                    "content": r.content,
                    "is_error": r.is_error,
                }
                for r in entry.results
            ]
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    return messages


def to_tools(tools: Sequence[ModelTool]) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "input_schema": t.schema} for t in tools]


def from_message(message: Any) -> ModelTurn:
    """A Messages API response (SDK object) → the neutral turn."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content or []:
        kind = getattr(block, "type", None)
        if kind == "text":
            texts.append(str(block.text))
        elif kind == "tool_use":
            raw = block.input
            if isinstance(raw, dict):
                calls.append(ToolCall(block.id, block.name, raw, json.dumps(raw)))
            else:
                calls.append(
                    ToolCall(
                        block.id,
                        block.name,
                        None,
                        str(raw),
                        error=f"the input was {type(raw).__name__}, not a JSON object",
                    )
                )
    usage = message.usage
    reported = Usage.reported(getattr(usage, "input_tokens", 0), getattr(usage, "output_tokens", 0))
    cached = Usage.reported(getattr(usage, "cache_creation_input_tokens", 0), 0) + Usage.reported(
        getattr(usage, "cache_read_input_tokens", 0), 0
    )
    return ModelTurn(
        text="\n".join(texts),
        tool_calls=tuple(calls),
        usage=reported + cached,
        stop_reason=message.stop_reason,
        model=message.model,
    )


class AnthropicBackend:
    provider = "anthropic"

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self.model = settings.model
        self.endpoint = settings.endpoint
        key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else ""
        self._key = key
        self._client = anthropic.AsyncAnthropic(
            api_key=key,
            base_url=settings.anthropic_base_url,
            max_retries=0,
            timeout=settings.llm_timeout_seconds,
            http_client=capped_client(settings.llm_max_response_bytes, follow_redirects=True),
        )

    async def check(self) -> None:
        """The key is required by the settings; a custom base URL must also answer."""
        if not self.settings.anthropic_base_url:
            return
        url = f"{self.settings.anthropic_base_url}/v1/models"
        headers = {"x-api-key": self._key, "anthropic-version": ANTHROPIC_VERSION}
        try:
            async with httpx2.AsyncClient(timeout=min(10.0, self.settings.llm_timeout_seconds)) as http:
                resp = await http.get(url, headers=headers)
        except httpx2.HTTPError as exc:
            raise EndpointUnreachable(
                f"cannot reach ANTHROPIC_BASE_URL {self.settings.anthropic_base_url} "
                f"({type(exc).__name__}: {exc or 'no answer'}); check the URL or unset it to use the Anthropic API"
            ) from None
        if resp.status_code in (401, 403):
            raise StartupError(
                f"ANTHROPIC_API_KEY was refused by {self.settings.anthropic_base_url} "
                f"(HTTP {resp.status_code})"
            )

    async def complete(
        self, system: str, transcript: Sequence[Entry], tools: Sequence[ModelTool], max_tokens: int
    ) -> ModelTurn:
        try:
            message = await self._client.messages.create(
                model=self.model,
                max_tokens=max_tokens,
                system=system,
                messages=cast(Any, to_messages(transcript)),
                tools=cast(Any, to_tools(tools)),
            )
        except anthropic.APIStatusError as exc:
            detail = exc.api_message or exc.message
            raise status_error(exc.status_code, detail, exc.response.headers) from None
        except anthropic.APIConnectionError as exc:
            if isinstance(exc.__cause__, ResponseTooLarge):
                raise ModelError(f"{self.endpoint}: {exc.__cause__}") from None
            raise RetryableModelError(f"cannot reach {self.endpoint}: {exc.message}") from None
        except anthropic.APIResponseValidationError as exc:
            raise ModelError(f"malformed response from {self.endpoint}: {exc.message}") from None
        return from_message(message)

    async def aclose(self) -> None:
        await self._client.close()
