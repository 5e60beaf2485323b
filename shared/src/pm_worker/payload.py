"""Strict task payloads: a worker names a pydantic model, pm_worker checks `task.payload` with it.

A misspelt key (`comand`) must not fall back to a default and report success for work that
was never asked for: unknown keys are refused, and the blocker names each bad key and the
keys the worker accepts, so whoever wrote the task can fix it.

A server whose tasks carry their payload inside another field (Marcus: a `pm-payload`
block in the description) marks a task whose payload it could not read with two extra
fields on the `Assignment`: `payload_error` (the blocker's text: what to add or fix) and,
when there was no payload at all, `payload_missing`. `unreadable_payload` says whether
that must stop the task.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from pm_worker.errors import TaskBlocked
from pm_worker.models import Assignment

P = TypeVar("P", bound=BaseModel)


def payload_problems(model: type[BaseModel], exc: ValidationError) -> list[str]:
    """One phrase per problem, each naming the payload key it is about."""
    problems = []
    accepted = ", ".join(model.model_fields) or "none"
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "payload"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown field {key!r} (accepted fields: {accepted})")
        elif err["type"] == "missing":
            problems.append(f"missing field {key!r}")
        else:
            problems.append(f"{key}: {err['msg'].removeprefix('Value error, ')}")
    return problems


def parse_payload(model: type[P], payload: dict[str, Any] | None, *, task_id: str, role: str) -> P:
    """`payload` as `model`, or a `TaskBlocked` that says what to change in the task."""
    try:
        return model.model_validate(payload or {})
    except ValidationError as exc:
        raise TaskBlocked(
            f"invalid {role} payload for task {task_id}: " + "; ".join(payload_problems(model, exc)),
            severity="medium",
        ) from None


def unreadable_payload(task: Assignment, *, required: bool) -> str | None:
    """The blocker text for a task whose payload the server could not read, if it must stop it.

    A broken payload always stops the task; a missing one only for a worker that needs one.
    """
    extra = task.model_extra or {}
    problem = extra.get("payload_error")
    if not isinstance(problem, str) or not problem:
        return None
    if extra.get("payload_missing") and not required:
        return None
    return problem
