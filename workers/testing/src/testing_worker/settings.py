"""The testing worker's own settings (`TESTING_*`): where project environments are kept,
which environment a task gets when its payload does not say, and how long an install may take.

Set by the operator, not by a task: a task chooses its environment with its payload
(`environment`, `python`, `install`), the operator chooses the fleet's default and the
cache's place (in Compose, the `testing-envs` named volume the image points this at).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pm_worker import SettingsError

#: What `environment` means when a task does not set it (docs/workers.md, "testing").
EnvironmentChoice = Literal["auto", "build", "worker"]


def default_cache() -> Path:
    """`$XDG_CACHE_HOME/pm-agent/testing-envs`, else `~/.cache/pm-agent/testing-envs`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pm-agent" / "testing-envs"


class TestingSettings(BaseSettings):
    """`TESTING_*` environment variables (see docs/workers.md)."""

    __test__ = False  # not a pytest test class, whatever its name says
    model_config = SettingsConfigDict(env_prefix="TESTING_", extra="ignore", case_sensitive=False)

    env_cache: Path = Field(default_factory=default_cache)
    default_environment: EnvironmentChoice = "auto"
    install_timeout_seconds: float = Field(default=900.0, gt=0, le=6 * 3600)
    env_max_age_days: float = Field(default=14.0, gt=0)

    @field_validator("default_environment", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def own_cache(self) -> Path:
        """This uid's part of the cache: environments one uid made are never written by another
        (a Compose volume used by workers run as 10001 and later as your uid)."""
        return self.env_cache / f"uid-{os.getuid()}"


def load_testing_settings(**overrides: Any) -> TestingSettings:
    """Read the environment; one line per bad variable, as `pm_worker.load_settings` does."""
    try:
        return TestingSettings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = "TESTING_" + str(err["loc"][0]).upper() if err["loc"] else "TESTING_*"
            given = os.environ.get(name)
            shown = f" (got {given!r})" if given is not None else ""
            lines.append(f"invalid setting {name}{shown}: {err['msg']}")
        raise SettingsError("; ".join(lines)) from None
