"""What Marcus cannot keep for us, kept in a folder every worker shares (the workspace).

Marcus has no checkpoints and no `release_task`, and its "you already have a task" answer
names only the task's id. So the Marcus dialect writes two kinds of small JSON files under
`PM_STATE_DIR` (default `<WORKSPACE>/.pm-state/marcus`):

- `agents/<agent id>.json`: the task this agent holds, as it was assigned (payload
  included) and when we last told Marcus about it. A restarted container with the same
  AGENT_ID reads it and resumes that task instead of asking for a new one.
- `tasks/<task id>.json`: the task's last checkpoint. Keyed by task only, so whoever
  Marcus gives a recovered task to (the same agent or another) resumes from it.

Files are replaced atomically (write a temporary file, then rename), so a worker killed
mid-write leaves the previous version, never half a file.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import JsonValue, TypeAdapter, ValidationError

from pm_protocol.results import Assignment

_JSON: TypeAdapter[JsonValue] = TypeAdapter(JsonValue)


def _safe(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:150] or "_"
    return "_" + cleaned if cleaned.startswith(".") else cleaned


def _write(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, allow_nan=False), encoding="utf-8")
    os.replace(tmp, path)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class HeldRecord:
    """The task an agent holds, as assigned, and when we last told Marcus about it."""

    assignment: Assignment
    progress: float
    last_report_at: float
    held_since: float

    def seconds_since_report(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.last_report_at


@dataclass(frozen=True)
class SavedCheckpoint:
    data: JsonValue
    progress: float
    agent_id: str
    saved_at: float


class LocalState:
    """One agent's view of the shared state folder."""

    def __init__(self, root: Path, agent_id: str) -> None:
        self.root = root
        self.agent_id = agent_id

    def _agent_file(self) -> Path:
        return self.root / "agents" / f"{_safe(self.agent_id)}.json"

    def _task_file(self, task_id: str) -> Path:
        return self.root / "tasks" / f"{_safe(task_id)}.json"

    # -- the held task ------------------------------------------------------------------

    def hold(self, assignment: Assignment, progress: float = 0.0, now: float | None = None) -> None:
        """Remember the task as soon as it is assigned (before any work on it)."""
        at = time.time() if now is None else now
        _write(
            self._agent_file(),
            {
                "agent_id": self.agent_id,
                "task": assignment.wire(),
                "progress": progress,
                "last_report_at": at,
                "held_since": at,
            },
        )

    def held(self) -> HeldRecord | None:
        raw = _read(self._agent_file())
        if raw is None or not isinstance(raw.get("task"), dict):
            return None
        try:
            task = Assignment.model_validate(raw["task"])
            return HeldRecord(
                task,
                float(raw.get("progress") or 0.0),
                float(raw["last_report_at"]),
                float(raw.get("held_since") or raw["last_report_at"]),
            )
        except (ValidationError, KeyError, TypeError, ValueError):
            return None

    def reported(self, task_id: str, progress: float, now: float | None = None) -> None:
        """A call on the held task reached Marcus (its lease was renewed then)."""
        raw = _read(self._agent_file())
        if raw is None or not isinstance(raw.get("task"), dict) or raw["task"].get("task_id") != task_id:
            return
        raw["progress"] = progress
        raw["last_report_at"] = time.time() if now is None else now
        _write(self._agent_file(), raw)

    def let_go(self, task_id: str | None = None) -> None:
        """The task is done, blocked or lost: forget it (only `task_id`'s record, if given)."""
        path = self._agent_file()
        if task_id is not None:
            raw = _read(path)
            if (
                raw is not None
                and isinstance(raw.get("task"), dict)
                and raw["task"].get("task_id") != task_id
            ):
                return
        path.unlink(missing_ok=True)

    # -- checkpoints -------------------------------------------------------------------

    def save_checkpoint(self, task_id: str, data: Any, progress: float, now: float | None = None) -> None:
        value = _JSON.validate_python(data)  # refuses what JSON cannot hold, before anything is written
        _write(
            self._task_file(task_id),
            {
                "task_id": task_id,
                "checkpoint": value,
                "progress": progress,
                "agent_id": self.agent_id,
                "saved_at": time.time() if now is None else now,
            },
        )

    def checkpoint(self, task_id: str) -> SavedCheckpoint | None:
        raw = _read(self._task_file(task_id))
        if raw is None or raw.get("task_id") != task_id:
            return None
        return SavedCheckpoint(
            raw.get("checkpoint"),
            float(raw.get("progress") or 0.0),
            str(raw.get("agent_id") or ""),
            float(raw.get("saved_at") or 0.0),
        )

    def drop_checkpoint(self, task_id: str) -> None:
        """After the completion was accepted: the checkpoint can never be needed again."""
        self._task_file(task_id).unlink(missing_ok=True)
