"""The protocol's error codes, raised by the board and turned into JSON error results by the server."""

from __future__ import annotations

from typing import Final, Literal

ErrorCode = Literal[
    "invalid_argument",
    "agent_not_registered",
    "task_not_found",
    "not_task_holder",
    "task_already_complete",
    "unauthorized",
    "internal_error",
]

ERROR_CODES: Final[tuple[ErrorCode, ...]] = (
    "invalid_argument",
    "agent_not_registered",
    "task_not_found",
    "not_task_holder",
    "task_already_complete",
    "unauthorized",
    "internal_error",
)


class BoardError(Exception):
    """A refused call: carries the wire code and a message that says what to send instead."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message

    def to_json(self) -> dict[str, object]:
        return {"success": False, "error": self.code, "message": self.message}
