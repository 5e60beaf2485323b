"""The devops task payload: what to build, how to tag it, how to smoke-test it."""

from __future__ import annotations

import os
import re
import shlex
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pm_worker import Assignment
from pm_worker.payload import parse_payload as parse_build_payload

# docker's reference grammar, simplified: [registry[:port]/]path[:tag]; lower-case path.
_TAG = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
)
PASS_THROUGH_BUILD_ARGS = ("PYTHON_IMAGE",)


class BuildPayload(BaseModel):
    """`payload` of a devops task. Unknown fields are refused: a typo such as
    `expected_output` must not silently turn the smoke check off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    context: str = Field(default=".", max_length=4096, pattern=r"^[^\x00]*$")
    dockerfile: str = Field(default="Dockerfile", max_length=4096, pattern=r"^[^\x00]*$")
    tag: str | None = Field(default=None, max_length=255)
    build_args: dict[str, str] = Field(default_factory=dict)
    smoke_command: list[str] | None = None
    expect_output: str | None = None
    smoke_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    build_timeout_seconds: float = Field(default=1800.0, gt=0, le=86400)
    pull: bool = False
    nocache: bool = False

    @field_validator("build_args", mode="before")
    @classmethod
    def _args_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                str(k): ("" if v is None else str(v).lower() if isinstance(v, bool) else str(v))
                for k, v in value.items()
            }
        return value

    @field_validator("smoke_command", mode="before")
    @classmethod
    def _split_command(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                parts = shlex.split(value)
            except ValueError as exc:
                raise ValueError(f"cannot split {value!r} into words: {exc}") from exc
            return parts or None
        if isinstance(value, list) and not value:
            return None
        return value

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not _TAG.match(value):
            raise ValueError(
                f"{value!r} is not a valid image reference (e.g. 'demo-calc:latest', lower-case name)"
            )
        return value

    def image_tag(self, task_id: str) -> str:
        """The tag to build; default `pm-fleet/<task id>:latest` (made a valid reference)."""
        if self.tag:
            return self.tag if ":" in self.tag.rsplit("/", 1)[-1] else f"{self.tag}:latest"
        slug = re.sub(r"[^a-z0-9]+", "-", task_id.lower()).strip("-") or "image"
        return f"pm-fleet/{slug}:latest"

    def effective_build_args(self, environ: dict[str, str] | None = None) -> dict[str, str]:
        """`build_args`, plus PYTHON_IMAGE from the environment unless the task gives it.

        That is how a fleet without registry access builds `FROM ${PYTHON_IMAGE}` images
        against its local base image."""
        env = os.environ if environ is None else environ
        args = dict(self.build_args)
        for name in PASS_THROUGH_BUILD_ARGS:
            if name not in args and env.get(name):
                args[name] = env[name]
        return args


def parse_payload(task: Assignment) -> BuildPayload:
    """The task's payload, or a blocker naming each bad field and what to send instead."""
    return parse_build_payload(BuildPayload, task.payload, task_id=task.task_id, role="devops")
