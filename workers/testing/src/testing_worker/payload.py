"""The testing task payload: where to run, what to run, for how long, with which variables.

Unknown keys are refused (`pm_worker` turns the error into a blocker naming the key and
the accepted ones): a misspelt `comand` must not quietly run the default command and
report success for tests nobody asked for.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pm_worker.clip import shown

DEFAULT_COMMAND = "python -m pytest -q"
DEFAULT_TIMEOUT = 300.0
MAX_TIMEOUT = 6 * 3600.0
#: Longest path (Linux's PATH_MAX) and command a task may give.
MAX_PATH, MAX_COMMAND = 4096, 32 * 1024
#: Variables of the worker's own that the code under test never sees.
PRIVATE_ENV = ("PM_AGENT_TOKEN",)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TestingPayload(BaseModel):
    """`payload` of a testing task (paths relative to the workspace)."""

    __test__ = False  # not a pytest test class, whatever its name says
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = "."
    command: str = DEFAULT_COMMAND
    timeout_seconds: float = DEFAULT_TIMEOUT
    report: str | None = None
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("path", "command", "report", mode="before")
    @classmethod
    def _text(cls, value: Any, info: Any) -> Any:
        if value is None:
            return cls.model_fields[info.field_name].default
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"payload.{info.field_name} must be a non-empty string, got {shown(value)}")
        limit = MAX_COMMAND if info.field_name == "command" else MAX_PATH
        if len(value) > limit or "\x00" in value:
            raise ValueError(
                f"payload.{info.field_name} must be at most {limit} characters, without NUL, "
                f"got {shown(value)}"
            )
        return value.strip()

    @field_validator("timeout_seconds", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT:
            raise ValueError(
                f"payload.timeout_seconds must be a number of seconds in (0, {MAX_TIMEOUT:g}], got {shown(value)}"
            )
        return float(value)

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        """Variable names to text values (numbers and booleans are written out)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError(f"payload.env must be a mapping of variable names to values, got {shown(value)}")
        env: dict[str, str] = {}
        for name, raw in value.items():
            if not isinstance(name, str) or not _ENV_NAME.match(name) or name in PRIVATE_ENV:
                raise ValueError(f"payload.env: {shown(name)} is not a variable name a task may set")
            if isinstance(raw, bool):
                env[name] = "1" if raw else "0"
            elif isinstance(raw, (str, int, float)):
                env[name] = str(raw)
            else:
                raise ValueError(f"payload.env.{name} must be text or a number, got {shown(raw)}")
        return env
