"""Typed stub settings from the environment, validated once at start.

Bad values stop the process with one line naming the variable (exit 2), so a typo in a
compose file fails loudly instead of running a stub with surprising behaviour.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = (
    "127.0.0.1:*",
    "localhost:*",
    "[::1]:*",
    "pm-agent:*",
    "127.0.0.1",
    "localhost",
    "[::1]",
    "pm-agent",
)


class StubSettings(BaseSettings):
    """Every knob of the stub; field aliases are the environment variable names, and only they
    are read (a bare PORT, HOST, DB or PROJECT_FILE in the environment belongs to someone else).
    In code, read the environment and replace what you set:
    `StubSettings().model_copy(update={"db": path})`."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", validate_default=True)

    host: str = Field(default="127.0.0.1", validation_alias="PM_AGENT_HOST", min_length=1)
    port: int = Field(default=8000, validation_alias="PM_AGENT_PORT", ge=0, le=65535)
    db: Path = Field(default=Path("./pm_agent.db"), validation_alias="PM_AGENT_DB")
    project_file: Path | None = Field(default=None, validation_alias="PM_PROJECT_FILE")
    lease_seconds: float = Field(default=60.0, validation_alias="PM_LEASE_SECONDS", gt=0, le=86400)
    max_attempts: int = Field(default=3, validation_alias="PM_MAX_ATTEMPTS", ge=1, le=1000)
    agent_offline_seconds: float = Field(default=90.0, validation_alias="PM_AGENT_OFFLINE_SECONDS", gt=0)
    agent_forget_seconds: float = Field(default=86400.0, validation_alias="PM_AGENT_FORGET_SECONDS", gt=0)
    max_agents: int = Field(default=10_000, validation_alias="PM_MAX_AGENTS", ge=1)
    max_artifacts_per_task: int = Field(default=100, validation_alias="PM_MAX_ARTIFACTS_PER_TASK", ge=1)
    max_artifact_bytes_per_task: int = Field(
        default=4 * 1024 * 1024, validation_alias="PM_MAX_ARTIFACT_BYTES_PER_TASK", ge=1024
    )
    # A task's open blockers (the agent that blocked it may add detail) and progress entries
    # (the oldest past the cap are dropped and counted): board/history.py.
    max_open_blockers_per_task: int = Field(
        default=10, validation_alias="PM_MAX_OPEN_BLOCKERS_PER_TASK", ge=1, le=10_000
    )
    max_progress_per_task: int = Field(
        default=100, validation_alias="PM_MAX_PROGRESS_PER_TASK", ge=1, le=1_000_000
    )
    token: SecretStr | None = Field(default=None, validation_alias="PM_AGENT_TOKEN")
    allowed_hosts_extra: str = Field(default="", validation_alias="PM_AGENT_ALLOWED_HOSTS")
    http_header_timeout: float = Field(default=10.0, validation_alias="PM_HTTP_HEADER_TIMEOUT", gt=0, le=3600)
    http_body_timeout: float = Field(default=30.0, validation_alias="PM_HTTP_BODY_TIMEOUT", gt=0, le=3600)
    # Each long-polling worker holds one connection, two while it heartbeats: 4,096 fits a
    # fleet of 2,000 (~45 KiB of stub memory per waiting connection, bench/ crowd section).
    http_max_connections: int = Field(default=4096, validation_alias="PM_HTTP_MAX_CONNECTIONS", ge=1)
    http_max_bodies_in_flight: int = Field(default=32, validation_alias="PM_HTTP_MAX_BODIES_IN_FLIGHT", ge=1)
    # A client that takes none of an answer for this long is disconnected (a dashboard page
    # that stopped reading its stream, a scraper gone silent): it holds the rest meanwhile.
    http_write_timeout: float = Field(default=30.0, validation_alias="PM_HTTP_WRITE_TIMEOUT", gt=0, le=3600)
    metrics_public: bool = Field(default=False, validation_alias="PM_METRICS_PUBLIC")
    # Skill sets with a series of their own on /metrics (first seen first); the rest fold into
    # one `skills="OTHER"` series, so a board of 20,000 distinct sets is not 40,000 series.
    metrics_max_skill_sets: int = Field(
        default=100, validation_alias="PM_METRICS_MAX_SKILL_SETS", ge=1, le=100_000
    )
    # Dashboard pages (event streams) open at once; one more is refused with 503. Every page
    # is sent each snapshot (up to ~2 MB on a board full of long texts).
    dashboard_max_streams: int = Field(
        default=50, validation_alias="PM_DASHBOARD_MAX_STREAMS", ge=1, le=10_000
    )
    # A page's stream ends after this long; the page reconnects at once (credentials checked again).
    dashboard_stream_max_seconds: float = Field(
        default=600.0, validation_alias="PM_DASHBOARD_STREAM_MAX_SECONDS", ge=1, le=86400
    )
    db_synchronous: Literal["NORMAL", "FULL"] = Field(default="NORMAL", validation_alias="PM_DB_SYNCHRONOUS")
    log_format: Literal["json", "console"] | None = Field(default=None, validation_alias="LOG_FORMAT")
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        default="info", validation_alias="LOG_LEVEL"
    )

    @field_validator("project_file", "token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose passes `VAR=` for unset optionals; treat it as "not given".
        return None if value == "" else value

    @field_validator("metrics_public", mode="before")
    @classmethod
    def _empty_is_false(cls, value: object) -> object:
        return False if value == "" else value

    @field_validator("db_synchronous", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        if value == "":
            return None
        return value.lower() if isinstance(value, str) else value

    @property
    def allowed_hosts(self) -> list[str]:
        """The Host allow-list; an entry `*` means the check is off."""
        extra = [h.strip() for h in self.allowed_hosts_extra.split(",") if h.strip()]
        hosts = list(DEFAULT_ALLOWED_HOSTS)
        for entry in extra:
            hosts.append(entry)
            if ":" not in entry.rsplit("]", 1)[-1]:
                hosts.append(f"{entry}:*")
        return hosts

    @property
    def host_check_disabled(self) -> bool:
        return any(h.strip() == "*" for h in self.allowed_hosts_extra.split(","))


def _alias(name: str) -> str:
    field = StubSettings.model_fields.get(name)
    alias = field.validation_alias if field is not None else None
    return alias if isinstance(alias, str) else name


def settings_error_line(exc: ValidationError) -> str:
    """One line naming the variable(s) at fault, for humans reading container logs."""
    parts = []
    for err in exc.errors():
        loc = str(err["loc"][0]) if err["loc"] else "?"
        parts.append(f"{_alias(loc)}: {err['msg']} (got {err.get('input')!r})")
    return "invalid settings: " + "; ".join(parts)


def load_settings() -> StubSettings:
    """Read the environment or exit 2 with one clear line on stderr."""
    try:
        return StubSettings()
    except ValidationError as exc:
        print(settings_error_line(exc), file=sys.stderr)
        raise SystemExit(2) from None
