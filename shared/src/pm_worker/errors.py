"""Typed errors: one class per contract error code, plus what the worker loop needs."""

from __future__ import annotations

from typing import ClassVar


class PMError(Exception):
    """A tool call the stub answered with `is_error` and `{"error": code, "message": ...}`."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str, *, tool: str = "", code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.tool = tool
        if code is not None:
            self.code = code  # type: ignore[misc]

    def __str__(self) -> str:
        where = f"{self.tool}: " if self.tool else ""
        return f"{where}{self.code}: {self.message}"


class InvalidArgument(PMError):
    code = "invalid_argument"


class AgentNotRegistered(PMError):
    code = "agent_not_registered"


class TaskNotFound(PMError):
    code = "task_not_found"


class NotTaskHolder(PMError):
    """The lease is gone (expired, released, or someone else holds the task): stop working on it."""

    code = "not_task_holder"


class TaskAlreadyComplete(PMError):
    code = "task_already_complete"


class Unauthorized(PMError):
    """The stub refused our token. Retrying cannot help."""

    code = "unauthorized"


ERRORS_BY_CODE: dict[str, type[PMError]] = {
    cls.code: cls
    for cls in (InvalidArgument, AgentNotRegistered, TaskNotFound, NotTaskHolder, TaskAlreadyComplete, Unauthorized)
}


def error_from_payload(tool: str, payload: dict[str, object]) -> PMError:
    code = str(payload.get("error") or "error")
    message = str(payload.get("message") or payload)
    cls = ERRORS_BY_CODE.get(code, PMError)
    return cls(message, tool=tool, code=code)


class TransportError(Exception):
    """The stub could not be reached or the connection broke; retried with backoff."""


class GaveUp(Exception):
    """Reconnecting took longer than RECONNECT_GIVE_UP_SECONDS."""


class TaskBlocked(Exception):
    """Raised by `execute` when the task cannot go on; becomes a `report_blocker`."""

    def __init__(self, description: str, severity: str = "medium") -> None:
        super().__init__(description)
        self.description = description
        self.severity = severity
