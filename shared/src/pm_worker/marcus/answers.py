"""Marcus's answers as `pm_protocol` result models, and its refusals as typed errors.

Marcus answers every call with `is_error` unset, even its refusals; what happened is in the
JSON: `success`, and for a refusal `error` (a sentence) and sometimes `status` (a code such
as `stale_completion`). Its structured content wraps the object in `{"result": ...}`. The
shapes handled here are the ones recorded from Marcus 0.3.8 (tests/marcus/answers/ and
../shared/upstream/captures/); docs/marcus.md says what each means for a worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import JsonValue, TypeAdapter, ValidationError

from pm_protocol.results import (
    AgentData,
    Artifact,
    ArtifactResult,
    Assignment,
    BlockerResult,
    Pong,
    ProgressAck,
    ProgressAckStatus,
    RegisterResult,
    TaskDetail,
    TaskOffer,
)
from pm_worker.errors import AgentNotRegistered, NotTaskHolder, PMError, TaskAlreadyComplete
from pm_worker.marcus.pacing import DEFAULT_RETRY_SECONDS
from pm_worker.marcus.payload import PayloadError, extract_payload

ENVELOPE_VERSION = 1
"""Marker in the artifact files we ask Marcus to write, so we read back only our own."""
ARTIFACT_DIR = ".pm-state/marcus/artifacts"
_JSON: TypeAdapter[JsonValue] = TypeAdapter(JsonValue)


class LeaseLost(NotTaskHolder):
    """Marcus recovered the task (its lease expired) and refused our completion: stop, do not retry."""

    code = "task_recovered"


class ProjectIdRequired(PMError):
    """Marcus refuses agents without a project; the worker must be given PM_PROJECT_ID."""

    code = "project_id_required"


@dataclass(frozen=True)
class HeldTask:
    """Marcus's "You already have a task assigned": only the task's id, name and board status."""

    task_id: str
    name: str
    status: str


def unsupported(tool: str) -> PMError:
    """A tool Marcus has no counterpart for (and the loop never needs)."""
    return PMError(
        f"Marcus has no {tool} for agents; read its board instead (docs/marcus.md)",
        tool=tool,
        code="unsupported",
    )


def unwrap(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer object: Marcus's structured content is `{"result": {...}}`, its text is the object."""
    inner = answer.get("result")
    if set(answer) == {"result"} and isinstance(inner, dict):
        return inner
    return answer


def refusal(tool: str, answer: dict[str, Any]) -> PMError:
    """The typed error for a `success: false` answer that is not a normal "no task" or "already have"."""
    status = str(answer.get("status") or "")
    error = str(answer.get("error") or "")
    message = str(answer.get("message") or error or json.dumps(answer)[:500])
    if status == "stale_completion" or error == "task_recovered":
        return LeaseLost(message, tool=tool)
    if status == "not_task_holder":
        return NotTaskHolder(message, tool=tool)
    if status == "task_already_complete":
        return TaskAlreadyComplete(message, tool=tool)
    if error.startswith("project_id is required"):
        return ProjectIdRequired(error, tool=tool)
    if error.startswith("Agent has no project_id"):
        # Marcus forgot us (it keeps agents in memory; a restart loses them): register again.
        return AgentNotRegistered(error, tool=tool)
    return PMError(
        message if not error or error in message else f"{error}: {message}",
        tool=tool,
        code=status or "marcus_error",
    )


def checked(tool: str, answer: dict[str, Any]) -> dict[str, Any]:
    """`answer` unwrapped if it says success; else its typed error is raised."""
    body = unwrap(answer)
    if body.get("success") is True:
        return body
    raise refusal(tool, body)


def register_result(
    answer: dict[str, Any], *, agent_id: str, name: str, role: str, skills: list[str]
) -> RegisterResult:
    body = checked("register_agent", answer)
    agent = AgentData(
        agent_id=str(body.get("agent_id") or agent_id), name=name, role=role, skills=skills, registered_at=""
    )
    return RegisterResult.model_validate(
        {
            "success": True,
            "agent_data": agent,
            "project_id": body.get("project_id"),
            "message": str(body.get("message") or f"Agent {name} registered"),
        }
    )


def pong(answer: dict[str, Any]) -> Pong:
    body = checked("ping", answer)
    echo = body.get("echo")
    return Pong.model_validate(
        {
            "success": True,
            "pong": True,
            "status": "online",
            "uptime_seconds": 0.0,
            "echo": echo if isinstance(echo, str) else None,
            "provider": body.get("provider"),
        }
    )


def retry_after(body: dict[str, Any]) -> float:
    value = body.get("retry_after_seconds")
    try:
        seconds = float(value) if value is not None else DEFAULT_RETRY_SECONDS
    except (TypeError, ValueError):
        return DEFAULT_RETRY_SECONDS
    return seconds if seconds > 0 else DEFAULT_RETRY_SECONDS


def task_offer(answer: dict[str, Any], *, workspace: Path | None = None) -> TaskOffer | HeldTask:
    """`request_next_task`: a task, none (with Marcus's retry hint), or the task we already hold."""
    body = unwrap(answer)
    task = body.get("task")
    if body.get("success") is True and isinstance(task, dict):
        return TaskOffer(success=True, has_task=True, assignment=assignment(task, workspace=workspace))
    current = body.get("current_task")
    if isinstance(current, dict) and current.get("id"):
        return HeldTask(
            task_id=str(current["id"]),
            name=str(current.get("name") or ""),
            status=str(current.get("status") or ""),
        )
    if "retry_after_seconds" in body:
        reason = str(body.get("retry_reason") or "no tasks currently available")
        return TaskOffer(
            success=True, has_task=False, message=f"Marcus: {reason}", retry_after_seconds=retry_after(body)
        )
    if body.get("status") == "EXPERIMENT_COMPLETE":
        # Marcus tells its own agents to exit; a fleet worker stays and asks again later.
        return TaskOffer(
            success=True,
            has_task=False,
            message="Marcus: the experiment is complete",
            retry_after_seconds=DEFAULT_RETRY_SECONDS,
        )
    raise refusal("request_next_task", body)


def assignment(task: dict[str, Any], *, workspace: Path | None = None) -> Assignment:
    """A Marcus task as our Assignment: payload from its `pm-payload` block, labels as required skills.

    A missing block leaves `payload` empty and sets `payload_missing`; an unusable one sets
    `payload_error` with what to fix. Marcus has no attempts, leases on the wire or
    checkpoints: those fields keep their defaults (the dialect adds a local checkpoint).
    """
    description = str(task.get("description") or "")
    labels = [str(label) for label in task.get("labels") or []]
    extra: dict[str, Any] = {}
    payload: dict[str, JsonValue] = {}
    try:
        found = extract_payload(description)
    except PayloadError as exc:
        extra["payload_error"] = str(exc)
    else:
        if found is None:
            extra["payload_missing"] = True
        else:
            payload = found
    return Assignment(
        task_id=str(task["id"]),
        task_name=str(task.get("name") or task["id"]),
        description=description,
        instructions=str(task.get("instructions") or ""),
        priority=str(task.get("priority") or "medium"),
        required_skills=labels,
        labels=labels,
        payload=payload,
        dependency_artifacts=dependency_artifacts(task.get("dependency_artifacts") or [], workspace),
        **extra,
    )


def read_envelope(workspace: Path | None, location: str) -> dict[str, Any] | None:
    """Our own artifact file that Marcus wrote into the shared workspace, if it is there and ours."""
    if workspace is None or not location:
        return None
    root = workspace.resolve()
    path = (root / location).resolve()
    if root not in path.parents:
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(value, dict) and value.get("pm_artifact") == ENVELOPE_VERSION:
        return value
    return None


def dependency_artifacts(entries: list[Any], workspace: Path | None) -> list[Artifact]:
    """Marcus's `dependency_artifacts`/`artifacts` entries, with our data read back where we can."""
    out = []
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            continue
        marcus_location = str(entry.get("location") or "")
        envelope = read_envelope(workspace, marcus_location) or {}
        try:
            data = _JSON.validate_python(envelope.get("data"))
        except ValidationError:
            data = None
        description = str(envelope.get("description") or entry.get("description") or "")
        out.append(
            Artifact(
                artifact_id=int(envelope.get("artifact_id") or index),
                task_id=str(envelope.get("task_id") or entry.get("dependency_task_id") or ""),
                agent_id=str(envelope.get("agent_id") or ""),
                artifact_type=str(envelope.get("artifact_type") or entry.get("artifact_type") or "artifact"),
                description=description,
                location=envelope.get("location") if envelope else (marcus_location or None),
                data=data,
                created_at=str(envelope.get("created_at") or ""),
            )
        )
    return out


def context_artifacts(answer: dict[str, Any], workspace: Path | None) -> list[Artifact]:
    """`get_task_context`: the artifacts of the task's dependencies, all types.

    `request_next_task` delivers only "architectural" artifact types (specification, api,
    design, ...); ours (`test_report`, `docker_image`, `api_docs`) come only this way.
    """
    body = checked("get_task_context", answer)
    context = body.get("context")
    if not isinstance(context, dict):
        context = {}
    entries = [
        a for a in context.get("artifacts") or [] if isinstance(a, dict) and a.get("dependency_task_id")
    ]
    return dependency_artifacts(entries, workspace)


def held_task_detail(held: Assignment, *, holder: str | None, progress: float) -> TaskDetail:
    """The task this agent holds, as `get_task_context` shows a task: what Marcus assigned, the
    progress reported since, and what Marcus has no notion of at its defaults (one attempt, no
    lease expiry, dependencies already done)."""
    return TaskDetail(
        task_id=held.task_id,
        task_name=held.task_name,
        description=held.description,
        instructions=held.instructions,
        priority=held.priority,
        required_skills=held.required_skills,
        labels=held.labels,
        dependencies=[],
        pending_dependencies=0,
        estimated_hours=None,
        payload=held.payload,
        status="in_progress",
        holder=holder,
        attempt=1,
        expiries=0,
        progress=round(progress),
        checkpoint=held.checkpoint,
        lease_expires_at=None,
        completed_by=None,
        completed_at=None,
        created_at="",
    )


def artifact_arguments(
    *,
    task_id: str,
    agent_id: str,
    artifact_id: int,
    artifact_type: str,
    description: str,
    location: str | None,
    data: Any,
    project_root: Path,
    created_at: str,
) -> dict[str, Any]:
    """`log_artifact` arguments: Marcus writes our artifact as a JSON file under `project_root`.

    Marcus's own `location` is where it writes the file; ours (a docs folder, an image tag)
    travels inside the file, with `data`, so dependents get back exactly what was logged.
    """
    safe_type = "".join(c if c.isalnum() or c in "-_" else "_" for c in artifact_type)[:60] or "artifact"
    filename = f"{artifact_id:03d}-{safe_type}.json"
    envelope = {
        "pm_artifact": ENVELOPE_VERSION,
        "artifact_id": artifact_id,
        "task_id": task_id,
        "agent_id": agent_id,
        "artifact_type": artifact_type,
        "description": description,
        "location": location,
        "data": data,
        "created_at": created_at,
    }
    return {
        "task_id": task_id,
        "filename": filename,
        "content": envelope,
        "artifact_type": artifact_type,
        "project_root": str(project_root),
        "description": description,
        "location": f"{ARTIFACT_DIR}/{task_id}/{filename}",
    }


def artifact_result(answer: dict[str, Any], artifact_id: int) -> ArtifactResult:
    body = checked("log_artifact", answer)
    data = body.get("data")
    location = data.get("location") if isinstance(data, dict) else None
    return ArtifactResult.model_validate({"success": True, "artifact_id": artifact_id, "location": location})


_ACK_STATUS: dict[str, ProgressAckStatus] = {"completed": "task_completed", "blocked": "task_blocked"}


def progress_ack(answer: dict[str, Any], status: str) -> ProgressAck:
    """`report_task_progress`; a lost lease raises `LeaseLost` (never retry that completion)."""
    body = checked("report_task_progress", answer)
    extra = {k: v for k, v in body.items() if k not in ("success", "message")}
    return ProgressAck(
        success=True,
        acknowledged=True,
        status=_ACK_STATUS.get(status, "progress_recorded"),
        message=str(body.get("message") or ""),
        lease_expires_at=None,
        **extra,
    )


def suggestion_text(suggestions: Any) -> str:
    """Marcus's `suggestions` object (or text) as the one paragraph workers and logs show."""
    if isinstance(suggestions, str):
        return suggestions.strip()
    if not isinstance(suggestions, dict):
        return ""
    parts = []
    if suggestions.get("root_cause"):
        parts.append(f"Root cause: {suggestions['root_cause']}.")
    steps = [str(s) for s in suggestions.get("resolution_steps") or [] if str(s).strip()]
    if steps:
        parts.append("Steps: " + "; ".join(f"{i}) {s}" for i, s in enumerate(steps, start=1)) + ".")
    needs = [str(s) for s in suggestions.get("required_resources") or [] if str(s).strip()]
    if needs:
        parts.append("Needs: " + ", ".join(needs) + ".")
    if suggestions.get("estimated_hours"):
        parts.append(f"Estimate: {suggestions['estimated_hours']} h.")
    if suggestions.get("escalation_needed"):
        parts.append("Escalation needed.")
    return " ".join(parts)


def blocker_result(answer: dict[str, Any]) -> BlockerResult:
    """`report_blocker`: Marcus's suggestions become `resolution_suggestion`; the raw object is kept."""
    body = checked("report_blocker", answer)
    suggestions = body.get("suggestions")
    text = suggestion_text(suggestions) or "Marcus gave no suggestion; see the task's comments on its board."
    return BlockerResult.model_validate(
        {
            "success": True,
            "message": str(body.get("message") or "blocker reported"),
            "blocker_id": None,
            "resolution_suggestion": text,
            "suggestions": suggestions,
        }
    )
