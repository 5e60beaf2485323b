"""Every exception pm_worker raises on purpose, under one root.

    WorkerError                    catch this to catch anything below
    ├── SettingsError              a setting cannot be used; the message is the one line shown at start
    ├── TransportError             no usable answer: unreachable, link broken, timed out, or a reply that
    │                              is not the protocol's (not JSON, not an object, not the result's shape);
    │                              `PMClient` retries these with backoff, then gives up with the last one
    ├── PMError                    the PM server answered, with an error; `.code` is the protocol's code
    │   ├── InvalidArgument        invalid_argument: the call broke the contract (the message says how)
    │   ├── AgentNotRegistered     agent_not_registered: `PMClient` registers again and repeats the call
    │   ├── TaskNotFound           task_not_found
    │   ├── NotTaskHolder          not_task_holder: the lease is gone; stop working on the task
    │   ├── TaskAlreadyComplete    task_already_complete
    │   └── Unauthorized           unauthorized (or HTTP 401): the token is wrong; retrying cannot help
    └── TaskInterrupt              raised by `Worker.execute` to end a task other than by returning
        ├── TaskBlocked            → a blocker with its description and severity; the task waits for a person
        └── TaskReleased           → the task goes back to the queue with its last checkpoint
                                     (e.g. on shutdown); whoever takes it next resumes from there

Any other exception from `execute` becomes a blocker naming it ("failed"). Codes a newer
server sends that are not listed (e.g. internal_error) arrive as a plain `PMError` with that
`.code`.
"""

from __future__ import annotations

from typing import ClassVar


class WorkerError(Exception):
    """The root of every exception pm_worker raises on purpose."""


class SettingsError(WorkerError):
    """A setting that cannot be used; its message is the one line the user sees."""


class TransportError(WorkerError):
    """No usable answer from the server (retried with backoff by `PMClient`)."""


class PMError(WorkerError):
    """A tool call the server answered with an error: `.code` and `.message` as it sent them."""

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
    """The server refused our token. Retrying cannot help."""

    code = "unauthorized"


_BY_CODE: dict[str, type[PMError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        AgentNotRegistered,
        TaskNotFound,
        NotTaskHolder,
        TaskAlreadyComplete,
        Unauthorized,
    )
}


def error_for(code: str, message: str, *, tool: str = "") -> PMError:
    """The `PMError` subclass for a protocol error code (a plain `PMError` for codes without one)."""
    return _BY_CODE.get(code, PMError)(message, tool=tool, code=code)


class TaskInterrupt(WorkerError):
    """Raised by `execute` to end the task with an outcome other than "completed"."""


class TaskBlocked(TaskInterrupt):
    """The task cannot go on: reported as a blocker; it waits until someone resolves it."""

    def __init__(self, description: str, severity: str = "medium") -> None:
        super().__init__(description)
        self.description = description
        self.severity = severity  # low | medium | high | critical


class TaskReleased(TaskInterrupt):
    """Give the task back: it returns to the queue at once with its last checkpoint.

    For a worker that stops mid-task (`ctx.stopping`) after saving a checkpoint: raise
    `TaskReleased("stopping; resume from step 3")` and whoever takes the task next gets the
    checkpoint as `task.checkpoint`. Not a failed attempt, unless `count_attempt`: the
    worker gave up because of the task (a tool that never returned), so the board counts
    it like a lease expiry and blocks the task after PM_MAX_ATTEMPTS.
    """

    def __init__(
        self,
        reason: str = "released by the worker; resume from its checkpoint",
        *,
        count_attempt: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.count_attempt = count_attempt
