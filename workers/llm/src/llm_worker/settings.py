"""The LLM worker's own settings (the PM Agent ones stay in `pm_worker.settings`).

Read once at start; a missing key, a placeholder secret or an OpenAI-compatible
provider without an endpoint stops the worker with one line naming the variable.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pm_worker.settings import SettingsError

DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-5"
MIB = 1024 * 1024

_PLACEHOLDERS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "your-api-key",
        "your_api_key",
        "your-key",
        "api-key",
        "xxx",
        "xxxx",
        "todo",
        "sk-ant-...",
        "sk-...",
        "none",
        "null",
    }
)


def is_placeholder(secret: str) -> bool:
    text = secret.strip().lower()
    return text in _PLACEHOLDERS or bool(re.fullmatch(r"<.*>|\$\{.*\}|\.\.\.+", text))


class LLMSettings(BaseSettings):
    """Which model to talk to, how, and how much one task may spend."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    llm_provider: Literal["anthropic", "openai"] = "anthropic"
    llm_model: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None

    # Budgets per task attempt.
    llm_max_steps: int = Field(default=30, ge=1, le=1000)
    llm_max_tokens_per_task: int = Field(default=200_000, ge=1)
    llm_max_output_tokens: int = Field(default=4096, ge=16, le=200_000)
    # ... in calls and bytes, measured here: an endpoint's usage numbers are whatever it says.
    llm_max_tool_calls_per_turn: int = Field(default=32, ge=1, le=10_000)
    llm_max_transcript_bytes: int = Field(default=4 * MIB, ge=64 * 1024, le=1024 * MIB)
    llm_tool_result_max_bytes: int = Field(default=128 * 1024, ge=1024, le=64 * MIB)
    llm_max_response_bytes: int = Field(default=8 * MIB, ge=64 * 1024, le=1024 * MIB)
    llm_tool_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)

    # Transport.
    llm_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)  # a deadline on the whole call
    llm_retry_attempts: int = Field(default=5, ge=1, le=50)
    llm_retry_max_wait_seconds: float = Field(default=60.0, ge=0, le=3600)
    llm_retry_total_seconds: float = Field(default=300.0, gt=0, le=86400)
    llm_startup_wait_seconds: float = Field(default=10.0, ge=0, le=600)

    # Tools and logs.
    llm_read_max_bytes: int = Field(default=64 * 1024, ge=1024, le=4 * 1024 * 1024)
    llm_write_max_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    llm_log_chars: int = Field(default=300, ge=20, le=100_000)

    @field_validator("llm_provider", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator(
        "llm_model", "anthropic_base_url", "llm_base_url", "anthropic_api_key", "llm_api_key", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    @field_validator("anthropic_base_url", "llm_base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL; give e.g. http://localhost:11434/v1")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _provider_needs(self) -> LLMSettings:
        if self.llm_provider == "anthropic":
            key = self.anthropic_api_key.get_secret_value() if self.anthropic_api_key else ""
            if not key:
                raise ValueError(
                    "ANTHROPIC_API_KEY is not set: LLM_PROVIDER=anthropic needs an API key "
                    "(or set LLM_PROVIDER=openai with LLM_BASE_URL for a local model)"
                )
            if is_placeholder(key):
                raise ValueError("ANTHROPIC_API_KEY holds a placeholder, not a key")
        else:
            if not self.llm_base_url:
                raise ValueError(
                    "LLM_BASE_URL is not set: LLM_PROVIDER=openai needs an OpenAI-compatible "
                    "endpoint, e.g. http://localhost:11434/v1 (Ollama) or http://vllm:8000/v1"
                )
            if not self.llm_model:
                raise ValueError(
                    "LLM_MODEL is not set: LLM_PROVIDER=openai needs the model name the endpoint "
                    "serves, e.g. llama3.1:8b (see GET LLM_BASE_URL/models)"
                )
            if self.llm_api_key and is_placeholder(self.llm_api_key.get_secret_value()):
                raise ValueError(
                    "LLM_API_KEY holds a placeholder, not a key (leave it unset if the endpoint needs none)"
                )
        return self

    @property
    def model(self) -> str:
        return self.llm_model or DEFAULT_ANTHROPIC_MODEL

    @property
    def endpoint(self) -> str:
        """Where the model is, for log lines (never with a key)."""
        if self.llm_provider == "openai":
            return self.llm_base_url or ""
        return self.anthropic_base_url or "https://api.anthropic.com"


def load_llm_settings(**overrides: Any) -> LLMSettings:
    """Read the environment; one line per bad variable, as `pm_worker.load_settings` does."""
    try:
        return LLMSettings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = str(err["msg"]).removeprefix("Value error, ")
            if not err["loc"]:  # a rule across variables: its message names them
                lines.append(msg)
                continue
            name = str(err["loc"][0]).upper()
            given = os.environ.get(name)
            secret = "KEY" in name or "TOKEN" in name
            shown = f" (got {given!r})" if given is not None and not secret else ""
            lines.append(f"invalid setting {name}{shown}: {msg}")
        raise SettingsError("; ".join(lines)) from None
