"""The testing task payload: where to run, what to run, for how long, with which variables,
in which environment.

Unknown keys are refused (`pm_worker` turns the error into a blocker naming the key and
the accepted ones): a misspelt `comand` must not quietly run the default command and
report success for tests nobody asked for.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pm_worker.clip import shown

DEFAULT_COMMAND = "python -m pytest -q"
DEFAULT_TIMEOUT = 300.0
MAX_TIMEOUT = 6 * 3600.0
#: Longest path (Linux's PATH_MAX) and command a task may give.
MAX_PATH, MAX_COMMAND = 4096, 32 * 1024
#: Variables of the worker's own that the code under test never sees.
PRIVATE_ENV = ("PM_AGENT_TOKEN",)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: `environment` values that are not a folder: the project's own (its venv, else one built from
#: its metadata), always one built from its metadata, or the worker's own interpreter (the old way).
ENVIRONMENT_KEYWORDS = ("auto", "build", "worker")
#: Arguments of `install` (for `uv pip install`) a task may give.
MAX_INSTALL_ARGS = 200


class TestingPayload(BaseModel):
    """`payload` of a testing task (paths relative to the workspace)."""

    __test__ = False  # not a pytest test class, whatever its name says
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = "."
    command: str = DEFAULT_COMMAND
    timeout_seconds: float = DEFAULT_TIMEOUT
    report: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    environment: str | None = None
    """`auto`, `build`, `worker`, or a virtual environment's folder (workspace-relative);
    None: `build` if `python` or `install` is given, else the worker's TESTING_DEFAULT_ENVIRONMENT."""
    python: str | None = None
    """The interpreter of a built environment: a version (`3.12`), a name or a path (uv's `--python`)."""
    install: tuple[str, ...] | None = None
    """`uv pip install` arguments that replace what the worker reads from the project's metadata."""

    @field_validator("path", "command", "report", "environment", "python", mode="before")
    @classmethod
    def _text(cls, value: Any, info: Any) -> Any:
        if value is None:
            return cls.model_fields[info.field_name].default
        if not isinstance(value, str) or not value.strip() or "\n" in value:
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

    @field_validator("install", mode="before")
    @classmethod
    def _install(cls, value: Any) -> Any:
        """A list of arguments, or one string split like a shell would (no shell runs it)."""
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = shlex.split(value)
            except ValueError as exc:
                raise ValueError(f"payload.install cannot be split into arguments: {exc}") from None
        if not isinstance(value, list) or not value or len(value) > MAX_INSTALL_ARGS:
            raise ValueError(
                f"payload.install must be a non-empty list of at most {MAX_INSTALL_ARGS} arguments for "
                f'`uv pip install` (e.g. ["-e", ".[ci]"]), got {shown(value)}'
            )
        for arg in value:
            if not isinstance(arg, str) or not arg or len(arg) > MAX_PATH or "\x00" in arg:
                raise ValueError(f"payload.install: {shown(arg)} is not an argument (non-empty text)")
        return tuple(value)

    @model_validator(mode="after")
    def _environment_fits(self) -> TestingPayload:
        """`python` and `install` say how to build an environment: only with one that is built."""
        given = [name for name in ("python", "install") if getattr(self, name) is not None]
        if given and self.environment is not None and self.environment not in ("auto", "build"):
            what = "the worker's own" if self.environment == "worker" else "an existing"
            raise ValueError(
                f"payload.{given[0]} builds an environment, but payload.environment "
                f"{shown(self.environment)} chooses {what} one: drop one of them"
            )
        return self

    @property
    def environment_choice(self) -> str | None:
        """The environment asked for: a keyword, a folder, or None (the worker's default)."""
        if self.environment is not None:
            return (
                "build" if self.environment == "auto" and (self.python or self.install) else self.environment
            )
        return "build" if self.python is not None or self.install is not None else None
