"""The protocol's error codes and the one error shape every failed call carries."""

from __future__ import annotations

from typing import Final, Literal, get_args

from pydantic import BaseModel, ConfigDict

ErrorCode = Literal[
    "invalid_argument",
    "agent_not_registered",
    "task_not_found",
    "artifact_not_found",
    "not_task_holder",
    "task_already_complete",
    "unauthorized",
    "internal_error",
]

ERROR_CODES: Final[tuple[ErrorCode, ...]] = get_args(ErrorCode)


class ErrorResult(BaseModel):
    """`{"success": false, "error": code, "message": ...}`, sent with `is_error` set.

    The message says what was wrong and what to send instead; clients show it as it is.
    """

    model_config = ConfigDict(extra="allow")

    success: Literal[False] = False
    error: ErrorCode
    message: str
