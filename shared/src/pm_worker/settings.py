"""Worker settings, read from the environment once at start.

Every variable of the contract's worker table lives here so that a bad value stops the
worker before it touches the board, with one line naming the variable.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from pm_protocol.endpoint import bearer_token
from pm_protocol.endpoint import normalize_agent_url as normalize_agent_url  # re-exported
from pm_worker.errors import (
    SettingsError as SettingsError,  # re-exported for `from pm_worker.settings import ...`
)
from pm_worker.health import default_health_dir
from pm_worker.protocol_settings import ProtocolSettings


def split_skills(value: Any) -> Any:
    """`a,b,c` or a JSON list; blanks dropped."""
    if value is None or isinstance(value, list):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON list: {exc.msg}") from exc
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class WorkerSettings(ProtocolSettings):
    """What a worker reads from its environment (see docs/protocol.md)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    pm_agent_url: str = "http://localhost:8000/mcp"
    pm_transport: Literal["http", "stdio"] = "http"
    pm_stdio_command: str = "python -m pm_agent_stub serve --transport stdio"
    pm_agent_token: SecretStr | None = None
    pm_agent_token_file: Path | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    agent_role: str | None = None
    agent_skills: Annotated[list[str] | None, NoDecode] = None
    workspace: Path = Path("workspace")
    log_format: Literal["json", "console"] | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, le=3600)
    poll_wait_seconds: float = Field(default=25.0, ge=0, le=30)
    heartbeat_seconds: float = Field(default=10.0, gt=0, le=3600)
    reconnect_give_up_seconds: float = Field(default=600.0, gt=0)
    call_timeout_seconds: float = Field(default=60.0, gt=0)
    health_dir: Path = Field(default_factory=default_health_dir)
    max_tasks: int = Field(default=0, ge=0)

    @field_validator("pm_agent_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return normalize_agent_url(value)

    @field_validator("agent_skills", mode="before")
    @classmethod
    def _skills(cls, value: Any) -> Any:
        return split_skills(value)

    @field_validator("log_level", "log_format", "pm_transport", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator(
        "pm_agent_token", "pm_agent_token_file", "agent_id", "agent_name", "agent_role", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _token_from_file(self) -> WorkerSettings:
        """PM_AGENT_TOKEN_FILE (the Docker/Kubernetes secrets convention): read once, here, and closed."""
        if self.pm_agent_token_file is not None:
            given = self.pm_agent_token.get_secret_value() if self.pm_agent_token is not None else None
            self.pm_agent_token = SecretStr(bearer_token(given, self.pm_agent_token_file) or "")
        return self

    def token(self) -> str | None:
        """The bearer token, from PM_AGENT_TOKEN or PM_AGENT_TOKEN_FILE."""
        return self.pm_agent_token.get_secret_value() if self.pm_agent_token is not None else None

    def resolve_agent_id(self, role: str) -> str:
        """`AGENT_ID` with `{hostname}`/`{pid}` filled; default `<role>-{hostname}`.

        The hostname default is what makes `--scale x=3` give three ids and a restarted
        container keep its own.
        """
        template = self.agent_id or f"{role}-{{hostname}}"
        try:
            return template.format(hostname=socket.gethostname(), pid=os.getpid())
        except (KeyError, IndexError, ValueError) as exc:
            raise SettingsError(
                f"invalid setting AGENT_ID={template!r}: only {{hostname}} and {{pid}} may be used ({exc})"
            ) from exc


def load_settings(**overrides: Any) -> WorkerSettings:
    """Read the environment; turn pydantic's report into one line per bad variable."""
    try:
        return WorkerSettings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            if not err["loc"]:  # a rule across settings: its message names them
                lines.append(f"invalid settings: {err['msg'].removeprefix('Value error, ')}")
                continue
            name = str(err["loc"][0]).upper()
            given = os.environ.get(name)
            shown = f" (got {given!r})" if given is not None and "TOKEN" not in name else ""
            lines.append(f"invalid setting {name}{shown}: {err['msg']}")
        raise SettingsError("; ".join(lines)) from None
