"""The documentation task payload: which kind of page, from which source, to where.

Unknown keys are refused (`pm_worker` turns the error into a blocker naming the key and
the accepted ones): a misspelt `ouput` must not quietly write to the default folder.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, field_validator

from pm_worker.clip import shown

API_KINDS = frozenset({"api", "api-docs", "api_docs", "reference"})
TUTORIAL_KINDS = frozenset({"tutorial", "getting-started"})
REPORT_KINDS = frozenset({"report", "test-report", "test_report"})
DEFAULT_OUTPUT = {"api": "docs/api/", "tutorial": "docs/getting-started.md", "report": "docs/report.md"}
#: Longest path (Linux's PATH_MAX) and title a task may give.
MAX_PATH, MAX_TITLE = 4096, 500


class DocsPayload(BaseModel):
    """`payload` of a documentation task (paths relative to the workspace).

    `kind` is `api` (default), `tutorial` or `report` (or one of their aliases); `output`
    defaults per kind; `api_docs` is read by tutorials, `title` by reports. A package's own
    tests and its private modules are left out of its pages unless `include_tests` /
    `include_private` (they are not its API)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = "api"
    path: str = "."
    output: str | None = None
    api_docs: str | None = None
    title: str | None = None
    include_tests: StrictBool = False
    include_private: StrictBool = False

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> Any:
        if value is None:
            return "api"
        if isinstance(value, str):
            kind = value.strip().lower()
            for family, aliases in (
                ("api", API_KINDS),
                ("tutorial", TUTORIAL_KINDS),
                ("report", REPORT_KINDS),
            ):
                if kind in aliases:
                    return family
        raise ValueError(f"unknown payload.kind {shown(value)}; use 'api' (default), 'tutorial' or 'report'")

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, value: Any) -> Any:
        return "." if value is None else _non_empty("path", value, MAX_PATH)

    @field_validator("output", "api_docs", "title", mode="before")
    @classmethod
    def _optional_text(cls, value: Any, info: Any) -> Any:
        limit = MAX_TITLE if info.field_name == "title" else MAX_PATH
        return None if value is None else _non_empty(info.field_name, value, limit)

    @property
    def output_path(self) -> str:
        """`output`, or where this kind of page goes by default."""
        return self.output or DEFAULT_OUTPUT[self.kind]


def _non_empty(field: str, value: Any, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"payload.{field} must be a non-empty string, got {shown(value)}")
    if len(value) > limit or "\x00" in value:
        raise ValueError(
            f"payload.{field} must be at most {limit} characters, without NUL, got {shown(value)}"
        )
    return value.strip()
