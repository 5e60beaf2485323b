"""The settings that choose and configure the server's dialect (stub or Marcus).

`WorkerSettings` inherits them, so a bad value stops the worker at start with one line
naming the variable (docs/marcus.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pm_worker.errors import SettingsError

DialectName = Literal["stub", "marcus"]
"""A value of `PM_PROTOCOL` besides `auto`, and the `name` of the dialect it makes (dialects/choose.py)."""

_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")


class ProtocolSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    pm_protocol: Literal["auto"] | DialectName = "auto"
    """`auto` reads the server's tools/list once per connection and logs the dialect it chose."""
    pm_project_id: str | None = None
    """Marcus's project: it refuses agents without one and offers them only its tasks."""
    pm_agent_host_header: str | None = None
    """Send this `Host` header instead of the URL's, e.g. `localhost:4298` for a Marcus in
    another container (its MCP SDK answers 421 to any Host but localhost/127.0.0.1)."""
    pm_state_dir: Path | None = None
    """Where the Marcus dialect keeps held tasks and checkpoints; default `<WORKSPACE>/.pm-state/marcus`."""

    @field_validator("pm_protocol", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("pm_project_id", "pm_agent_host_header", mode="before")
    @classmethod
    def _protocol_blank_is_unset(cls, value: Any) -> Any:
        # Named apart from WorkerSettings._blank_is_unset: pydantic keys validators by name,
        # so a subclass validator of the same name would silently replace this one.
        return (
            None
            if isinstance(value, str) and not value.strip()
            else value.strip()
            if isinstance(value, str)
            else value
        )

    @field_validator("pm_agent_host_header")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and not _HOST.match(value):
            raise ValueError("give a host with an optional port, e.g. localhost:4298 (no scheme, no path)")
        return value

    def state_dir(self, workspace: Path) -> Path:
        return self.pm_state_dir or workspace / ".pm-state" / "marcus"


class MissingProjectId(SettingsError):
    """Marcus without PM_PROJECT_ID: the one line the worker prints before exiting 2."""

    def __init__(self, url: str) -> None:
        super().__init__(
            f"invalid setting PM_PROJECT_ID: required by the Marcus server at {url} "
            "(Marcus offers an agent only its project's tasks); set PM_PROJECT_ID=<project id>"
        )
