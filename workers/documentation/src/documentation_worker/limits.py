"""How much one documentation task may read and parse: set by the operator, not the task.

A task names a folder; what is in the folder is whoever wrote it. These caps turn a
hostile or accidental monster (a 50 MB generated module, a million files, a parser
bomb) into a blocker that names the file and the cap, instead of a worker that holds
the GIL for a minute, grows to gigabytes and loses its lease.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from pm_worker import SettingsError


class DocsLimits(BaseSettings):
    """`DOCS_*` environment variables (see docs/workers.md)."""

    model_config = SettingsConfigDict(env_prefix="DOCS_", extra="ignore", case_sensitive=False)

    max_files: int = Field(default=2000, ge=1)
    max_file_bytes: int = Field(default=1 << 20, ge=1)
    max_total_bytes: int = Field(default=32 << 20, ge=1)
    max_entries: int = Field(default=100_000, ge=1)
    max_depth: int = Field(default=64, ge=1, le=512)
    parse_timeout_seconds: float = Field(default=120.0, gt=0)
    parse_memory_mb: int = Field(default=2048, ge=64)


def load_limits(**overrides: Any) -> DocsLimits:
    """Read the environment; one line per bad variable, as `pm_worker.load_settings` does."""
    try:
        return DocsLimits(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = "DOCS_" + str(err["loc"][0]).upper() if err["loc"] else "DOCS_*"
            given = os.environ.get(name)
            shown = f" (got {given!r})" if given is not None else ""
            lines.append(f"invalid setting {name}{shown}: {err['msg']}")
        raise SettingsError("; ".join(lines)) from None
