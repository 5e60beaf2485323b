"""Strict task payloads: a worker names a pydantic model, pm_worker checks `task.payload` with it.

A misspelt key (`comand`) must not fall back to a default and report success for work that
was never asked for: unknown keys are refused, and the blocker names each bad key and the
keys the worker accepts, so whoever wrote the task can fix it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from pm_worker.errors import TaskBlocked

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
