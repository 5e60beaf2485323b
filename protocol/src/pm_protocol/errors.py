"""The protocol's error codes, the one error shape every failed call carries, and the errors
of a typed call (`pm_protocol.calls.call`).

    CallError            a typed call that gave no result; `.tool` names the tool
    ├── InvalidCall      the arguments break the contract: nothing was sent
    ├── UnexpectedAnswer the answer is not the tool's result model (another server, another version)
    └── Refused          the server answered with an `ErrorResult` (`.code`, `.message`)

Each end turns these into its own: `pm_worker` into `InvalidArgument`, `TransportError` and
the `PMError` of the code; the operator CLI into `OperatorError`.
"""

from __future__ import annotations

from typing import Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

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


class CallError(Exception):
    """A typed call of `tool` that gave no result."""

    def __init__(self, tool: str, message: str) -> None:
        super().__init__(f"{tool}: {message}")
        self.tool = tool
        self.message = message


class InvalidCall(CallError):
    """The arguments break the contract (`message` says how); the call was not sent."""


class UnexpectedAnswer(CallError):
    """The answer is not the tool's result: the server is not the one, or the version, expected."""


class Refused(CallError):
    """The server answered with an error: the protocol's `code` and its `message`."""

    def __init__(self, tool: str, code: str, message: str) -> None:
        super().__init__(tool, f"{code}: {message}")
        self.code = code
        self.message = message


def summary(exc: ValidationError, most: int = 5) -> str:
    """A validation error in one line, `field: what is wrong; ...` (its first `most` problems)."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()[:most]
    )


def refusal(tool: str, answer: Any) -> Refused:
    """An error answer's JSON object as `Refused`, read leniently: a code this package does not
    know (a newer server's) is kept as sent, and an answer without a message says what it held."""
    fields = answer if isinstance(answer, dict) else {}
    code, message = fields.get("error"), fields.get("message")
    return Refused(
        tool, code if isinstance(code, str) else "error", message if isinstance(message, str) else str(answer)
    )
