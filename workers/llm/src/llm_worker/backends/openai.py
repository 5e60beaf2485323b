"""OpenAI-compatible chat completions (Ollama, vLLM, llama.cpp server, LiteLLM, OpenAI itself).

`tools` out, `tool_calls` back (arguments are JSON *text*, so they can be broken), one
`role: tool` message per result. Spoken with httpx2, the HTTP client the MCP SDK and the
Anthropic SDK already bring, rather than a second HTTP stack.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx2

from llm_worker.backends.errors import (
    EndpointUnreachable,
    ModelError,
    RetryableModelError,
    StartupError,
    status_error,
)
from llm_worker.backends.http import ResponseTooLarge, capped_client
from llm_worker.conversation import AssistantTurn, Entry, ModelTool, ModelTurn, ToolCall, Usage, UserText
from llm_worker.settings import LLMSettings


def to_messages(system: str, transcript: Sequence[Entry]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for entry in transcript:
        if isinstance(entry, UserText):
            messages.append({"role": "user", "content": entry.text})
        elif isinstance(entry, AssistantTurn):
            msg: dict[str, Any] = {"role": "assistant", "content": entry.text or None}
            if entry.tool_calls:
                msg["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.raw_arguments},
                    }
                    for call in entry.tool_calls
                ]
            elif not entry.text:
                msg["content"] = ""
            messages.append(msg)
        else:
            for result in entry.results:
                # No is_error flag in this API: the text says it.
                content = f"ERROR: {result.content}" if result.is_error else result.content
                messages.append({"role": "tool", "tool_call_id": result.call_id, "content": content})
    return messages


def to_tools(tools: Sequence[ModelTool]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.schema},
        }
        for t in tools
    ]


def parse_arguments(raw: Any) -> tuple[dict[str, Any] | None, str, str | None]:
    """(arguments, raw text, error): arguments is None when `raw` is not a JSON object."""
    if isinstance(raw, dict):
        return raw, json.dumps(raw), None
    if raw is None or raw == "":
        return {}, "{}", None
    if not isinstance(raw, str):
        return None, json.dumps(raw), f"the arguments were a JSON {type(raw).__name__}, not an object"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, raw, f"the arguments are not valid JSON ({exc.msg} at position {exc.pos})"
    if not isinstance(value, dict):
        return None, raw, f"the arguments must be a JSON object, got {type(value).__name__}"
    return value, raw, None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def from_response(data: Any) -> ModelTurn:
    """A chat-completions response body → the neutral turn; `ModelError` if it is not one."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        raise ModelError(
            f"malformed chat-completions response (no choices[0].message): {str(data)[:300]}"
        ) from None
    calls: list[ToolCall] = []
    for i, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            function = {}
        arguments, raw, error = parse_arguments(function.get("arguments"))
        call_id = (call.get("id") if isinstance(call, dict) else None) or f"call_{i}"
        calls.append(ToolCall(str(call_id), str(function.get("name") or ""), arguments, raw, error))
    usage = data.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    return ModelTurn(
        text=_text_of(message.get("content")),
        tool_calls=tuple(calls),
        usage=Usage.reported(usage.get("prompt_tokens"), usage.get("completion_tokens")),
        stop_reason=choice.get("finish_reason"),
        model=data.get("model"),
    )


class OpenAIBackend:
    provider = "openai"

    def __init__(self, settings: LLMSettings, *, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.model = settings.model
        self.base_url = settings.llm_base_url or ""
        self.endpoint = self.base_url
        headers = {"content-type": "application/json"}
        if settings.llm_api_key:
            headers["authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
        self._http = capped_client(
            settings.llm_max_response_bytes, transport, headers=headers, timeout=settings.llm_timeout_seconds
        )

    async def check(self) -> None:
        url = f"{self.base_url}/models"
        try:
            resp = await self._http.get(url, timeout=min(10.0, self.settings.llm_timeout_seconds))
        except ResponseTooLarge as exc:
            raise StartupError(f"LLM_BASE_URL {self.base_url}: GET /models: {exc}") from None
        except httpx2.HTTPError as exc:
            raise EndpointUnreachable(
                f"cannot reach LLM_BASE_URL {self.base_url} (GET {url}: "
                f"{type(exc).__name__}: {exc or 'no answer'}); is the model server running?"
            ) from None
        if resp.status_code in (401, 403):
            raise StartupError(
                f"LLM_BASE_URL {self.base_url} refused the key (GET /models: HTTP {resp.status_code}); "
                "check LLM_API_KEY"
            )
        if resp.status_code == 404:
            raise StartupError(
                f"LLM_BASE_URL {self.base_url} has no /models (HTTP 404): not an OpenAI-compatible "
                "endpoint; the URL usually ends in /v1"
            )
        if resp.status_code >= 400:
            raise EndpointUnreachable(
                f"LLM_BASE_URL {self.base_url} answered GET /models with HTTP {resp.status_code}"
            )

    async def listed_models(self) -> list[str]:
        """The ids GET /models lists (empty if it lists none or the shape is unknown)."""
        try:
            resp = await self._http.get(f"{self.base_url}/models", timeout=10.0)
            data = resp.json()
            return [str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict)]
        except (httpx2.HTTPError, ResponseTooLarge, ValueError, AttributeError):
            return []

    async def complete(
        self, system: str, transcript: Sequence[Entry], tools: Sequence[ModelTool], max_tokens: int
    ) -> ModelTurn:
        body = {
            "model": self.model,
            "messages": to_messages(system, transcript),
            "tools": to_tools(tools),
            "tool_choice": "auto",
            "max_tokens": max_tokens,
        }
        url = f"{self.base_url}/chat/completions"
        try:
            resp = await self._http.post(url, json=body)
        except ResponseTooLarge as exc:
            raise ModelError(f"{url}: {exc}") from None
        except httpx2.HTTPError as exc:
            raise RetryableModelError(f"cannot reach {url}: {type(exc).__name__}: {exc}") from None
        if resp.status_code >= 400:
            raise status_error(resp.status_code, resp.text[:500], resp.headers)
        try:
            data = resp.json()
        except ValueError:
            raise ModelError(f"response is not JSON: {resp.text[:300]}") from None
        return from_response(data)

    async def aclose(self) -> None:
        await self._http.aclose()
